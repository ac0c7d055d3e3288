"""funcd's Lambda API driven by Debian's aws CLI (v2), and SigV4 refusals.

The CLI reads the credentials the daemon wrote (DATA_DIR/aws-credentials, profile funcd).
Run: FUNCD_BINARY=... FUNCD_NOOP_BOOTSTRAP=... /usr/bin/python3 tests/lambda_api/test_awscli.py -v
"""

import base64
import datetime
import json
import os
import re
import tempfile
import time
import unittest

import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import (ROLE, DaemonTestCase, bootstrap_zip, echo_handler, http_request, python_zip, sha256_b64,
                     sign_request, signing_clock, unique_name)

SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                      "Check your AWS Secret Access Key and signing method. "
                      "Consult the service documentation for details.")


class AwsCliTest(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.files = tempfile.TemporaryDirectory(prefix="funcd-awscli-")
        cls.addClassCleanup(cls.files.cleanup)

    def write(self, name, data):
        path = os.path.join(self.files.name, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def aws_ok(self, *args):
        rc, out, err = self.daemon.aws(*args)
        self.assertEqual(0, rc, f"aws {' '.join(map(str, args))} failed:\n{err}")
        return out

    def create(self, name, zip_path, runtime="python3.11", handler="app.handler"):
        return self.aws_ok("lambda", "create-function", "--function-name", name, "--runtime", runtime,
                           "--role", ROLE, "--handler", handler, "--zip-file", f"fileb://{zip_path}",
                           "--timeout", "5")

    def test_function_lifecycle(self):
        name = unique_name("cli")
        zip_bytes = python_zip(echo_handler("cli-one"))
        created = self.create(name, self.write(f"{name}.zip", zip_bytes))
        self.assertEqual(name, created["FunctionName"])
        self.assertEqual(sha256_b64(zip_bytes), created["CodeSha256"])
        self.assertEqual(self.daemon.function_arn(name), created["FunctionArn"])

        # One `aws` call's own time, measured here, against the waiter's: a waiter that needed
        # a second poll would also have slept its 5 s delay between the two.
        started = time.monotonic()
        self.aws_ok("lambda", "get-function", "--function-name", name)
        one_call = time.monotonic() - started
        started = time.monotonic()
        rc, _, err = self.daemon.aws("lambda", "wait", "function-active-v2", "--function-name", name)
        self.assertEqual(0, rc, err)
        self.assertLess(time.monotonic() - started, one_call + 4.5, "the waiter should succeed on its first poll")

        outfile = os.path.join(self.files.name, f"{name}.out")
        invoked = self.aws_ok("lambda", "invoke", "--function-name", name, "--cli-binary-format",
                              "raw-in-base64-out", "--payload", '{"from": "cli"}', "--log-type", "Tail", outfile)
        self.assertEqual(200, invoked["StatusCode"])
        self.assertEqual("$LATEST", invoked["ExecutedVersion"])
        self.assertIn("REPORT RequestId:", base64.b64decode(invoked["LogResult"]).decode())
        with open(outfile) as f:
            payload = json.load(f)
        self.assertEqual({"from": "cli"}, payload["event"])
        self.assertEqual("cli-one", payload["marker"])

        listed = self.aws_ok("lambda", "list-functions")
        self.assertIn(name, [f["FunctionName"] for f in listed["Functions"]])

        got = self.aws_ok("lambda", "get-function", "--function-name", name)
        self.assertEqual("Active", got["Configuration"]["State"])
        self.assertEqual(sha256_b64(zip_bytes), got["Configuration"]["CodeSha256"])
        self.assertTrue(got["Code"]["Location"].startswith("http"))

        published = self.aws_ok("lambda", "publish-version", "--function-name", name, "--description", "from cli")
        self.assertEqual("1", published["Version"])
        alias = self.aws_ok("lambda", "create-alias", "--function-name", name, "--name", "live",
                            "--function-version", "1")
        self.assertEqual(self.daemon.function_arn(name, "live"), alias["AliasArn"])
        invoked = self.aws_ok("lambda", "invoke", "--function-name", f"{name}:live", outfile)
        self.assertEqual("1", invoked["ExecutedVersion"])
        invoked = self.aws_ok("lambda", "invoke", "--function-name", name, "--qualifier", "live", outfile)
        self.assertEqual("1", invoked["ExecutedVersion"])

        rc, out, err = self.daemon.aws("lambda", "delete-function", "--function-name", name)
        self.assertEqual(0, rc, err)
        rc, _, err = self.daemon.aws("lambda", "get-function", "--function-name", name)
        self.assertNotEqual(0, rc)
        self.assertIn("ResourceNotFoundException", err)

    def test_list_functions_page_by_page(self):
        prefix = unique_name("clipage")
        names = {f"{prefix}-{i}" for i in range(3)}
        zip_path = self.write(f"{prefix}.zip", bootstrap_zip())
        for name in names:
            self.create(name, zip_path, runtime="provided.al2023", handler="bootstrap")
        # MaxItems=1 per request: the CLI follows NextMarker until it is absent.
        listed = self.aws_ok("lambda", "list-functions", "--page-size", "1")
        seen = [f["FunctionName"] for f in listed["Functions"] if f["FunctionName"].startswith(prefix)]
        self.assertEqual(sorted(names), sorted(seen))
        # --max-items cuts the output and hands out a NextToken to continue from.
        first = self.aws_ok("lambda", "list-functions", "--max-items", "1")
        self.assertEqual(1, len(first["Functions"]))
        self.assertIn("NextToken", first)
        rest = self.aws_ok("lambda", "list-functions", "--starting-token", first["NextToken"])
        self.assertNotIn(first["Functions"][0]["FunctionName"], [f["FunctionName"] for f in rest["Functions"]])

    def test_credentials_file_written_by_the_daemon(self):
        path = os.path.join(self.daemon.data_dir, "aws-credentials")
        self.assertEqual(0o600, os.stat(path).st_mode & 0o777)
        access_key, secret_key = self.daemon.require_credentials()
        self.assertRegex(access_key, r"^\w{12,128}$")
        self.assertGreaterEqual(len(secret_key), 20)
        listed = self.aws_ok("lambda", "list-functions")
        self.assertIn("Functions", listed)

    def test_account_settings(self):
        settings = self.aws_ok("lambda", "get-account-settings")
        self.assertGreater(settings["AccountLimit"]["ConcurrentExecutions"], 0)
        self.assertIn("FunctionCount", settings["AccountUsage"])

    def test_missing_function(self):
        rc, _, err = self.daemon.aws("lambda", "get-function", "--function-name", unique_name("missing"))
        self.assertEqual(254, rc, err)
        self.assertIn("ResourceNotFoundException", err)
        self.assertIn("Function not found: arn:aws:lambda:", err)

    # SigV4 refusals, as the CLI reports them

    def credentials_file(self, access_key, secret_key):
        return self.write(f"credentials-{unique_name('c')}", (
            f"[funcd]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n").encode())

    def test_wrong_secret(self):
        access_key, secret_key = self.daemon.require_credentials()
        creds = self.credentials_file(access_key, "wrong" + secret_key)
        rc, _, err = self.daemon.aws("lambda", "list-functions", env={"AWS_SHARED_CREDENTIALS_FILE": creds})
        self.assertNotEqual(0, rc)
        self.assertIn("InvalidSignatureException", err)
        self.assertIn("The request signature we calculated does not match", err)

    def test_unknown_access_key(self):
        creds = self.credentials_file("AKIAFUNCDUNKNOWNKEY0", "whatever")
        rc, _, err = self.daemon.aws("lambda", "list-functions", env={"AWS_SHARED_CREDENTIALS_FILE": creds})
        self.assertNotEqual(0, rc)
        self.assertIn("UnrecognizedClientException", err)
        self.assertIn("The security token included in the request is invalid.", err)

    def test_unsigned_cli_request(self):
        rc, _, err = self.daemon.aws("--no-sign-request", "lambda", "list-functions")
        self.assertNotEqual(0, rc)
        self.assertIn("MissingAuthenticationTokenException", err)


class SigV4Test(DaemonTestCase):
    """Requests signed (or not) by botocore's own signer, checked as AWS checks them."""

    def assertAwsError(self, response, status, code, message=None):
        self.assertEqual(status, response.status, response)
        self.assertEqual(code, response.header("x-amzn-ErrorType", "").split(":")[0], response)
        body = response.json()
        text = body.get("message", body.get("Message"))
        if message is not None:
            self.assertEqual(message, text, body)
        return text

    def test_signed_request_is_accepted(self):
        response = self.daemon.signed("GET", "/2015-03-31/functions")
        self.assertEqual(200, response.status, response)
        self.assertIn("Functions", response.json())
        self.assertTrue(response.header("x-amzn-RequestId"))

    def test_trailing_slash_path_is_accepted(self):
        # What Debian's awscli and python3-botocore send for ListFunctions.
        response = self.daemon.signed("GET", "/2015-03-31/functions/")
        self.assertEqual(200, response.status, response)

    def test_percent_encoded_path_is_verified_as_sent(self):
        name, _, created = self.create_python_function()
        path = "/2015-03-31/functions/" + name + "%3A%24LATEST/invocations"
        response = self.daemon.signed("POST", path, b'{"a": 1}')
        self.assertEqual(200, response.status, response)
        self.assertEqual("$LATEST", response.header("X-Amz-Executed-Version"))
        arn = created["FunctionArn"].replace(":", "%3A")
        response = self.daemon.signed("GET", f"/2017-03-31/tags/{arn}")
        self.assertEqual(200, response.status, response)

    def test_expired_signature(self):
        now = datetime.datetime.utcnow()
        response = self.daemon.signed("GET", "/2015-03-31/functions", clock_offset=datetime.timedelta(minutes=-10))
        text = self.assertAwsError(response, 403, "InvalidSignatureException")
        # Signature expired: 20150806T131223Z is now earlier than 20150806T131534Z (20150806T132034Z - 5 min.)
        m = re.fullmatch(r"Signature expired: (\d{8}T\d{6}Z) is now earlier than (\d{8}T\d{6}Z) "
                         r"\((\d{8}T\d{6}Z) - 5 min\.\)", text)
        self.assertIsNotNone(m, text)
        signed_at, earliest, server_now = (datetime.datetime.strptime(t, "%Y%m%dT%H%M%SZ") for t in m.groups())
        self.assertLess(abs((signed_at - (now - datetime.timedelta(minutes=10))).total_seconds()), 60, text)
        self.assertLess(abs((server_now - now).total_seconds()), 60, text)
        self.assertEqual(server_now - datetime.timedelta(minutes=5), earliest, text)

    def test_expired_signature_through_boto3(self):
        client = self.daemon.client()
        with signing_clock(datetime.timedelta(minutes=-10)):
            with self.assertRaises(ClientError) as cm:
                client.list_functions()
        self.assertEqual("InvalidSignatureException", cm.exception.response["Error"]["Code"])
        self.assertTrue(cm.exception.response["Error"]["Message"].startswith("Signature expired: "))

    def test_signature_from_the_future(self):
        response = self.daemon.signed("GET", "/2015-03-31/functions", clock_offset=datetime.timedelta(minutes=10))
        text = self.assertAwsError(response, 403, "InvalidSignatureException")
        self.assertTrue(text.startswith("Signature not yet current: "), text)

    def test_small_clock_skew_is_accepted(self):
        response = self.daemon.signed("GET", "/2015-03-31/functions", clock_offset=datetime.timedelta(minutes=-4))
        self.assertEqual(200, response.status, response)

    def test_wrong_secret(self):
        access_key, secret_key = self.daemon.require_credentials()
        response = self.daemon.signed("GET", "/2015-03-31/functions", access_key=access_key,
                                      secret_key=secret_key + "x")
        self.assertAwsError(response, 403, "InvalidSignatureException", SIGNATURE_MISMATCH)

    def test_body_changed_after_signing(self):
        name, _, _ = self.create_python_function()
        url, headers, _ = sign_request(f"{self.daemon.endpoint}/2015-03-31/functions/{name}/invocations", "POST",
                                       b'{"a": 1}', None, *self.daemon.require_credentials())
        response = http_request(url, "POST", b'{"a": 2}', headers)
        self.assertAwsError(response, 403, "InvalidSignatureException", SIGNATURE_MISMATCH)

    def test_signed_for_another_service(self):
        response = self.daemon.signed("GET", "/2015-03-31/functions", service="s3")
        self.assertAwsError(response, 403, "InvalidSignatureException")

    def test_unknown_access_key(self):
        response = self.daemon.signed("GET", "/2015-03-31/functions", access_key="AKIAFUNCDUNKNOWNKEY0",
                                      secret_key="whatever")
        self.assertAwsError(response, 403, "UnrecognizedClientException",
                            "The security token included in the request is invalid.")

    def test_no_authorization(self):
        response = self.daemon.raw("GET", "/2015-03-31/functions")
        self.assertAwsError(response, 403, "MissingAuthenticationTokenException", "Missing Authentication Token")

    def test_no_authorization_through_boto3(self):
        client = self.daemon.session().client("lambda", endpoint_url=self.daemon.endpoint,
                                              config=Config(signature_version=botocore.UNSIGNED,
                                                            retries={"max_attempts": 1}))
        with self.assertRaises(ClientError) as cm:
            client.list_functions()
        self.assertEqual("MissingAuthenticationTokenException", cm.exception.response["Error"]["Code"])

    def test_bearer_token_is_not_a_lambda_credential(self):
        response = self.daemon.raw("GET", "/2015-03-31/functions", headers={"Authorization": f"Bearer {self.daemon.token}"})
        self.assertEqual(403, response.status, response)

    def test_v1_api_still_uses_its_bearer_token(self):
        self.assertEqual(200, self.daemon.v1("GET", "/v1/functions").status)
        self.assertEqual(401, self.daemon.signed("GET", "/v1/functions").status)


if __name__ == "__main__":
    unittest.main()
