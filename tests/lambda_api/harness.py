"""Starts the real funcd daemon for the Lambda API suites and gives them its clients.

Standard library plus boto3/botocore only; run with Debian's /usr/bin/python3, which has
python3-boto3. Nothing between the clients and the daemon is substituted: boto3, the aws
CLI and the JavaScript SDK sign and send their requests exactly as they would to AWS.

Environment:
  FUNCD_BINARY           the funcd executable (required)
  FUNCD_NOOP_BOOTSTRAP   the noop `provided` bootstrap (required by tests that deploy it)
  FUNCD_KEEP_DATA=1      keep each daemon's data directory (and its log) after the run

Also a launcher for suites in other languages:

  /usr/bin/python3 harness.py --run node --test js/client_lambda.test.mjs

starts a daemon, runs the command with FUNCD_ENDPOINT, FUNCD_DATA_DIR, FUNCD_API_TOKEN,
AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, AWS_DEFAULT_REGION (and the other AWS_* settings
the CLI gets) in its environment, stops the daemon and exits with the command's status.
"""

import base64
import configparser
import contextlib
import ctypes
import datetime as _datetime
import hashlib
import importlib
import http.client
import io
import itertools
import json
import os
import random
import re
import shutil
import signal
import stat
import string
import subprocess
import sys
import tempfile
import time
import types
import unittest
import urllib.parse
import zipfile

import boto3
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
RUNTIME_DIR = os.path.join(SOURCE_DIR, "runtime")

AWS_CLI = "/usr/bin/aws"  # Debian's awscli; `aws` on PATH may be another installation
REGION = "us-east-1"
PROFILE = "funcd"
# Any role ARN of the right shape: funcd does not assume roles, AWS validates the format.
ROLE = "arn:aws:iam::123456789012:role/lambda-role"

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15
LOG_TAIL_LINES = 400


def required_env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (CMake sets it for ctest; export it to run the suite by hand)")
    if not os.path.exists(value):
        raise RuntimeError(f"{name}={value} does not exist; build it first")
    return value


_names = itertools.count(1)


def unique_name(prefix="fn"):
    """A function (or layer, alias) name no other test uses: prefix-<n>-<random>."""
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
    return f"{prefix}-{next(_names)}-{suffix}"


def account_for(access_key_id):
    """The account id funcd puts in ARNs for this access key."""
    return access_key_id if re.fullmatch(r"\d{12}", access_key_id or "") else "000000000000"


