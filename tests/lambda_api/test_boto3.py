"""funcd's Lambda API driven by boto3, as a program written for AWS Lambda would drive it.

Expectations are AWS Lambda's own (status codes, fields, error codes and messages).
Run: FUNCD_BINARY=... FUNCD_NOOP_BOOTSTRAP=... /usr/bin/python3 tests/lambda_api/test_boto3.py -v
"""

import base64
import hashlib
import json
import math
import platform
import re
import subprocess
import time
import unittest
import urllib.request
import uuid
from collections import Counter

from botocore.eventstream import EventStreamBuffer

from harness import (REGION, ROLE, DaemonTestCase, account_for, echo_handler, make_zip, poll,
                     python_zip, sha256_b64, sign_request, unique_name, http_request)

HOST_ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
# Lambda's format for FunctionConfiguration dates: 2025-04-15T20:24:16.283+0000
LAMBDA_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def download(url):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, resp.read()


def log_tail(answer):
    return base64.b64decode(answer["LogResult"]).decode("utf-8", "replace")


def report_line(log, request_id):
    for line in log.splitlines():
        if f"REPORT RequestId: {request_id}" in line:
            return line
    raise AssertionError(f"no REPORT line for {request_id} in:\n{log}")


class FunctionLifecycleTest(DaemonTestCase):

    def test_create_waiter_and_get_function(self):
        name, zip_bytes, created = self.create_python_function(MemorySize=256, timeout=4)
        arn = self.daemon.function_arn(name)
        self.assertEqual(201, created["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual(name, created["FunctionName"])
        self.assertEqual(arn, created["FunctionArn"])
        self.assertEqual("$LATEST", created["Version"])
        self.assertEqual(sha256_b64(zip_bytes), created["CodeSha256"])

        started = time.monotonic()
        self.lam.get_waiter("function_active_v2").wait(FunctionName=name,
                                                       WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.assertLess(time.monotonic() - started, 0.9, "the waiter should succeed on its first poll")

        got = self.lam.get_function(FunctionName=name)
        c = got["Configuration"]
        self.assertEqual(name, c["FunctionName"])
        self.assertEqual(arn, c["FunctionArn"])
        self.assertEqual("Active", c["State"])
        self.assertEqual("Successful", c["LastUpdateStatus"])
        self.assertEqual(sha256_b64(zip_bytes), c["CodeSha256"])
        self.assertEqual(len(zip_bytes), c["CodeSize"])
        self.assertEqual("python3.11", c["Runtime"])
        self.assertEqual("app.handler", c["Handler"])
        self.assertEqual(ROLE, c["Role"])
        self.assertEqual(256, c["MemorySize"])
        self.assertEqual(4, c["Timeout"])
        self.assertEqual("Zip", c["PackageType"])
        self.assertEqual([HOST_ARCH], c["Architectures"])
        self.assertEqual("$LATEST", c["Version"])
        self.assertEqual({"Size": 512}, c["EphemeralStorage"])
        self.assertEqual("", c.get("Description", ""))
        self.assertRegex(c["LastModified"], LAMBDA_DATE)
        self.assertTrue(c["RevisionId"])

        self.assertEqual("S3", got["Code"]["RepositoryType"])
        status, downloaded = download(got["Code"]["Location"])
        self.assertEqual(200, status)
        self.assertEqual(hashlib.sha256(zip_bytes).hexdigest(), hashlib.sha256(downloaded).hexdigest())

        conf = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual(c["CodeSha256"], conf["CodeSha256"])
        self.assertEqual("Active", conf["State"])

    def test_function_exists_waiter(self):
        name, _, _ = self.create_python_function()
        self.lam.get_waiter("function_exists").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 2})

    def test_update_function_configuration_is_partial(self):
        name, zip_bytes, _ = self.create_python_function(
            MemorySize=256, timeout=7, Description="keep me", Environment={"Variables": {"APP_A": "1"}})
        updated = self.lam.update_function_configuration(FunctionName=name,
                                                         Environment={"Variables": {"APP_B": "2"}})
        self.assertEqual({"APP_B": "2"}, updated["Environment"]["Variables"])
        started = time.monotonic()
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name,
                                                        WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.assertLess(time.monotonic() - started, 0.9, "the waiter should succeed on its first poll")

        c = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual({"APP_B": "2"}, c["Environment"]["Variables"])
        self.assertEqual(256, c["MemorySize"])
        self.assertEqual(7, c["Timeout"])
        self.assertEqual("keep me", c["Description"])
        self.assertEqual("app.handler", c["Handler"])
        self.assertEqual("python3.11", c["Runtime"])
        self.assertEqual(ROLE, c["Role"])
        self.assertEqual(sha256_b64(zip_bytes), c["CodeSha256"])
        self.assertEqual("Successful", c["LastUpdateStatus"])

        _, payload = self.invoke_json(name)
        self.assertEqual({"APP_B": "2"}, payload["env"])
        self.assertEqual(256, payload["memory_limit_in_mb"])

    def test_update_function_code(self):
        name, _, _ = self.create_python_function(source=echo_handler("first"))
        self.assertEqual("first", self.invoke_json(name)[1]["marker"])
        new_zip = python_zip(echo_handler("second"))
        updated = self.lam.update_function_code(FunctionName=name, ZipFile=new_zip)
        self.assertEqual(sha256_b64(new_zip), updated["CodeSha256"])
        self.assertEqual(len(new_zip), updated["CodeSize"])
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name,
                                                        WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.assertEqual("second", self.invoke_json(name)[1]["marker"])
        got = self.lam.get_function(FunctionName=name)
        self.assertEqual(sha256_b64(new_zip), got["Configuration"]["CodeSha256"])
        self.assertEqual(new_zip, download(got["Code"]["Location"])[1])

    def test_delete_function(self):
        name, _, _ = self.create_python_function()
        answer = self.lam.delete_function(FunctionName=name)
        self.assertIn(answer["ResponseMetadata"]["HTTPStatusCode"], (200, 204))
        with self.assertRaises(self.lam.exceptions.ResourceNotFoundException) as cm:
            self.lam.get_function(FunctionName=name)
        self.assertIn(f"function:{name}", cm.exception.response["Error"]["Message"])
        self.assertClientError("ResourceNotFoundException", self.lam.invoke, FunctionName=name, Payload=b"{}")
        self.assertClientError("ResourceNotFoundException", self.lam.delete_function, FunctionName=name)

    def test_missing_function_error_shape(self):
        name = unique_name("missing")
        with self.assertRaises(self.lam.exceptions.ResourceNotFoundException) as cm:
            self.lam.get_function(FunctionName=name)
        err = cm.exception.response
        self.assertEqual(404, err["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual(f"Function not found: {self.daemon.function_arn(name)}", err["Error"]["Message"])
        self.assertTrue(err["ResponseMetadata"].get("RequestId"), "x-amzn-RequestId is missing")

        raw = self.daemon.signed("GET", f"/2015-03-31/functions/{name}")
        self.assertEqual(404, raw.status)
        self.assertTrue(raw.header("x-amzn-ErrorType", "").startswith("ResourceNotFoundException"), raw)
        self.assertTrue(raw.header("x-amzn-RequestId"), raw)
        self.assertTrue(raw.header("Content-Type", "").startswith("application/json"), raw)
        body = raw.json()
        self.assertIn("function:" + name, body.get("message") or body.get("Message"))

    def test_create_twice_is_a_conflict(self):
        name, _, _ = self.create_python_function()
        with self.assertRaises(self.lam.exceptions.ResourceConflictException) as cm:
            self.create_python_function(name=name)
        self.assertEqual(409, cm.exception.response["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual(f"Function already exist: {name}", cm.exception.response["Error"]["Message"])

    def test_bad_runtime_is_an_invalid_parameter(self):
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
            self.create_python_function(runtime="cobol85")
        self.assertEqual(400, cm.exception.response["ResponseMetadata"]["HTTPStatusCode"])
        self.assertTrue(cm.exception.response["Error"]["Message"].startswith(
            "Value cobol85 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: ["),
            cm.exception.response["Error"]["Message"])
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
            self.create_python_function(runtime="python2.7")
        self.assertEqual(
            "The runtime parameter of python2.7 is no longer supported for creating or updating AWS Lambda "
            "functions. We recommend you use a supported runtime while creating or updating functions.",
            cm.exception.response["Error"]["Message"])

    def test_the_python_really_used_is_stated(self):
        # Whatever Python the host has serves python3.X; funcd says which one ran.
        name, _, created = self.create_python_function(runtime="python3.12", source=b"""
import sys
def handler(event, context):
    return "%d.%d.%d" % sys.version_info[:3]
""")
        self.assertEqual("python3.12", created["Runtime"])
        # Debian's botocore predates RuntimeVersionConfig and drops it: read the raw answer.
        raw = self.daemon.signed("GET", f"/2015-03-31/functions/{name}/configuration")
        self.assertEqual(200, raw.status, raw)
        version_arn = raw.json()["RuntimeVersionConfig"]["RuntimeVersionArn"]
        self.assertRegex(version_arn, r"^arn:aws:lambda:%s::runtime:[0-9a-f]{64}$" % REGION)
        _, version = self.invoke_json(name)
        log = poll(lambda: re.search(r"INIT_START Runtime Version: python:(\S+)\tRuntime Version ARN: (\S+)",
                                     self.daemon.function_log(name)), message="the INIT_START line")
        self.assertEqual(version, log.group(1))
        self.assertEqual(version_arn, log.group(2))

    def test_code_signing_config(self):
        name, _, _ = self.create_python_function()
        answer = self.lam.get_function_code_signing_config(FunctionName=name)
        self.assertEqual("", answer["CodeSigningConfigArn"])
        self.assertEqual(name, answer["FunctionName"])


class InvokeTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.name, _, _ = cls.create_python_function()

    def test_sync_invoke(self):
        answer, payload = self.invoke_json(self.name, {"hello": "world"})
        self.assertEqual(200, answer["StatusCode"])
        self.assertEqual("$LATEST", answer["ExecutedVersion"])
        self.assertNotIn("FunctionError", answer)
        self.assertEqual({"hello": "world"}, payload["event"])
        self.assertEqual(self.name, payload["function_name"])
        self.assertEqual("$LATEST", payload["function_version"])
        self.assertEqual(self.daemon.function_arn(self.name), payload["invoked_function_arn"])
        self.assertEqual("on-demand", payload["initialization_type"])

    def test_event_invoke_runs_later(self):
        marker = str(uuid.uuid4())
        answer = self.lam.invoke(FunctionName=self.name, InvocationType="Event",
                                 Payload=json.dumps({"action": "async", "id": marker}).encode())
        self.assertEqual(202, answer["StatusCode"])
        self.assertEqual(b"", answer["Payload"].read())
        poll(lambda: f'"id": "{marker}"' in self.daemon.function_log(self.name), timeout=20,
             message="the queued invocation to run")

    def test_deprecated_invoke_async(self):
        marker = str(uuid.uuid4())
        answer = self.lam.invoke_async(FunctionName=self.name,
                                       InvokeArgs=json.dumps({"action": "async", "id": marker}).encode())
        self.assertEqual(202, answer["Status"])
        poll(lambda: f'"id": "{marker}"' in self.daemon.function_log(self.name), timeout=20,
             message="the InvokeAsync event to run")

    def test_dry_run(self):
        name, _, _ = self.create_python_function()
        answer = self.lam.invoke(FunctionName=name, InvocationType="DryRun", Payload=b"{}")
        self.assertEqual(204, answer["StatusCode"])
        self.assertEqual(b"", answer["Payload"].read())
        # Usage records cover every invocation answered so far: only the synchronous one ran.
        self.invoke_json(name)
        records = self.daemon.v1("GET", f"/v1/usage/records?function={name}").json()["records"]
        self.assertEqual(1, len(records), records)

    def test_log_tail(self):
        answer, payload = self.invoke_json(self.name, {"action": "log"}, LogType="Tail")
        log = log_tail(answer)
        request_id = answer["ResponseMetadata"]["RequestId"]
        self.assertIn(f"START RequestId: {request_id}", log)
        self.assertIn("HANDLER-SAYS", log)
        self.assertIn(request_id, log[log.index("HANDLER-SAYS"):])
        self.assertIn(f"END RequestId: {request_id}", log)
        report_line(log, request_id)
        self.assertLessEqual(len(base64.b64decode(answer["LogResult"])), 4096)

    def test_no_log_result_without_tail(self):
        answer, _ = self.invoke_json(self.name)
        self.assertNotIn("LogResult", answer)

    def test_client_context(self):
        context = {"client": {"app_title": "funcd-tests", "installation_id": "i-1"},
                   "custom": {"colour": "blue"}, "env": {"locale": "en"}}
        answer, payload = self.invoke_json(
            self.name, {"action": "client_context"},
            ClientContext=base64.b64encode(json.dumps(context).encode()).decode())
        self.assertEqual(200, answer["StatusCode"])
        self.assertEqual({"custom": {"colour": "blue"}, "env": {"locale": "en"}, "app_title": "funcd-tests"},
                         payload["client_context"])

    def test_function_error(self):
        answer, payload = self.invoke_json(self.name, {"action": "fail", "n": 7})
        self.assertEqual(200, answer["StatusCode"])
        self.assertEqual("Unhandled", answer["FunctionError"])
        self.assertEqual("$LATEST", answer["ExecutedVersion"])
        self.assertEqual("ValueError", payload["errorType"])
        self.assertEqual("bad input 7", payload["errorMessage"])

    def test_trace_id_reaches_the_function_and_comes_back(self):
        trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

        def add_trace(request, **kwargs):
            # As botocore does itself inside a Lambda function (from _X_AMZN_TRACE_ID).
            request.headers["X-Amzn-Trace-Id"] = trace

        self.lam.meta.events.register("before-sign.lambda.Invoke", add_trace)
        try:
            answer, payload = self.invoke_json(self.name, {"action": "trace"})
        finally:
            self.lam.meta.events.unregister("before-sign.lambda.Invoke", add_trace)
        self.assertEqual(trace, payload["trace"])
        self.assertEqual(trace, answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-trace-id"])
        request_id = answer["ResponseMetadata"]["RequestId"]
        entries = self.daemon.v1("GET", f"/v1/functions/{self.name}/invocations").json()["invocations"]
        entry = next(e for e in entries if e["request_id"] == request_id)
        self.assertEqual(trace, entry["trace_id"])
        self.assertEqual("lambda", entry["trigger"])
        # Without one, the function still runs under a trace id, and the answer names it.
        answer, payload = self.invoke_json(self.name, {"action": "trace"})
        self.assertRegex(payload["trace"], r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")
        self.assertEqual(payload["trace"], answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-trace-id"])

    def test_payload_must_be_json(self):
        with self.assertRaises(self.lam.exceptions.InvalidRequestContentException) as cm:
            self.lam.invoke(FunctionName=self.name, Payload=b"{not json")
        self.assertEqual(400, cm.exception.response["ResponseMetadata"]["HTTPStatusCode"])
        self.assertTrue(cm.exception.response["Error"]["Message"].startswith("Could not parse request body into json"))

    def test_empty_payload_is_an_empty_object(self):
        answer = self.lam.invoke(FunctionName=self.name)
        self.assertEqual({}, json.loads(answer["Payload"].read())["event"])

    def test_provided_runtime(self):
        name, _, _ = self.create_noop_function()
        answer, payload = self.invoke_json(name, {"x": 1})
        self.assertEqual(200, answer["StatusCode"])
        self.assertEqual({}, payload)

    def test_invoke_missing_function(self):
        name = unique_name("missing")
        with self.assertRaises(self.lam.exceptions.ResourceNotFoundException) as cm:
            self.lam.invoke(FunctionName=name, Payload=b"{}")
        self.assertIn(f"function:{name}", cm.exception.response["Error"]["Message"])


def teach_logging_config(client):
    """Lets an older botocore (Debian's 1.29 predates LoggingConfig) send and read the member
    as newer models do: it is taken out of the parameters before botocore validates them,
    put into the JSON body it sends, and read back from the answer it parses."""
    pending = {}

    def take(params, model, **_):
        if "LoggingConfig" in params and "LoggingConfig" not in model.input_shape.members:
            pending["value"] = params.pop("LoggingConfig")

    def put(params, model, **_):
        if "value" in pending:
            body = json.loads(params["body"] or b"{}")
            body["LoggingConfig"] = pending.pop("value")
            params["body"] = json.dumps(body).encode()

    def read(http_response, parsed, model, **_):
        if model.output_shape is None or "LoggingConfig" in model.output_shape.members:
            return
        try:
            doc = json.loads(http_response.content or b"{}")
        except ValueError:
            return
        if isinstance(doc, dict):
            source = doc.get("Configuration", doc)
            if isinstance(source, dict) and "LoggingConfig" in source:
                target = parsed.get("Configuration", parsed)
                target["LoggingConfig"] = source["LoggingConfig"]

    events = client.meta.events
    for op in ("CreateFunction", "UpdateFunctionConfiguration"):
        events.register(f"before-parameter-build.lambda.{op}", take)
        events.register(f"before-call.lambda.{op}", put)
    for op in ("CreateFunction", "UpdateFunctionConfiguration", "GetFunction", "GetFunctionConfiguration"):
        events.register(f"after-call.lambda.{op}", read)
    return client


class LoggingConfigTest(DaemonTestCase):
    """LoggingConfig through boto3: created, changed, read back, refused as Lambda refuses it;
    and a JSON function's log tail is Lambda's JSON records."""

    SOURCE = (
        "import logging\n"
        "logger = logging.getLogger()\n"
        "def handler(event, context):\n"
        "    logger.debug('hidden')\n"
        "    logger.info('visible %s', event.get('n'))\n"
        "    return {'ok': True}\n"
    )

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        teach_logging_config(cls.lambda_client())

    def test_round_trip_and_update(self):
        name, _, created = self.create_python_function(source=self.SOURCE)
        group = f"/aws/lambda/{name}"
        self.assertEqual({"LogFormat": "Text", "LogGroup": group}, created["LoggingConfig"])
        answer, _ = self.invoke_json(name, {"n": 1}, LogType="Tail")
        self.assertTrue(log_tail(answer).startswith("START RequestId: "), log_tail(answer))

        updated = self.lam.update_function_configuration(
            FunctionName=name, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"})
        self.assertEqual({"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG", "SystemLogLevel": "INFO",
                          "LogGroup": group}, updated["LoggingConfig"])
        got = self.lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
        self.assertEqual(updated["LoggingConfig"], got)
        self.assertEqual(got, self.lam.get_function(FunctionName=name)["Configuration"]["LoggingConfig"])
        # The change takes effect on the next invocation (a new worker): JSON records, DEBUG kept.
        answer, _ = self.invoke_json(name, {"n": 2}, LogType="Tail")
        records = [json.loads(line) for line in log_tail(answer).splitlines()]
        self.assertEqual("platform.start", records[0]["type"])
        self.assertEqual(["DEBUG", "INFO"], [r["level"] for r in records if "level" in r])

        # What an update leaves out stays; a log group is kept and echoed.
        self.lam.update_function_configuration(FunctionName=name,
                                               LoggingConfig={"SystemLogLevel": "WARN", "LogGroup": "/my/group"})
        got = self.lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
        self.assertEqual({"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG", "SystemLogLevel": "WARN",
                          "LogGroup": "/my/group"}, got)

        # Back to Text: the levels go.
        self.lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogFormat": "Text"})
        got = self.lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
        self.assertEqual({"LogFormat": "Text", "LogGroup": "/my/group"}, got)

        # Created with JSON and levels.
        name2, _, created2 = self.create_python_function(
            source=self.SOURCE, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "DEBUG"})
        self.assertEqual({"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "DEBUG",
                          "LogGroup": f"/aws/lambda/{name2}"}, created2["LoggingConfig"])

    def test_levels_with_text_are_refused(self):
        error = self.assertClientError(
            "InvalidParameterValueException", self.create_python_function,
            LoggingConfig={"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"})
        self.assertEqual(400, error.response["ResponseMetadata"]["HTTPStatusCode"])
        self.assertIn('LogLevel is not supported when LogFormat is set to "Text"', error.response["Error"]["Message"])

        name, _, _ = self.create_python_function(source=self.SOURCE)
        self.assertClientError("InvalidParameterValueException", self.lam.update_function_configuration,
                               FunctionName=name, LoggingConfig={"SystemLogLevel": "WARN"})
        error = self.assertClientError("ValidationException", self.lam.update_function_configuration,
                                       FunctionName=name, LoggingConfig={"LogFormat": "JSON",
                                                                         "SystemLogLevel": "ERROR"})
        self.assertIn("loggingConfig.systemLogLevel", error.response["Error"]["Message"])
        # Nothing was changed by the refusals.
        self.assertEqual({"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
                         self.lam.get_function_configuration(FunctionName=name)["LoggingConfig"])

    def test_json_log_tail_is_lambdas_records(self):
        name, _, _ = self.create_python_function(
            source=self.SOURCE, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"})
        answer, payload = self.invoke_json(name, {"n": 7}, LogType="Tail")
        self.assertEqual({"ok": True}, payload)
        request_id = answer["ResponseMetadata"]["RequestId"]
        records = [json.loads(line) for line in log_tail(answer).splitlines()]
        types = [r.get("type", r.get("level")) for r in records]
        self.assertEqual(["platform.start", "INFO", "platform.report"], types)
        self.assertEqual(request_id, records[0]["record"]["requestId"])
        self.assertEqual(("visible 7", request_id), (records[1]["message"], records[1]["requestId"]))
        metrics = records[2]["record"]["metrics"]
        self.assertEqual({"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"},
                         set(metrics))
        self.assertEqual("success", records[2]["record"]["status"])


class VersionsAliasesTest(DaemonTestCase):

    def publish_two_versions(self):
        """A function with version 1 (marker one) and 2 (marker two); $LATEST is version 2's code."""
        name, _, _ = self.create_python_function(source=echo_handler("one"))
        v1 = self.lam.publish_version(FunctionName=name, Description="first")
        self.lam.update_function_code(FunctionName=name, ZipFile=python_zip(echo_handler("two")))
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        v2 = self.lam.publish_version(FunctionName=name)
        return name, v1, v2

    def test_publish_and_list_versions(self):
        name, v1, v2 = self.publish_two_versions()
        self.assertEqual(201, v1["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual("1", v1["Version"])
        self.assertEqual(self.daemon.function_arn(name, "1"), v1["FunctionArn"])
        self.assertEqual("Active", v1["State"])
        self.assertEqual("first", v1["Description"])
        self.assertEqual("2", v2["Version"])

        again = self.lam.publish_version(FunctionName=name)
        self.assertEqual("2", again["Version"], "publishing unchanged code and settings returns the latest version")

        versions = self.lam.list_versions_by_function(FunctionName=name)["Versions"]
        self.assertEqual(["$LATEST", "1", "2"], [v["Version"] for v in versions])
        self.assertEqual(self.daemon.function_arn(name, "$LATEST"), versions[0]["FunctionArn"])
        self.assertEqual(self.daemon.function_arn(name, "2"), versions[2]["FunctionArn"])
        self.assertEqual(v1["CodeSha256"], versions[1]["CodeSha256"])

        got = self.lam.get_function(FunctionName=name, Qualifier="1")
        self.assertEqual("1", got["Configuration"]["Version"])
        self.assertEqual(self.daemon.function_arn(name, "1"), got["Configuration"]["FunctionArn"])
        self.assertEqual(v1["CodeSha256"], got["Configuration"]["CodeSha256"])

        for version, marker in (("1", "one"), ("2", "two"), ("$LATEST", "two")):
            answer, payload = self.invoke_json(name, Qualifier=version)
            self.assertEqual(version, answer["ExecutedVersion"])
            self.assertEqual(marker, payload["marker"])
            self.assertEqual(version, payload["function_version"])

    def test_publish_with_wrong_code_sha(self):
        name, _, _ = self.create_python_function()
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException):
            self.lam.publish_version(FunctionName=name, CodeSha256="not-the-sha")

    def test_alias_crud(self):
        name, _, _ = self.publish_two_versions()
        alias_arn = self.daemon.function_arn(name, "live")
        created = self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1", Description="d1")
        self.assertEqual(201, created["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual(alias_arn, created["AliasArn"])
        self.assertEqual("live", created["Name"])
        self.assertEqual("1", created["FunctionVersion"])
        self.assertEqual("d1", created["Description"])
        self.assertTrue(created["RevisionId"])

        got = self.lam.get_alias(FunctionName=name, Name="live")
        self.assertEqual(alias_arn, got["AliasArn"])
        self.assertEqual("1", got["FunctionVersion"])

        self.assertClientError("ResourceConflictException", self.lam.create_alias,
                               FunctionName=name, Name="live", FunctionVersion="1")

        updated = self.lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
        self.assertEqual("2", updated["FunctionVersion"])
        self.assertEqual("d1", updated["Description"], "UpdateAlias leaves out fields unchanged")
        self.assertEqual("2", self.invoke_json(name, Qualifier="live")[0]["ExecutedVersion"])

        self.lam.create_alias(FunctionName=name, Name="beta", FunctionVersion="$LATEST")
        aliases = self.lam.list_aliases(FunctionName=name)["Aliases"]
        self.assertEqual({"live": "2", "beta": "$LATEST"}, {a["Name"]: a["FunctionVersion"] for a in aliases})
        only_v2 = self.lam.list_aliases(FunctionName=name, FunctionVersion="2")["Aliases"]
        self.assertEqual(["live"], [a["Name"] for a in only_v2])

        deleted = self.lam.delete_alias(FunctionName=name, Name="live")
        self.assertEqual(204, deleted["ResponseMetadata"]["HTTPStatusCode"])
        with self.assertRaises(self.lam.exceptions.ResourceNotFoundException) as cm:
            self.lam.get_alias(FunctionName=name, Name="live")
        self.assertEqual(f"Cannot find alias arn: {alias_arn}", cm.exception.response["Error"]["Message"])

    def test_alias_to_unknown_version(self):
        name, _, _ = self.create_python_function()
        self.assertClientError("ResourceNotFoundException", self.lam.create_alias,
                               FunctionName=name, Name="nope", FunctionVersion="9")

    def test_qualified_name_forms(self):
        name, _, _ = self.publish_two_versions()
        self.lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
        account = self.daemon.account
        forms = {
            "name:alias": {"FunctionName": f"{name}:prod"},
            "?Qualifier": {"FunctionName": name, "Qualifier": "prod"},
            "partial ARN": {"FunctionName": f"{account}:function:{name}:prod"},
            "full ARN": {"FunctionName": self.daemon.function_arn(name, "prod")},
            "full ARN + same Qualifier": {"FunctionName": self.daemon.function_arn(name, "prod"), "Qualifier": "prod"},
        }
        for form, args in forms.items():
            with self.subTest(form=form):
                answer = self.lam.invoke(Payload=b"{}", **args)
                payload = json.loads(answer["Payload"].read())
                self.assertEqual("1", answer["ExecutedVersion"])
                self.assertEqual("one", payload["marker"])
                self.assertEqual(self.daemon.function_arn(name, "prod"), payload["invoked_function_arn"])
        with self.subTest(form="unqualified full ARN"):
            answer, payload = self.invoke_json(self.daemon.function_arn(name))
            self.assertEqual("$LATEST", answer["ExecutedVersion"])
        with self.subTest(form="$LATEST in the name"):
            got = self.lam.get_function_configuration(FunctionName=f"{name}:$LATEST")
            self.assertEqual("$LATEST", got["Version"])
        with self.subTest(form="conflicting qualifiers"):
            with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
                self.lam.invoke(FunctionName=f"{name}:prod", Qualifier="1", Payload=b"{}")
            self.assertEqual("The derived qualifier from the function name does not match the specified qualifier.",
                             cm.exception.response["Error"]["Message"])

    def test_weighted_alias_routing(self):
        name, _, _ = self.publish_two_versions()
        created = self.lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
        self.assertEqual({"2": 0.3}, created["RoutingConfig"]["AdditionalVersionWeights"])
        n, p = 200, 0.3
        executed = Counter()
        for _ in range(n):
            answer = self.lam.invoke(FunctionName=name, Qualifier="canary", Payload=b"{}")
            payload = json.loads(answer["Payload"].read())
            self.assertEqual({"1": "one", "2": "two"}[answer["ExecutedVersion"]], payload["marker"])
            executed[answer["ExecutedVersion"]] += 1
        self.assertEqual(n, executed["1"] + executed["2"], executed)
        bound = 4 * math.sqrt(p * (1 - p) / n)
        share = executed["2"] / n
        self.assertLessEqual(abs(share - p), bound, f"version 2 ran {executed['2']} of {n} times")

        cleared = self.lam.update_alias(FunctionName=name, Name="canary", RoutingConfig={"AdditionalVersionWeights": {}})
        self.assertFalse(cleared.get("RoutingConfig", {}).get("AdditionalVersionWeights"))
        for _ in range(10):
            self.assertEqual("1", self.lam.invoke(FunctionName=name, Qualifier="canary", Payload=b"{}")["ExecutedVersion"])

    def test_routing_config_rules(self):
        name, _, _ = self.publish_two_versions()
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
            self.lam.create_alias(FunctionName=name, Name="same", FunctionVersion="1",
                                  RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
        self.assertEqual("Invalid function version 1. Function version 1 is already included in routing configuration.",
                         cm.exception.response["Error"]["Message"])
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
            self.lam.create_alias(FunctionName=name, Name="latest", FunctionVersion="$LATEST",
                                  RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
        self.assertEqual("$LATEST is not supported for an alias pointing to more than 1 version",
                         cm.exception.response["Error"]["Message"])

    def test_delete_one_version(self):
        name, _, _ = self.publish_two_versions()
        self.lam.delete_function(FunctionName=name, Qualifier="1")
        versions = self.lam.list_versions_by_function(FunctionName=name)["Versions"]
        self.assertEqual(["$LATEST", "2"], [v["Version"] for v in versions])
        self.assertClientError("ResourceNotFoundException", self.lam.invoke, FunctionName=name, Qualifier="1")
        self.assertEqual("2", self.invoke_json(name, Qualifier="2")[0]["ExecutedVersion"])


class ConcurrencyTest(DaemonTestCase):

    def test_reserved_concurrency(self):
        name, _, _ = self.create_python_function()
        put = self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
        self.assertEqual(0, put["ReservedConcurrentExecutions"])
        self.assertEqual(0, self.lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"])
        self.assertEqual({"ReservedConcurrentExecutions": 0}, self.lam.get_function(FunctionName=name)["Concurrency"])

        with self.assertRaises(self.lam.exceptions.TooManyRequestsException) as cm:
            self.lam.invoke(FunctionName=name, Payload=b"{}")
        err = cm.exception.response
        self.assertEqual(429, err["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual("ReservedFunctionConcurrentInvocationLimitExceeded", err.get("Reason"), err)

        deleted = self.lam.delete_function_concurrency(FunctionName=name)
        self.assertEqual(204, deleted["ResponseMetadata"]["HTTPStatusCode"])
        self.assertNotIn("ReservedConcurrentExecutions", self.lam.get_function_concurrency(FunctionName=name))
        self.assertNotIn("Concurrency", self.lam.get_function(FunctionName=name))
        self.assertEqual(200, self.invoke_json(name)[0]["StatusCode"])

    def test_concurrency_on_a_qualified_name_is_refused(self):
        name, _, _ = self.create_python_function()
        self.lam.publish_version(FunctionName=name)
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
            self.lam.put_function_concurrency(FunctionName=f"{name}:1", ReservedConcurrentExecutions=1)
        self.assertIn("This operation is permitted on Lambda functions only.", cm.exception.response["Error"]["Message"])

    def test_provisioned_concurrency_on_an_alias(self):
        name, _, _ = self.create_python_function()
        self.lam.publish_version(FunctionName=name)
        self.lam.create_alias(FunctionName=name, Name="warm", FunctionVersion="1")
        put = self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="warm",
                                                          ProvisionedConcurrentExecutions=1)
        self.assertEqual(202, put["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual(1, put["RequestedProvisionedConcurrentExecutions"])
        self.assertIn(put["Status"], ("IN_PROGRESS", "READY"))

        def ready():
            got = self.lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="warm")
            return got if got["Status"] == "READY" else None
        got = poll(ready, timeout=30, interval=0.1, message="provisioned concurrency to be READY")
        self.assertEqual(1, got["AvailableProvisionedConcurrentExecutions"])
        self.assertEqual(1, got["AllocatedProvisionedConcurrentExecutions"])
        self.assertRegex(got["LastModified"], LAMBDA_DATE)

        listed = self.lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
        self.assertEqual([self.daemon.function_arn(name, "warm")], [c["FunctionArn"] for c in listed])

        answer, payload = self.invoke_json(name, Qualifier="warm", LogType="Tail")
        self.assertEqual("1", answer["ExecutedVersion"])
        self.assertEqual("provisioned-concurrency", payload["initialization_type"])
        report = report_line(log_tail(answer), answer["ResponseMetadata"]["RequestId"])
        self.assertNotIn("Init Duration", report)

        deleted = self.lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="warm")
        self.assertEqual(204, deleted["ResponseMetadata"]["HTTPStatusCode"])
        self.assertClientError("ProvisionedConcurrencyConfigNotFoundException",
                               self.lam.get_provisioned_concurrency_config, FunctionName=name, Qualifier="warm")

    def test_provisioned_concurrency_on_latest_is_refused(self):
        name, _, _ = self.create_python_function()
        err = self.assertClientError("InvalidParameterValueException", self.lam.put_provisioned_concurrency_config,
                                     FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)
        self.assertEqual("Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
                         err.response["Error"]["Message"])


DESTINATION_HANDLER = r'''
import json

def handler(event, context):
    print("DESTINATION-EVENT " + json.dumps(event))
    return {"received": True}
'''


class AsyncDestinationTest(DaemonTestCase):

    def destination_events(self, name):
        events = []
        for line in self.daemon.function_log(name).splitlines():
            if "DESTINATION-EVENT " in line:
                events.append(json.loads(line.split("DESTINATION-EVENT ", 1)[1]))
        return events

    def test_on_failure_destination(self):
        dest, _, dest_created = self.create_python_function(source=DESTINATION_HANDLER)
        failing, _, failing_created = self.create_python_function()
        put = self.lam.put_function_event_invoke_config(
            FunctionName=failing, MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": dest_created["FunctionArn"]}})
        self.assertEqual(0, put["MaximumRetryAttempts"])
        self.assertEqual(dest_created["FunctionArn"], put["DestinationConfig"]["OnFailure"]["Destination"])
        self.assertTrue(put["FunctionArn"].startswith(failing_created["FunctionArn"]))
        got = self.lam.get_function_event_invoke_config(FunctionName=failing)
        self.assertEqual(0, got["MaximumRetryAttempts"])
        self.assertEqual(dest_created["FunctionArn"], got["DestinationConfig"]["OnFailure"]["Destination"])

        event = {"action": "fail", "n": 3, "id": str(uuid.uuid4())}
        answer = self.lam.invoke(FunctionName=failing, InvocationType="Event", Payload=json.dumps(event).encode())
        self.assertEqual(202, answer["StatusCode"])

        def arrived():
            records = self.daemon.v1("GET", f"/v1/usage/records?function={dest}").json()["records"]
            return records and [e for e in self.destination_events(dest) if e.get("requestPayload") == event]
        record = poll(arrived, timeout=30, interval=0.1, message="the OnFailure destination to be invoked")[0]
        self.assertEqual("RetriesExhausted", record["requestContext"]["condition"])
        self.assertEqual(1, record["requestContext"]["approximateInvokeCount"])
        self.assertTrue(record["requestContext"]["functionArn"].startswith(failing_created["FunctionArn"]))
        self.assertEqual("Unhandled", record["responseContext"]["functionError"])
        self.assertEqual("ValueError", record["responsePayload"]["errorType"])
        self.assertEqual("bad input 3", record["responsePayload"]["errorMessage"])
        # MaximumRetryAttempts 0: the failing function ran once.
        records = self.daemon.v1("GET", f"/v1/usage/records?function={failing}").json()["records"]
        self.assertEqual(1, len(records), records)

    def test_event_invoke_config_crud(self):
        name, _, _ = self.create_python_function()
        self.lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1,
                                                  MaximumEventAgeInSeconds=120)
        updated = self.lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2)
        self.assertEqual(2, updated["MaximumRetryAttempts"])
        self.assertEqual(120, updated["MaximumEventAgeInSeconds"], "UpdateFunctionEventInvokeConfig is partial")
        listed = self.lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
        self.assertEqual(1, len(listed))
        self.assertEqual(2, listed[0]["MaximumRetryAttempts"])
        self.lam.delete_function_event_invoke_config(FunctionName=name)
        self.assertClientError("ResourceNotFoundException", self.lam.get_function_event_invoke_config,
                               FunctionName=name)


URL_HANDLER = r'''
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "text/plain"},
            "body": "url says " + event.get("rawPath", "") + " " + event.get("rawQueryString", "")}
'''


class FunctionUrlTest(DaemonTestCase):

    def test_auth_none(self):
        name, _, created = self.create_python_function(source=URL_HANDLER)
        config = self.lam.create_function_url_config(FunctionName=name, AuthType="NONE")
        self.assertEqual(201, config["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual("NONE", config["AuthType"])
        self.assertEqual(created["FunctionArn"], config["FunctionArn"])
        url = config["FunctionUrl"]
        self.assertTrue(url.startswith(self.daemon.endpoint + "/"), url)
        self.assertTrue(url.endswith("/"), url)
        # As on AWS: public access needs this statement.
        self.lam.add_permission(FunctionName=name, StatementId="FunctionURLAllowPublicAccess",
                                Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")

        with urllib.request.urlopen(url + "greet?x=1", timeout=30) as resp:
            self.assertEqual(200, resp.status)
            self.assertEqual("text/plain", resp.headers["Content-Type"])
            self.assertEqual(b"url says /greet x=1", resp.read())

        got = self.lam.get_function_url_config(FunctionName=name)
        self.assertEqual(url, got["FunctionUrl"])
        self.assertEqual("NONE", got["AuthType"])
        listed = self.lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
        self.assertEqual([url], [c["FunctionUrl"] for c in listed])

        self.assertClientError("ResourceConflictException", self.lam.create_function_url_config,
                               FunctionName=name, AuthType="NONE")
        self.lam.delete_function_url_config(FunctionName=name)
        self.assertClientError("ResourceNotFoundException", self.lam.get_function_url_config, FunctionName=name)

    def test_auth_aws_iam(self):
        name, _, _ = self.create_python_function(source=URL_HANDLER)
        url = self.lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]

        unsigned = http_request(url + "secret")
        self.assertEqual(403, unsigned.status, unsigned)

        access_key, secret_key = self.daemon.require_credentials()
        signed_url, headers, body = sign_request(url + "secret?k=v", "GET", b"", None, access_key, secret_key,
                                                 REGION, "lambda")
        signed = http_request(signed_url, "GET", body, headers)
        self.assertEqual(200, signed.status, signed)
        self.assertEqual(b"url says /secret k=v", signed.body)

        signed_url, headers, body = sign_request(url + "secret", "GET", b"", None, access_key, "wrong" + secret_key,
                                                 REGION, "lambda")
        self.assertEqual(403, http_request(signed_url, "GET", body, headers).status)


# A custom runtime that streams its answer with the Runtime API's streaming mode: three
# pieces, or two and an error reported in the trailers when the event asks for it.
STREAMING_BOOTSTRAP = r"""#!/usr/bin/python3
import base64, http.client, json, os, socket, time
API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.split(":")
while True:
    conn = http.client.HTTPConnection(HOST, int(PORT))
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    res = conn.getresponse()
    rid = res.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(res.read() or b"{}")
    conn.close()
    s = socket.create_connection((HOST, int(PORT)))
    s.sendall(("POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
               "Lambda-Runtime-Function-Response-Mode: streaming\r\nContent-Type: text/plain\r\n"
               "Transfer-Encoding: chunked\r\n"
               "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n" % rid).encode())
    for piece in (b"one ", b"two "):
        s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        time.sleep(0.05)
    if event.get("fail"):
        err = base64.b64encode(json.dumps({"errorType": "Function.Broke", "errorMessage": "broke"}).encode())
        s.sendall(b"0\r\nLambda-Runtime-Function-Error-Type: Function.Broke\r\n"
                  b"Lambda-Runtime-Function-Error-Body: " + err + b"\r\n\r\n")
    else:
        s.sendall(b"6\r\nthree!\r\n0\r\n\r\n")
    s.recv(4096)
    s.close()
"""


class ResponseStreamingTest(DaemonTestCase):
    """InvokeMode and InvokeWithResponseStream, signed as botocore signs them. Debian's
    botocore (1.29) predates both, so the requests are built here; newer ones send the same."""

    def create_streaming_function(self):
        name = unique_name("stream")
        self.lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
                                 Code={"ZipFile": make_zip({"bootstrap": (STREAMING_BOOTSTRAP, 0o755)})}, Timeout=10)
        return name

    def signed(self, method, path, body=b""):
        access_key, secret_key = self.daemon.require_credentials()
        url, headers, body = sign_request(self.daemon.endpoint + path, method, body,
                                          {"Content-Type": "application/json"}, access_key, secret_key,
                                          REGION, "lambda")
        return http_request(url, method, body, headers)

    def url_config(self, method, name, body=None):
        answer = self.signed(method, "/2021-10-31/functions/%s/url" % name,
                             json.dumps(body).encode() if body is not None else b"")
        return answer.status, answer.json()

    def stream_events(self, name, payload):
        answer = self.signed("POST", "/2021-11-15/functions/%s/response-streaming-invocations" % name, payload)
        self.assertEqual(200, answer.status, answer)
        self.assertEqual("application/vnd.amazon.eventstream", answer.header("Content-Type"))
        buf = EventStreamBuffer()
        buf.add_data(answer.body)
        return answer, [(m.headers[":event-type"], m.payload) for m in buf]

    def test_function_url_invoke_mode_round_trip(self):
        name = self.create_streaming_function()
        status, created = self.url_config("POST", name, {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"})
        self.assertEqual(201, status, created)
        self.assertEqual("RESPONSE_STREAM", created["InvokeMode"])
        self.assertEqual("RESPONSE_STREAM", self.url_config("GET", name)[1]["InvokeMode"])
        with urllib.request.urlopen(created["FunctionUrl"], timeout=30) as resp:
            self.assertEqual("chunked", resp.headers["Transfer-Encoding"])
            self.assertEqual(b"one two three!", resp.read())

        status, updated = self.url_config("PUT", name, {"InvokeMode": "BUFFERED"})
        self.assertEqual(200, status, updated)
        self.assertEqual("BUFFERED", updated["InvokeMode"])
        self.assertEqual("BUFFERED", self.url_config("GET", name)[1]["InvokeMode"])
        # Buffered, the whole text is the function's result, which a function URL maps as a
        # response object or JSON: plain text is not one (502, as API Gateway answers).
        whole = http_request(created["FunctionUrl"])
        self.assertIsNone(whole.header("Transfer-Encoding"))
        self.assertEqual(502, whole.status, whole)

        status, refused = self.url_config("PUT", name, {"InvokeMode": "STREAMING"})
        self.assertEqual(400, status, refused)
        self.assertEqual("BUFFERED", self.url_config("GET", name)[1]["InvokeMode"])

    def test_invoke_with_response_stream(self):
        name = self.create_streaming_function()
        answer, events = self.stream_events(name, b"{}")
        self.assertEqual("$LATEST", answer.header("X-Amz-Executed-Version"))
        chunks = [p for t, p in events if t == "PayloadChunk"]
        self.assertEqual(b"one two three!", b"".join(chunks))
        self.assertGreaterEqual(len(chunks), 2, "the pieces arrive as the function writes them")
        self.assertEqual("InvokeComplete", events[-1][0])
        self.assertNotIn("ErrorCode", json.loads(events[-1][1]))

        _, events = self.stream_events(name, b'{"fail": true}')
        self.assertEqual(b"one two ", b"".join(p for t, p in events if t == "PayloadChunk"))
        complete = json.loads(events[-1][1])
        self.assertEqual("Function.Broke", complete["ErrorCode"])
        self.assertEqual("broke", complete["ErrorDetails"])

    def test_invoke_with_response_stream_of_a_buffered_function(self):
        name, _, _ = self.create_python_function(source=URL_HANDLER)
        _, events = self.stream_events(name, b'{"rawPath": "/p"}')
        payload = b"".join(p for t, p in events if t == "PayloadChunk")
        self.assertEqual("url says /p ", json.loads(payload)["body"])
        self.assertEqual("InvokeComplete", events[-1][0])


class PermissionsAndTagsTest(DaemonTestCase):

    def test_add_get_remove_permission(self):
        name, _, created = self.create_python_function()
        added = self.lam.add_permission(FunctionName=name, StatementId="s3-invoke", Action="lambda:InvokeFunction",
                                        Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::my-bucket")
        self.assertEqual(201, added["ResponseMetadata"]["HTTPStatusCode"])
        statement = json.loads(added["Statement"])
        self.assertEqual("s3-invoke", statement["Sid"])

        self.assertClientError("ResourceConflictException", self.lam.add_permission, FunctionName=name,
                               StatementId="s3-invoke", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")

        self.lam.add_permission(FunctionName=name, StatementId="account", Action="lambda:GetFunction",
                                Principal="123456789012")
        answer = self.lam.get_policy(FunctionName=name)
        self.assertTrue(answer["RevisionId"])
        policy = json.loads(answer["Policy"])
        self.assertEqual("2012-10-17", policy["Version"])
        self.assertEqual("default", policy["Id"])
        statements = {s["Sid"]: s for s in policy["Statement"]}
        self.assertEqual({"s3-invoke", "account"}, set(statements))
        s3 = statements["s3-invoke"]
        self.assertEqual("Allow", s3["Effect"])
        self.assertEqual("lambda:InvokeFunction", s3["Action"])
        self.assertEqual(created["FunctionArn"], s3["Resource"])
        self.assertEqual({"Service": "s3.amazonaws.com"}, s3["Principal"])
        self.assertEqual({"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}}, s3["Condition"])
        self.assertEqual({"AWS": "arn:aws:iam::123456789012:root"}, statements["account"]["Principal"])

        removed = self.lam.remove_permission(FunctionName=name, StatementId="s3-invoke")
        self.assertEqual(204, removed["ResponseMetadata"]["HTTPStatusCode"])
        policy = json.loads(self.lam.get_policy(FunctionName=name)["Policy"])
        self.assertEqual(["account"], [s["Sid"] for s in policy["Statement"]])
        self.lam.remove_permission(FunctionName=name, StatementId="account")
        self.assertClientError("ResourceNotFoundException", self.lam.get_policy, FunctionName=name)
        self.assertClientError("ResourceNotFoundException", self.lam.remove_permission, FunctionName=name,
                               StatementId="account")

    def test_tags(self):
        name, _, created = self.create_python_function(Tags={"team": "core"})
        arn = created["FunctionArn"]
        self.assertEqual({"team": "core"}, self.lam.list_tags(Resource=arn)["Tags"])
        tagged = self.lam.tag_resource(Resource=arn, Tags={"stage": "test", "cost centre": "a/b+c"})
        self.assertEqual(204, tagged["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual({"team": "core", "stage": "test", "cost centre": "a/b+c"},
                         self.lam.list_tags(Resource=arn)["Tags"])
        untagged = self.lam.untag_resource(Resource=arn, TagKeys=["team", "cost centre"])
        self.assertEqual(204, untagged["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual({"stage": "test"}, self.lam.list_tags(Resource=arn)["Tags"])
        self.assertEqual({"stage": "test"}, self.lam.get_function(FunctionName=name)["Tags"])
        self.assertClientError("ResourceNotFoundException", self.lam.list_tags,
                               Resource=self.daemon.function_arn(unique_name("missing")))


LAYER_HANDLER = r'''
import os, subprocess
import mylib

def handler(event, context):
    hello = subprocess.run(["hello"], capture_output=True, text=True)
    try:
        with open("/opt/python/mylib.py", "a") as f:
            f.write("VALUE = 'changed'\n")
        opt = "writable"
    except OSError as e:
        opt = e.strerror
    return {"mylib": mylib.VALUE, "hello": hello.stdout.strip(), "path": os.environ.get("PATH"), "opt": opt,
            "mylib_file": mylib.__file__}
'''


class LayersTest(DaemonTestCase):

    def publish(self, layer, files, **kwargs):
        zip_bytes = make_zip(files)
        answer = self.lam.publish_layer_version(LayerName=layer, Content={"ZipFile": zip_bytes},
                                                CompatibleRuntimes=["python3.11", "python3.12"], **kwargs)
        return answer, zip_bytes

    def test_layers(self):
        a, b = unique_name("layer-a"), unique_name("layer-b")
        a1, _ = self.publish(a, {"python/mylib.py": "VALUE = 'A1'\n"}, Description="first")
        self.assertEqual(201, a1["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual(1, a1["Version"])
        layer_arn = f"arn:aws:lambda:{REGION}:{self.daemon.account}:layer:{a}"
        self.assertEqual(layer_arn, a1["LayerArn"])
        self.assertEqual(f"{layer_arn}:1", a1["LayerVersionArn"])
        self.assertEqual("first", a1["Description"])
        a2, a2_zip = self.publish(a, {"python/mylib.py": "VALUE = 'A2'\n"})
        self.assertEqual(2, a2["Version"])
        self.assertEqual(sha256_b64(a2_zip), a2["Content"]["CodeSha256"])
        self.assertEqual(len(a2_zip), a2["Content"]["CodeSize"])
        b1, _ = self.publish(b, {"python/mylib.py": "VALUE = 'B1'\n",
                                 "bin/hello": ("#!/bin/sh\necho hello from a layer\n", 0o755)})

        name, _, created = self.create_python_function(
            source=LAYER_HANDLER, Layers=[a2["LayerVersionArn"], b1["LayerVersionArn"]])
        self.assertEqual([a2["LayerVersionArn"], b1["LayerVersionArn"]], [layer["Arn"] for layer in created["Layers"]])
        self.assertEqual(len(a2_zip), created["Layers"][0]["CodeSize"])
        _, payload = self.invoke_json(name)
        self.assertEqual("B1", payload["mylib"], "the later layer wins")
        self.assertEqual("hello from a layer", payload["hello"])
        self.assertIn("/opt/bin", payload["path"].split(":"))
        self.assertEqual("/opt/python/mylib.py", payload["mylib_file"])
        self.assertIn(payload["opt"], ("Read-only file system", "Permission denied"), "a function cannot change its layers")

        reversed_name, _, _ = self.create_python_function(
            source=LAYER_HANDLER, Layers=[b1["LayerVersionArn"], a2["LayerVersionArn"]])
        self.assertEqual("A2", self.invoke_json(reversed_name)[1]["mylib"])

        got = self.lam.get_layer_version(LayerName=a, VersionNumber=2)
        self.assertEqual(a2["LayerVersionArn"], got["LayerVersionArn"])
        self.assertEqual(["python3.11", "python3.12"], got["CompatibleRuntimes"])
        self.assertEqual(a2_zip, download(got["Content"]["Location"])[1])
        by_arn = self.lam.get_layer_version_by_arn(Arn=a2["LayerVersionArn"])
        self.assertEqual(2, by_arn["Version"])

        layers = {layer["LayerName"]: layer for layer in self.lam.list_layers()["Layers"]}
        self.assertEqual(2, layers[a]["LatestMatchingVersion"]["Version"])
        self.assertEqual(layer_arn, layers[a]["LayerArn"])
        self.assertIn(b, layers)
        versions = self.lam.list_layer_versions(LayerName=a)["LayerVersions"]
        self.assertEqual([2, 1], [v["Version"] for v in versions])

        deleted = self.lam.delete_layer_version(LayerName=b, VersionNumber=1)
        self.assertEqual(204, deleted["ResponseMetadata"]["HTTPStatusCode"])
        self.assertClientError("ResourceNotFoundException", self.lam.get_layer_version, LayerName=b, VersionNumber=1)
        _, payload = self.invoke_json(name)
        self.assertEqual(("B1", "hello from a layer"), (payload["mylib"], payload["hello"]),
                         "a function keeps the layers it was created with")

    def test_update_layers(self):
        layer = unique_name("layer-u")
        v1, _ = self.publish(layer, {"python/mylib.py": "VALUE = 'one'\n", "bin/hello": ("#!/bin/sh\necho 1\n", 0o755)})
        v2, _ = self.publish(layer, {"python/mylib.py": "VALUE = 'two'\n", "bin/hello": ("#!/bin/sh\necho 2\n", 0o755)})
        name, _, _ = self.create_python_function(source=LAYER_HANDLER, Layers=[v1["LayerVersionArn"]])
        self.assertEqual("one", self.invoke_json(name)[1]["mylib"])
        self.lam.update_function_configuration(FunctionName=name, Layers=[v2["LayerVersionArn"]])
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        self.assertEqual({"mylib": "two", "hello": "2"},
                         {k: v for k, v in self.invoke_json(name)[1].items() if k in ("mylib", "hello")})

    def test_unknown_layer_version(self):
        missing = f"arn:aws:lambda:{REGION}:{self.daemon.account}:layer:{unique_name('nope')}:1"
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
            self.create_python_function(Layers=[missing])
        self.assertEqual(f"Layer version {missing} does not exist.", cm.exception.response["Error"]["Message"])


def host_node_version():
    """The host's Node.js ("20.20.2"): what funcd runs every nodejs identifier on."""
    out = subprocess.run(["/usr/bin/node", "--version"], capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.strip().lstrip("v")


NODE_LAYER_HANDLER = r"""
const greeting = require('greeting');    // the layer's /opt/nodejs/node_modules
const versioned = require('versioned');  // /opt/nodejs/node<major>/node_modules comes first
exports.handler = async (event, context) => {
  console.warn('greeting', event.name);
  return {
    greeting: greeting.hello(event.name), versioned: versioned.where, nodePath: process.env.NODE_PATH,
    node: process.versions.node, arn: context.invokedFunctionArn, memory: context.memoryLimitInMB,
    name: context.functionName, remaining: context.getRemainingTimeInMillis(), requestId: context.awsRequestId,
  };
};
"""


class NodeRuntimeTest(DaemonTestCase):

    def test_nodejs_function_with_a_layer(self):
        version = host_node_version()
        major = version.split(".")[0]
        layer = unique_name("node-layer")
        published = self.lam.publish_layer_version(LayerName=layer, CompatibleRuntimes=["nodejs20.x"], Content={
            "ZipFile": make_zip({
                "nodejs/node_modules/greeting/index.js": "exports.hello = (n) => `hello, ${n}`;\n",
                "nodejs/node_modules/versioned/index.js": "exports.where = 'shared';\n",
                f"nodejs/node{major}/node_modules/versioned/index.js": f"exports.where = 'node{major}';\n",
            })})
        name = unique_name("node")
        created = self.lam.create_function(
            FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler", Timeout=5, MemorySize=256,
            Code={"ZipFile": make_zip({"index.js": NODE_LAYER_HANDLER})}, Layers=[published["LayerVersionArn"]])
        self.assertEqual("nodejs20.x", created["Runtime"])
        self.assertEqual([published["LayerVersionArn"]], [layer["Arn"] for layer in created["Layers"]])

        answer, payload = self.invoke_json(name, {"name": "layers"}, LogType="Tail")
        self.assertNotIn("FunctionError", answer, payload)
        self.assertEqual("hello, layers", payload["greeting"])
        self.assertEqual(f"node{major}", payload["versioned"], "the version's own directory is searched first")
        self.assertEqual(f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:/var/task", payload["nodePath"])
        self.assertEqual(version, payload["node"])
        self.assertEqual(self.daemon.function_arn(name), payload["arn"])
        self.assertEqual(name, payload["name"])
        self.assertEqual("256", payload["memory"])
        self.assertTrue(0 < payload["remaining"] <= 5000, payload)
        self.assertRegex(log_tail(answer), r"\t%s\tWARN\tgreeting layers\n" % re.escape(payload["requestId"]))

        # The version really used: RuntimeVersionConfig and the INIT_START line agree.
        raw = self.daemon.signed("GET", f"/2015-03-31/functions/{name}/configuration")
        self.assertEqual(200, raw.status, raw)
        version_arn = raw.json()["RuntimeVersionConfig"]["RuntimeVersionArn"]
        self.assertRegex(version_arn, r"^arn:aws:lambda:%s::runtime:[0-9a-f]{64}$" % REGION)
        log = poll(lambda: re.search(r"INIT_START Runtime Version: nodejs:(\S+)\tRuntime Version ARN: (\S+)",
                                     self.daemon.function_log(name)), message="the INIT_START line")
        self.assertEqual(version, log.group(1))
        self.assertEqual(version_arn, log.group(2))

    def test_a_newer_node_than_the_hosts_is_refused(self):
        version = host_node_version()
        newer = [m for m in (22, 24) if m > int(version.split(".")[0])]
        self.assertTrue(newer, f"this host's Node.js {version} is newer than every nodejs identifier")
        for major in newer:
            with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
                self.lam.create_function(FunctionName=unique_name("node"), Runtime=f"nodejs{major}.x", Role=ROLE,
                                         Handler="index.handler",
                                         Code={"ZipFile": make_zip({"index.js": "exports.handler = async () => 1;\n"})})
            self.assertEqual(400, cm.exception.response["ResponseMetadata"]["HTTPStatusCode"])
            self.assertIn(f"runtime nodejs{major}.x asks for Node.js {major}, but this host runs Node.js {version}",
                          cm.exception.response["Error"]["Message"])
        # An older major runs on the host's Node.js; switching it to a newer one is refused.
        name = unique_name("node")
        self.lam.create_function(FunctionName=name, Runtime="nodejs18.x", Role=ROLE, Handler="index.handler",
                                 Code={"ZipFile": make_zip({"index.js": "exports.handler = async () => process.version;\n"})})
        self.assertEqual("v" + version, self.invoke_json(name)[1])
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException):
            self.lam.update_function_configuration(FunctionName=name, Runtime=f"nodejs{newer[-1]}.x")
        self.assertEqual("nodejs18.x", self.lam.get_function_configuration(FunctionName=name)["Runtime"])
        # Plain `nodejs` is retired on Lambda, as it is here.
        with self.assertRaises(self.lam.exceptions.InvalidParameterValueException) as cm:
            self.lam.create_function(FunctionName=unique_name("node"), Runtime="nodejs", Role=ROLE,
                                     Handler="index.handler", Code={"ZipFile": make_zip({"index.js": ""})})
        self.assertIn("The runtime parameter of nodejs is no longer supported", cm.exception.response["Error"]["Message"])


class ListingTest(DaemonTestCase):
    COUNT = 55

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prefix = unique_name("many")
        cls.names = {f"{cls.prefix}-{i:02d}" for i in range(cls.COUNT)}
        for name in sorted(cls.names):
            cls.create_noop_function(name=name)

    def listed_names(self, functions):
        return [f["FunctionName"] for f in functions if f["FunctionName"].startswith(self.prefix)]

    def test_paginator(self):
        seen, pages = [], 0
        for page in self.lam.get_paginator("list_functions").paginate():
            pages += 1
            self.assertLessEqual(len(page["Functions"]), 50)
            seen += self.listed_names(page["Functions"])
        self.assertGreaterEqual(pages, 2)
        self.assertEqual(sorted(self.names), sorted(seen))

    def test_paginator_with_page_size(self):
        seen = []
        for page in self.lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 7}):
            self.assertLessEqual(len(page["Functions"]), 7)
            seen += self.listed_names(page["Functions"])
        self.assertEqual(sorted(self.names), sorted(seen))

    def test_marker_by_hand(self):
        seen, marker, pages = [], None, 0
        while True:
            args = {"MaxItems": 20}
            if marker:
                args["Marker"] = marker
            page = self.lam.list_functions(**args)
            pages += 1
            self.assertLessEqual(len(page["Functions"]), 20)
            seen += self.listed_names(page["Functions"])
            marker = page.get("NextMarker")
            if not marker:
                break
            self.assertLess(pages, 100, "NextMarker never ends")
        self.assertGreaterEqual(pages, 3)
        self.assertEqual(sorted(self.names), sorted(seen))

    def test_max_items_is_capped_at_50(self):
        page = self.lam.list_functions(MaxItems=10000)
        self.assertEqual(50, len(page["Functions"]))
        self.assertTrue(page.get("NextMarker"))

    def test_account_settings(self):
        settings = self.lam.get_account_settings()
        total = sum(len(p["Functions"]) for p in self.lam.get_paginator("list_functions").paginate())
        self.assertGreater(settings["AccountLimit"]["ConcurrentExecutions"], 0)
        self.assertGreater(settings["AccountLimit"]["UnreservedConcurrentExecutions"], 0)
        self.assertEqual(52428800, settings["AccountLimit"]["CodeSizeZipped"])
        self.assertEqual(total, settings["AccountUsage"]["FunctionCount"])
        self.assertGreater(settings["AccountUsage"]["TotalCodeSize"], 0)


class CrossApiTest(DaemonTestCase):

    def test_lambda_api_function_invoked_through_v1(self):
        name, _, _ = self.create_python_function(source=echo_handler("cross"))
        answer = self.daemon.v1("POST", f"/v1/functions/{name}/invoke", b'{"via": "v1"}')
        self.assertEqual(200, answer.status, answer)
        payload = answer.json()
        self.assertEqual("cross", payload["marker"])
        self.assertEqual({"via": "v1"}, payload["event"])
        listed = self.daemon.v1("GET", "/v1/functions").json()["functions"]
        self.assertIn(name, [f["name"] for f in listed])

    def test_v1_function_seen_by_the_lambda_api(self):
        name = unique_name("v1")
        zip_bytes = python_zip(echo_handler("from-v1"))
        deployed = self.daemon.v1("PUT", f"/v1/functions/{name}?runtime=python3&handler=app.handler", zip_bytes,
                                  content_type="application/zip")
        self.assertEqual(201, deployed.status, deployed)

        names = [f["FunctionName"] for p in self.lam.get_paginator("list_functions").paginate() for f in p["Functions"]]
        self.assertIn(name, names)
        c = self.lam.get_function(FunctionName=name)["Configuration"]
        self.assertEqual("app.handler", c["Handler"])
        self.assertEqual(sha256_b64(zip_bytes), c["CodeSha256"])
        self.assertEqual("Active", c["State"])
        answer, payload = self.invoke_json(name, {"via": "boto3"})
        self.assertEqual(200, answer["StatusCode"])
        self.assertEqual("from-v1", payload["marker"])
        self.assertEqual({"via": "boto3"}, payload["event"])


CALLER_HANDLER = b"""
import json, os
import boto3

def handler(event, context):
    # What Lambda gives a function: an endpoint and credentials in the environment.
    lam = boto3.client("lambda", endpoint_url=os.environ["AWS_ENDPOINT_URL_LAMBDA"],
                       region_name=os.environ["AWS_REGION"])
    answer = lam.invoke(FunctionName=event["target"], Payload=json.dumps({"from": "caller"}).encode())
    out = {"status": answer["StatusCode"], "payload": json.loads(answer["Payload"].read())}
    try:
        lam.list_functions()
        out["list_functions"] = "allowed"
    except Exception as e:
        out["list_functions"] = getattr(e, "response", {}).get("Error", {}).get("Code", repr(e))
    return out
"""


class V1QualifierTest(DaemonTestCase):
    """/v1 sees the versions and aliases made through Lambda's API and can invoke them."""

    def test_v1_invokes_versions_and_aliases(self):
        name, _, _ = self.create_python_function(source=echo_handler("one"))
        self.lam.publish_version(FunctionName=name)
        self.lam.update_function_code(FunctionName=name, ZipFile=python_zip(echo_handler("two")))
        self.lam.create_alias(FunctionName=name, Name="stable", FunctionVersion="1")
        described = self.daemon.v1("GET", f"/v1/functions/{name}").json()
        self.assertEqual("$LATEST", described["version"], "$LATEST changed since version 1 was published")
        self.assertEqual([1], described["versions"])
        self.assertEqual({"version": 1}, described["aliases"]["stable"])
        for qualifier, marker, executed in (("", "two", "$LATEST"), ("?qualifier=1", "one", "1"),
                                            ("?qualifier=stable", "one", "1"), ("?qualifier=%24LATEST", "two", "$LATEST")):
            answer = self.daemon.v1("POST", f"/v1/functions/{name}/invoke{qualifier}", b"{}")
            self.assertEqual(200, answer.status, answer)
            self.assertEqual(marker, answer.json()["marker"], qualifier)
            self.assertEqual(executed, answer.headers["x-funcd-executed-version"], qualifier)
        self.assertEqual(404, self.daemon.v1("POST", f"/v1/functions/{name}/invoke?qualifier=7", b"{}").status)
        # An event queued through /v1 for a qualifier runs that version.
        marker = str(uuid.uuid4())
        queued = self.daemon.v1("POST", f"/v1/functions/{name}/invoke?qualifier=stable",
                                json.dumps({"action": "async", "id": marker}).encode(),
                                headers={"X-Funcd-Invocation-Type": "Event"})
        self.assertEqual(202, queued.status, queued)
        records = poll(lambda: [r for r in self.daemon.v1("GET", f"/v1/usage/records?function={name}").json()["records"]
                                if r["request_id"] == queued.json()["request_id"]], timeout=20,
                       message="the queued event to run")
        self.assertEqual(1, records[0]["version"])
        # Publishing makes /v1 run the new version again.
        self.lam.publish_version(FunctionName=name)
        self.assertEqual(2, self.daemon.v1("GET", f"/v1/functions/{name}").json()["version"])
        answer = self.daemon.v1("POST", f"/v1/functions/{name}/invoke", b"{}")
        self.assertEqual("2", answer.headers["x-funcd-executed-version"])


class FunctionsCallingFuncdTest(DaemonTestCase):
    """A function on the host's network calls another one with boto3, as on Lambda."""

    def test_host_network_function_invokes_another_with_the_invoke_only_key(self):
        target, _, _ = self.create_python_function(source=echo_handler("callee"))
        caller = unique_name("caller")
        body = json.dumps({"runtime": "python3", "handler": "app.handler", "network": "host", "timeout_s": 30,
                           "memory_mb": 256,
                           "code": {"zip_base64": base64.b64encode(python_zip(CALLER_HANDLER)).decode()}}).encode()
        deployed = self.daemon.v1("PUT", f"/v1/functions/{caller}", body)
        self.assertEqual(201, deployed.status, deployed)
        answer, payload = self.invoke_json(caller, {"target": target})
        self.assertNotIn("FunctionError", answer, payload)
        self.assertEqual(200, payload["status"])
        self.assertEqual("callee", payload["payload"]["marker"])
        self.assertEqual({"from": "caller"}, payload["payload"]["event"])
        # The key functions get may invoke, and nothing else.
        self.assertEqual("AccessDeniedException", payload["list_functions"])

    def test_isolated_functions_get_no_key(self):
        name, _, _ = self.create_python_function(source=b"""
import os
def handler(event, context):
    return {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL_LAMBDA", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
""")
        _, payload = self.invoke_json(name)
        self.assertEqual({"AWS_ENDPOINT_URL_LAMBDA": None, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
                         payload)


class RestartTest(DaemonTestCase):
    """Everything made through Lambda's API survives a restart of the daemon."""

    def test_versions_aliases_layers_and_settings_survive_a_restart(self):
        layer = unique_name("layer-r")
        published = self.lam.publish_layer_version(LayerName=layer,
                                                   Content={"ZipFile": make_zip({"python/mylib.py": "VALUE = 'L'\n"})})
        name, _, _ = self.create_python_function(source=echo_handler("one"), Layers=[published["LayerVersionArn"]])
        self.lam.publish_version(FunctionName=name)
        self.lam.update_function_code(FunctionName=name, ZipFile=python_zip(echo_handler("two")))
        self.lam.publish_version(FunctionName=name)
        self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                              RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
        arn = self.lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        self.lam.tag_resource(Resource=arn, Tags={"team": "blue"})
        self.lam.add_permission(FunctionName=name, StatementId="s1", Action="lambda:InvokeFunction",
                                Principal="s3.amazonaws.com", Qualifier="live")
        self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
        self.lam.create_function_url_config(FunctionName=name, AuthType="NONE")
        self.lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
        before = {"config": self.lam.get_function_configuration(FunctionName=name),
                  "alias": self.lam.get_alias(FunctionName=name, Name="live"),
                  "versions": self.lam.list_versions_by_function(FunctionName=name)["Versions"]}

        self.daemon.restart()
        type(self)._lambda_client = None  # the new port

        config = self.lam.get_function_configuration(FunctionName=name)
        for key in ("CodeSha256", "RevisionId", "Layers", "Version", "LastModified"):
            self.assertEqual(before["config"][key], config[key], key)
        alias = self.lam.get_alias(FunctionName=name, Name="live")
        self.assertEqual(before["alias"]["RoutingConfig"], alias["RoutingConfig"])
        self.assertEqual([v["Version"] for v in before["versions"]],
                         [v["Version"] for v in self.lam.list_versions_by_function(FunctionName=name)["Versions"]])
        self.assertEqual({"team": "blue"}, self.lam.list_tags(Resource=arn)["Tags"])
        self.assertIn('"Sid":"s1"', self.lam.get_policy(FunctionName=name, Qualifier="live")["Policy"].replace(" ", ""))
        self.assertEqual(5, self.lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"])
        self.assertEqual("NONE", self.lam.get_function_url_config(FunctionName=name)["AuthType"])
        self.assertEqual(0, self.lam.get_function_event_invoke_config(FunctionName=name)["MaximumRetryAttempts"])
        markers = {self.invoke_json(name, Qualifier=v)[1]["marker"] for v in ("1", "2")}
        self.assertEqual({"one", "two"}, markers, "each version kept its own code")
        answer, _ = self.invoke_json(name, Qualifier="live")
        self.assertIn(answer["ExecutedVersion"], ("1", "2"))
        self.assertEqual(published["Version"],
                         self.lam.get_layer_version(LayerName=layer, VersionNumber=published["Version"])["Version"])


class EventSourceMappingsTest(DaemonTestCase):
    """PostgreSQL mappings as boto3 sends them, against no PostgreSQL server (port 1: nothing
    listens), so a valid one is refused 400 naming why (docs/event-sources.md)."""

    POSTGRES = dict(
        SelfManagedEventSource={"Endpoints": {"POSTGRESQL": ["host=127.0.0.1 port=1 dbname=shop"]}},
        SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": "app:hunter2-secret"}],
        Topics=["public.orders"], StartingPosition="LATEST", BatchSize=10,
        FilterCriteria={"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]},
        FunctionResponseTypes=["ReportBatchItemFailures"])

    def test_a_postgres_source_reaches_funcd_and_is_refused_when_its_server_cannot_be_reached(self):
        name, _, _ = self.create_python_function()
        err = self.assertClientError("InvalidParameterValueException", self.lam.create_event_source_mapping,
                                     FunctionName=name, **self.POSTGRES)
        self.assertEqual(400, err.response["ResponseMetadata"]["HTTPStatusCode"])
        self.assertIn("PostgreSQL", str(err))
        self.assertNotIn("hunter2", str(err.response))
        self.assertEqual([], self.lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"])

    def test_other_sources_unknown_mappings_and_bad_values(self):
        name, _, _ = self.create_python_function()
        err = self.assertClientError("InvalidParameterValueException", self.lam.create_event_source_mapping,
                                     FunctionName=name,
                                     EventSourceArn=f"arn:aws:sqs:{REGION}:000000000000:orders")
        self.assertIn("Unrecognized event source.", str(err))
        self.assertClientError("ResourceNotFoundException", self.lam.get_event_source_mapping,
                               UUID=str(uuid.uuid4()))
        self.assertClientError("ResourceNotFoundException", self.lam.delete_event_source_mapping,
                               UUID=str(uuid.uuid4()))
        self.assertClientError("InvalidParameterValueException", self.lam.create_event_source_mapping,
                               FunctionName=name, **dict(self.POSTGRES, MaximumRecordAgeInSeconds=30))
        self.assertClientError("ResourceNotFoundException", self.lam.create_event_source_mapping,
                               FunctionName=unique_name("nobody"), **self.POSTGRES)
        self.assertIn("EventSourceMappings", self.lam.list_event_source_mappings())


class ExplicitKeysTest(DaemonTestCase):
    """Keys given to the daemon; an access key of 12 digits is the account id in ARNs."""
    aws_keys = ("111122223333", "explicit-secret-for-tests")

    def test_account_in_arns(self):
        self.assertEqual("111122223333", account_for(self.aws_keys[0]))
        name, _, created = self.create_python_function()
        self.assertEqual(f"arn:aws:lambda:{REGION}:111122223333:function:{name}", created["FunctionArn"])
        _, payload = self.invoke_json(name)
        self.assertEqual(created["FunctionArn"], payload["invoked_function_arn"])

    def test_region_in_arns_is_the_signing_region(self):
        eu = self.daemon.client(region="eu-west-1")
        name = unique_name("eu")
        created = eu.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                                     Code={"ZipFile": python_zip(echo_handler("eu"))})
        self.assertEqual(f"arn:aws:lambda:eu-west-1:111122223333:function:{name}", created["FunctionArn"])
        got = eu.get_function_configuration(FunctionName=name)
        self.assertEqual(created["FunctionArn"], got["FunctionArn"])

    def test_unknown_access_key_is_refused(self):
        self.assertClientError("UnrecognizedClientException", self.daemon.client(
            access_key="AKIAFUNCDUNKNOWN0000", secret_key="nope").list_functions)


if __name__ == "__main__":
    unittest.main()