def poll(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Calls predicate until it returns something truthy; returns that, or fails at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


# --- zips -------------------------------------------------------------------------------

def make_zip(files):
    """A zip in memory from {path: text or bytes or (content, mode)}; mode defaults to 0644."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, entry in sorted(files.items()):
            content, mode = entry if isinstance(entry, tuple) else (entry, 0o644)
            if isinstance(content, str):
                content = content.encode()
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            info.create_system = 3  # Unix, so the permission bits below are honoured
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def python_zip(source, module="app", extra=None):
    """A zip holding `<module>.py` (and any extra files)."""
    files = {f"{module}.py": source}
    files.update(extra or {})
    return make_zip(files)


def bootstrap_zip():
    """A zip holding the noop custom runtime as an executable `bootstrap`."""
    with open(required_env("FUNCD_NOOP_BOOTSTRAP"), "rb") as f:
        return make_zip({"bootstrap": (f.read(), 0o755)})


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# --- HTTP -------------------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return f"Response({self.status}, {self.headers}, {self.body[:500]!r})"


def http_request(url, method="GET", body=b"", headers=None, timeout=60):
    """One HTTP request, sent as given (the path is not re-quoted); any status is returned."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, target, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


@contextlib.contextmanager
def signing_clock(offset):
    """Makes botocore's SigV4 signer see the clock moved by `offset` (a timedelta)."""
    real = _datetime.datetime

    class Shifted(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() + offset

        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + offset

    shim = types.SimpleNamespace(**{k: getattr(_datetime, k) for k in dir(_datetime) if not k.startswith("__")})
    shim.datetime = Shifted
    # With awscrt installed (Debian's awscli pulls it in), botocore signs with the CRT
    # signer, whose module reads the clock on its own.
    modules = [botocore.auth]
    try:
        modules.append(importlib.import_module("botocore.crt.auth"))
    except ImportError:
        pass
    saved = [m.datetime for m in modules]
    for m in modules:
        m.datetime = shim
    try:
        yield
    finally:
        for m, d in zip(modules, saved):
            m.datetime = d


def sign_request(url, method="GET", body=b"", headers=None, access_key=None, secret_key=None,
                 region=REGION, service="lambda", clock_offset=None):
    """Signs a request with SigV4 as botocore does; returns (url, headers, body) to send."""
    if isinstance(body, str):
        body = body.encode()
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    signer = SigV4Auth(Credentials(access_key, secret_key), service, region)
    if clock_offset is None:
        signer.add_auth(request)
    else:
        with signing_clock(clock_offset):
            signer.add_auth(request)
    prepared = request.prepare()
    return prepared.url, dict(prepared.headers.items()), prepared.body or b""


# --- the daemon -------------------------------------------------------------------------

def _stop_with_parent():
    """In the child before exec: SIGTERM when the test process dies (a ctest timeout kill)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Daemon:
    """The real funcd on a free loopback port with a fresh data directory.

    `aws_keys=(access_key_id, secret)` passes the Lambda API's credentials to the daemon
    through FUNCD_AWS_ACCESS_KEY_ID / FUNCD_AWS_SECRET_ACCESS_KEY; without it the daemon
    writes DATA_DIR/aws-credentials itself and the clients read that file.
    """

    def __init__(self, extra_args=(), aws_keys=None):
        self.binary = required_env("FUNCD_BINARY")
        self.dir = tempfile.mkdtemp(prefix="funcd-lambda-api-")
        self.data_dir = os.path.join(self.dir, "data")
        os.mkdir(self.data_dir)
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.sandbox = "on" if os.geteuid() == 0 else "off"
        self.aws_keys = aws_keys
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self._log = None

    # lifecycle

    def start(self):
        args = [self.binary, "serve",
                "--listen", "127.0.0.1:0",
                "--data-dir", self.data_dir,
                "--runtime-dir", RUNTIME_DIR,
                "--sandbox", self.sandbox,
                "--log-level", "debug"] + self.extra_args
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FUNCD_AWS_", "AWS_")) and k != "FUNCD_API_TOKEN"}
        if self.aws_keys:
            env["FUNCD_AWS_ACCESS_KEY_ID"], env["FUNCD_AWS_SECRET_ACCESS_KEY"] = self.aws_keys
        self._log = open(self.log_path, "ab")
        # After a restart the log already names the old port: read only what this run writes.
        log_start = self._log.tell()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, close_fds=True,
                                     preexec_fn=_stop_with_parent)
        deadline = time.monotonic() + START_TIMEOUT_S
        pattern = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
        while self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"funcd exited with status {self.proc.returncode} at start\n{self.log_text()}")
            with open(self.log_path, "rb") as f:
                f.seek(log_start)
                m = pattern.search(f.read())
            if m:
                self.port = int(m.group(1))
                break
            if time.monotonic() >= deadline:
                raise RuntimeError(f"funcd did not listen within {START_TIMEOUT_S} s\n{self.log_text()}")
            time.sleep(0.02)
        while True:
            try:
                if http_request(self.endpoint + "/healthz", timeout=5).status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                raise RuntimeError(f"funcd's /healthz did not answer 200\n{self.log_text()}")
            time.sleep(0.02)
        self._write_client_files()
        return self

    def stop(self):
        """SIGTERM, then SIGKILL; returns the exit status (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def restart(self):
        """Stops the daemon and starts it again on the same data directory (a new port)."""
        status = self.stop()
        if status != 0:
            raise RuntimeError(f"funcd exited with status {status} when asked to stop\n{self.log_text()}")
        self.proc = None
        self.port = None
        return self.start()

    def cleanup(self):
        if os.environ.get("FUNCD_KEEP_DATA") == "1":
            sys.stderr.write(f"funcd data kept in {self.dir}\n")
            return

        def make_writable(func, path, _exc):
            # Code trees are unpacked read-only.
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path):
                os.chmod(path, 0o700)
            func(path)

        shutil.rmtree(self.dir, onerror=make_writable)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()

    # what the daemon wrote

    def log_text(self, tail=None):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no daemon log)"
        if tail is not None:
            lines = text.splitlines()
            if len(lines) > tail:
                text = f"... ({len(lines) - tail} earlier lines left out)\n" + "\n".join(lines[-tail:])
        return text

    def sanitizer_reports(self):
        text = self.log_text()
        return [m for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:") if m in text]

    def function_log(self, name):
        try:
            with open(os.path.join(self.data_dir, "logs", name + ".log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self):
        """The /v1 API's bearer token."""
        with open(os.path.join(self.data_dir, "api-token")) as f:
            return f.read().strip()

    # Lambda API credentials

    def _write_client_files(self):
        self.credentials_file = os.path.join(self.data_dir, "aws-credentials")
        self.access_key = self.secret_key = None
        if self.aws_keys:
            self.access_key, self.secret_key = self.aws_keys
            self.credentials_file = os.path.join(self.dir, "client-credentials")
            with open(self.credentials_file, "w") as f:
                f.write(f"[{PROFILE}]\naws_access_key_id = {self.access_key}\n"
                        f"aws_secret_access_key = {self.secret_key}\n")
            return
        if not os.path.exists(self.credentials_file):
            return  # the tests that need credentials say so
        ini = configparser.ConfigParser()
        ini.read(self.credentials_file)
        if ini.has_section(PROFILE):
            self.access_key = ini.get(PROFILE, "aws_access_key_id", fallback=None)
            self.secret_key = ini.get(PROFILE, "aws_secret_access_key", fallback=None)

    def require_credentials(self):
        if not (self.access_key and self.secret_key):
            raise AssertionError(
                f"no Lambda API credentials: {self.credentials_file} is missing or has no [{PROFILE}] "
                "profile with aws_access_key_id and aws_secret_access_key")
        return self.access_key, self.secret_key

    @property
    def account(self):
        return account_for(self.require_credentials()[0])

    def function_arn(self, name, qualifier=None, region=REGION):
        arn = f"arn:aws:lambda:{region}:{self.account}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    # clients

    def session(self, region=REGION, access_key=None, secret_key=None):
        if access_key is None:
            access_key, secret_key = self.require_credentials()
        return boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                     region_name=region)

    def client(self, service="lambda", region=REGION, access_key=None, secret_key=None, read_timeout=60):
        """A boto3 client for the daemon's Lambda API, failing fast (at most one retry)."""
        config = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=read_timeout)
        return self.session(region, access_key, secret_key).client(service, endpoint_url=self.endpoint,
                                                                   config=config)

    def client_env(self):
        """Environment for a client process (the aws CLI, node) talking to this daemon."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_SHARED_CREDENTIALS_FILE": self.credentials_file,
            "AWS_PROFILE": PROFILE,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "FUNCD_ENDPOINT": self.endpoint,
            "FUNCD_DATA_DIR": self.data_dir,
        })
        with contextlib.suppress(OSError):
            env["FUNCD_API_TOKEN"] = self.token
        return env

    def aws(self, *args, env=None, timeout=120, endpoint=True):
        """Runs Debian's aws CLI; returns (exit code, parsed JSON stdout or None, stderr)."""
        if not os.path.exists(AWS_CLI):
            raise AssertionError(f"{AWS_CLI} is missing: install Debian's awscli (scripts/setup --tests)")
        argv = [AWS_CLI]
        if endpoint:
            argv += ["--endpoint-url", self.endpoint]
        argv += ["--output", "json"] + [str(a) for a in args]
        run_env = self.client_env()
        run_env.update(env or {})
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=run_env,
                              timeout=timeout)
        out = proc.stdout.decode("utf-8", "replace")
        try:
            parsed = json.loads(out) if out.strip() else None
        except ValueError:
            parsed = out
        return proc.returncode, parsed, proc.stderr.decode("utf-8", "replace")

    # raw requests

    def v1(self, method, path, body=b"", content_type="application/json", headers=None):
        """A request to the /v1 API with the bearer token."""
        h = {"Authorization": f"Bearer {self.token}"}
        if body:
            h["Content-Type"] = content_type
        h.update(headers or {})
        return http_request(self.endpoint + path, method, body, h)

    def signed(self, method, path, body=b"", headers=None, access_key=None, secret_key=None,
               region=REGION, clock_offset=None, service="lambda"):
        """A SigV4-signed request to a path of the daemon (as sent, already percent-encoded)."""
        if access_key is None:
            access_key, secret_key = self.require_credentials()
        url, h, data = sign_request(self.endpoint + path, method, body, headers, access_key, secret_key,
                                    region, service, clock_offset)
        return http_request(url, method, data, h)

    def raw(self, method, path, body=b"", headers=None):
        return http_request(self.endpoint + path, method, body, headers)


# --- unittest base ----------------------------------------------------------------------

class DaemonTestCase(unittest.TestCase):
    """One daemon per test class. Its log is printed when a test of the class fails (or
    none ran, e.g. setUpClass failed); sanitizer reports and a crash fail the class."""

    daemon_args = ()
    aws_keys = None
    daemon = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._failed = False
        cls._ran = 0
        cls._lambda_client = None
        cls.daemon = Daemon(cls.daemon_args, cls.aws_keys)
        # Class cleanups also run when a subclass's setUpClass fails after this point.
        cls.addClassCleanup(cls._finish_daemon, cls.daemon)
        cls.daemon.start()

    @classmethod
    def _finish_daemon(cls, daemon):
        died = daemon.proc.poll() if daemon.proc and daemon.port else None
        status = daemon.stop()
        reports = daemon.sanitizer_reports()
        if cls._failed or cls._ran == 0 or reports or died is not None:
            sys.stderr.write(f"\n===== funcd log for {cls.__name__} ({daemon.log_path}) =====\n"
                             f"{daemon.log_text(LOG_TAIL_LINES)}\n===== end of funcd log =====\n")
        daemon.cleanup()
        if died is not None:
            raise AssertionError(f"funcd exited during the tests with status {died}")
        if reports:
            raise AssertionError(f"funcd's log has sanitizer reports: {reports}")
        if status not in (0, None):
            raise AssertionError(f"funcd exited with status {status} on SIGTERM")

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        outcome = super().run(result)
        type(self)._ran += 1
        if result is not None and len(result.failures) + len(result.errors) > before:
            type(self)._failed = True
        return outcome

    # shortcuts (class methods, so setUpClass can use them too)

    @classmethod
    def lambda_client(cls):
        """The class's boto3 Lambda client, made on first use."""
        if cls.__dict__.get("_lambda_client") is None:
            cls._lambda_client = cls.daemon.client()
        return cls._lambda_client

    @property
    def lam(self):
        return self.lambda_client()

    @classmethod
    def create_python_function(cls, name=None, source=None, handler="app.handler", runtime="python3.11",
                               timeout=5, zip_bytes=None, **kwargs):
        """Creates a Python function with boto3; returns (name, zip bytes, CreateFunction answer)."""
        name = name or unique_name("py")
        zip_bytes = zip_bytes if zip_bytes is not None else python_zip(source or ECHO_HANDLER)
        answer = cls.lambda_client().create_function(
            FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
            Code={"ZipFile": zip_bytes}, Timeout=timeout, **kwargs)
        return name, zip_bytes, answer

    @classmethod
    def create_noop_function(cls, name=None, **kwargs):
        """Creates a `provided.al2023` function running the noop bootstrap."""
        name = name or unique_name("noop")
        zip_bytes = bootstrap_zip()
        answer = cls.lambda_client().create_function(
            FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
            Code={"ZipFile": zip_bytes}, Timeout=3, **kwargs)
        return name, zip_bytes, answer

    def invoke_json(self, name, payload=None, **kwargs):
        """Invokes synchronously; returns (invoke answer, decoded payload)."""
        answer = self.lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), **kwargs)
        body = answer["Payload"].read()
        return answer, (json.loads(body) if body else None)

    def assertClientError(self, code, fn, *args, **kwargs):
        """Calls fn; asserts it raised a botocore ClientError with this error code; returns it."""
        with self.assertRaises(ClientError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(code, cm.exception.response["Error"]["Code"], cm.exception.response)
        return cm.exception


# A handler that reports what it was given; `action` in the event picks other behaviour.
ECHO_HANDLER = r'''
import json, os, subprocess

def handler(event, context):
    event = event if isinstance(event, dict) else {"value": event}
    action = event.get("action")
    print("HANDLER-SAYS " + json.dumps({"action": action, "id": event.get("id"), "request_id": context.aws_request_id}))
    if action == "fail":
        raise ValueError("bad input " + str(event.get("n")))
    result = {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "initialization_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "env": {k: v for k, v in os.environ.items() if k.startswith("APP_")},
        "marker": MARKER,
    }
    if action == "trace":
        result["trace"] = os.environ.get("_X_AMZN_TRACE_ID")
    if action == "client_context":
        cc = context.client_context
        result["client_context"] = None if cc is None else {
            "custom": cc.custom, "env": cc.env,
            "app_title": cc.client.app_title if cc.client else None,
        }
    return result

MARKER = "v1"
'''


def echo_handler(marker):
    """ECHO_HANDLER reporting `marker`, so code versions can be told apart."""
    return ECHO_HANDLER.replace('MARKER = "v1"', f"MARKER = {marker!r}")


# --- launcher ---------------------------------------------------------------------------

def main(argv):
    if len(argv) < 2 or argv[0] != "--run":
        sys.stderr.write("usage: harness.py --run COMMAND [ARGS...]\n")
        return 2
    command = argv[1:]
    daemon = Daemon()
    try:
        daemon.start()
    except Exception as e:
        daemon.stop()
        sys.stderr.write(f"{e}\n")
        daemon.cleanup()
        return 1
    status = 1
    try:
        env = daemon.client_env()
        try:
            status = subprocess.run(command, stdin=subprocess.DEVNULL, env=env, cwd=HERE).returncode
        except FileNotFoundError:
            sys.stderr.write(f"{command[0]} is missing: install it (scripts/setup --tests)\n")
    finally:
        died = daemon.proc.poll()
        exit_status = daemon.stop()
        reports = daemon.sanitizer_reports()
        if died is not None:
            sys.stderr.write(f"funcd exited during the run with status {died}\n")
            status = status or 1
        if reports:
            sys.stderr.write(f"funcd's log has sanitizer reports: {reports}\n")
            status = status or 1
        if exit_status not in (0, None) and died is None:
            sys.stderr.write(f"funcd exited with status {exit_status} on SIGTERM\n")
            status = status or 1
        if status != 0:
            sys.stderr.write(f"\n===== funcd log ({daemon.log_path}) =====\n"
                             f"{daemon.log_text(LOG_TAIL_LINES)}\n===== end of funcd log =====\n")
        daemon.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
