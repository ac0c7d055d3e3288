"""Runs funcd's runtimes against a fake Lambda Runtime API and checks what they post back.

Each test starts a small HTTP server that hands out a fixed queue of events and records
every request; once the queue is empty it closes connections, which every runtime takes
as its cue to exit.
"""
import collections
import importlib.util
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import types
import unittest
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[2]
BOOTSTRAP = SOURCE_DIR / "runtime" / "python" / "bootstrap.py"
RUNTIME_DIR = BOOTSTRAP.parent
API_PREFIX = "/2018-06-01/runtime"
# Generous: the runtimes finish in milliseconds, but CI machines stall.
PROCESS_TIMEOUT_S = 30
SERVER_POLL_S = 0.02

# Queue marker: close the connection instead of answering `next`.
DROP = object()

# How an Event's body is delimited on the wire.
FRAME_BY_LENGTH = "length"      # Content-Length, as the daemon does
FRAME_BY_CHUNKS = "chunked"     # Transfer-Encoding: chunked
FRAME_BY_CLOSE = "close"        # neither: the body ends when the server hangs up
CHUNK_COUNT = 3


class Event:
    def __init__(self, request_id, body, deadline_ms=None, headers=None, trace_id=None,
                 framing=FRAME_BY_LENGTH, keep_alive=True):
        self.request_id = request_id
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.deadline_ms = deadline_ms if deadline_ms is not None else int(time.time() * 1000) + 60_000
        self.headers = headers or {}
        self.trace_id = trace_id
        self.framing = framing
        self.keep_alive = keep_alive


class Post:
    def __init__(self, path, headers, body):
        self.path = path
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class FakeRuntimeApi:
    def __init__(self, events, post_status=None, split_writes=False):
        self.events = queue.Queue()
        for e in events:
            self.events.put(e)
        # request id (or "init") -> status to answer that POST with instead of 202
        self.post_status = post_status or {}
        self.split_writes = split_writes
        self.lock = threading.Lock()
        self.posts = []
        self.nexts = 0
        self.served_from = {}  # request id -> client address that received it

        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                api.on_next(self)

            def do_POST(self):
                api.on_post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll keeps shutdown(), which waits for the serving loop to notice, quick.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(SERVER_POLL_S,),
                                       daemon=True)

    @property
    def address(self):
        host, port = self.server.server_address
        return f"{host}:{port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def on_next(self, h):
        if h.path != API_PREFIX + "/invocation/next":
            h.send_error(404)
            return
        with self.lock:
            self.nexts += 1
        try:
            event = self.events.get_nowait()
        except queue.Empty:
            event = DROP
        if event is DROP:
            h.close_connection = True
            return
        with self.lock:
            self.served_from[event.request_id] = h.client_address
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if event.framing == FRAME_BY_LENGTH:
            h.send_header("Content-Length", str(len(event.body)))
        elif event.framing == FRAME_BY_CHUNKS:
            h.send_header("Transfer-Encoding", "chunked")
        if not event.keep_alive or event.framing == FRAME_BY_CLOSE:
            h.send_header("Connection", "close")
        h.send_header("Lambda-Runtime-Aws-Request-Id", event.request_id)
        h.send_header("Lambda-Runtime-Deadline-Ms", str(event.deadline_ms))
        h.send_header("Lambda-Runtime-Invoked-Function-Arn",
                      "arn:aws:lambda:local:000000000000:function:fn")
        if event.trace_id:
            h.send_header("Lambda-Runtime-Trace-Id", event.trace_id)
        for name, value in event.headers.items():
            h.send_header(name, value)
        h.end_headers()
        if event.framing == FRAME_BY_CHUNKS:
            step = max(1, -(-len(event.body) // CHUNK_COUNT))
            for i in range(0, len(event.body), step):
                chunk = event.body[i:i + step]
                h.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk))
            h.wfile.write(b"0\r\nX-Trailer: ignored\r\n\r\n")
        elif self.split_writes:
            # Dribble the body out so the runtime has to reassemble it from several reads.
            step = max(1, len(event.body) // 7)
            for i in range(0, len(event.body), step):
                h.wfile.write(event.body[i:i + step])
                h.wfile.flush()
                time.sleep(0.005)
        else:
            h.wfile.write(event.body)

    def on_post(self, h):
        length = int(h.headers.get("Content-Length", "0"))
        body = h.rfile.read(length)
        headers = {k.lower(): v for k, v in h.headers.items()}
        with self.lock:
            self.posts.append(Post(h.path, headers, body))
        parts = h.path[len(API_PREFIX):].split("/")
        key = "init" if parts[1:] == ["init", "error"] else (parts[2] if len(parts) > 2 else "")
        status = self.post_status.get(key, 202)
        reply = b'{"status":"OK"}' if status == 202 else b'{"errorMessage":"refused"}'
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(reply)))
        h.end_headers()
        h.wfile.write(reply)


class Run:
    def __init__(self, proc, api, code_dir):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.api = api
        self.code_dir = code_dir

    def post_for(self, request_id):
        matches = [p for p in self.api.posts if f"/invocation/{request_id}/" in p.path]
        assert len(matches) == 1, (request_id, [p.path for p in self.api.posts])
        return matches[0]


def read_frames(data):
    """The records a runtime wrote to its telemetry descriptor: (level, json?, time in µs,
    payload text). The framing is AWS's: type (0xA55A0002/3 | level << 2), length, time."""
    frames = []
    while data:
        assert len(data) >= 16, data
        kind = int.from_bytes(data[0:4], "big")
        length = int.from_bytes(data[4:8], "big")
        micros = int.from_bytes(data[8:16], "big", signed=True)
        assert kind & 0xFFFFFFE0 == 0xA55A0000 and kind & 3 in (2, 3), hex(kind)
        frames.append((kind >> 2 & 7, kind & 3 == 2, micros, data[16:16 + length].decode()))
        assert len(data) >= 16 + length, "a frame cut off"
        data = data[16 + length:]
    return frames


FRAME_LEVELS = ["", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def run_with_telemetry(argv, events, code_dir, handler="app.handler", env=None):
    """Runs a runtime with a telemetry descriptor: returns (Run, the frames it wrote)."""
    read_end, write_end = os.pipe()
    try:
        with FakeRuntimeApi(events) as api:
            run_env = runtime_env(api, handler, code_dir, dict(env or {}, _LAMBDA_TELEMETRY_LOG_FD=str(write_end)))
            proc = subprocess.Popen(argv, cwd=code_dir, env=run_env, pass_fds=[write_end],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            os.close(write_end)
            write_end = -1
            chunks = []
            while chunk := os.read(read_end, 65536):
                chunks.append(chunk)
            stdout, stderr = proc.communicate(timeout=PROCESS_TIMEOUT_S)
        completed = subprocess.CompletedProcess(argv, proc.returncode, stdout.decode(errors="replace"),
                                                stderr.decode(errors="replace"))
        return Run(completed, api, code_dir), read_frames(b"".join(chunks))
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def runtime_env(api, handler, code_dir, extra=None):
    env = {
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(code_dir),
        "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent.parent),
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "3",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[3]abc",
        "AWS_REGION": "local",
        "TZ": ":UTC",
        "LANG": "C.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    env.update(extra or {})
    return env


NEXT_REQUEST_LINE = f"GET {API_PREFIX}/invocation/next HTTP/1.1\r\n".encode()


def event_response(request_id, body):
    """The answer funcd gives a parked `next`, for a hand-driven connection."""
    return (f"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {request_id}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {int(time.time() * 1000) + 60_000}\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:local:000000000000:function:fn\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


ACCEPTED = b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"OK"}'


class RuntimeTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="funcd-runtime-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def write_code(self, files):
        code = self.tmp / "code"
        for name, text in files.items():
            path = code / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        code.mkdir(exist_ok=True)
        return code

    def exchange_on_inherited_connection(self, argv, code_dir, handler="app.handler", env=None):
        """Starts the runtime with a connection of its own (FUNCD_RUNTIME_API_FD), drives
        it by hand for two events the way funcd answers a pipelining runtime, then closes
        it. Returns (the runtime's Run, what it sent after each event, in order)."""
        ours, theirs = socket.socketpair()
        ours.settimeout(PROCESS_TIMEOUT_S)
        sent = []
        buf = b""

        def read_through_next():
            # Everything up to and including the next `next` request's head.
            nonlocal buf
            while NEXT_REQUEST_LINE not in buf or b"\r\n\r\n" not in buf[buf.index(NEXT_REQUEST_LINE):]:
                chunk = ours.recv(65536)
                if not chunk:
                    proc.wait(timeout=PROCESS_TIMEOUT_S)
                    raise AssertionError(f"the runtime hung up ({proc.stderr.read()[-500:]!r}); it had sent {buf[:300]!r}")
                buf += chunk
            end = buf.index(b"\r\n\r\n", buf.index(NEXT_REQUEST_LINE)) + 4
            got, buf = buf[:end], buf[end:]
            return got

        # The TCP side has no events: a runtime that falls back to it finds none and stops.
        with FakeRuntimeApi([]) as api:
            run_env = runtime_env(api, handler, code_dir, dict(env or {}, FUNCD_RUNTIME_API_FD=str(theirs.fileno())))
            proc = subprocess.Popen(argv, cwd=code_dir, env=run_env, pass_fds=[theirs.fileno()],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            theirs.close()
            try:
                read_through_next()
                ours.sendall(event_response("e-1", b'{"n": 1}'))
                # Its answer and its next `next` arrive without a 202 in between.
                sent.append(read_through_next())
                ours.sendall(ACCEPTED + event_response("e-2", b'{"n": 2}'))
                sent.append(read_through_next())
            finally:
                ours.close()
                stdout, stderr = proc.communicate(timeout=PROCESS_TIMEOUT_S)
        return Run(subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr), api, code_dir), sent

    def assert_answered_and_asked_again(self, chunk, request_id, body):
        post = f"POST {API_PREFIX}/invocation/{request_id}/response HTTP/1.1\r\n".encode()
        self.assertTrue(chunk.startswith(post), chunk[:200])
        self.assertIn(b"\r\n\r\n" + body + NEXT_REQUEST_LINE, chunk)

    def run_runtime(self, argv, events, code_dir, handler="app.handler", env=None, **api_options):
        with FakeRuntimeApi(events, **api_options) as api:
            proc = subprocess.run(argv, cwd=code_dir, env=runtime_env(api, handler, code_dir, env),
                                  capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
        return Run(proc, api, code_dir)


class PythonBootstrapTest(RuntimeTestCase):
    def run_python(self, files, events, handler="app.handler", **kwargs):
        code = self.write_code(files)
        return self.run_runtime([sys.executable, "-I", "-u", str(BOOTSTRAP)], events, code,
                                handler, **kwargs)

    def assert_init_error(self, run, error_type, message_start):
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertEqual(run.api.nexts, 0)
        self.assertEqual(len(run.api.posts), 1)
        post = run.api.posts[0]
        self.assertEqual(post.path, API_PREFIX + "/init/error")
        self.assertEqual(post.headers["lambda-runtime-function-error-type"], error_type)
        body = post.json()
        self.assertEqual(body["errorType"], error_type)
        self.assertTrue(body["errorMessage"].startswith(message_start), body["errorMessage"])
        self.assertIsInstance(body["stackTrace"], list)
        self.assertIn(error_type, run.stderr)
        return body

    def test_success_posts_json_result_on_one_connection(self):
        run = self.run_python(
            {"app.py": """
                def handler(event, context):
                    return {"got": event}
            """},
            [Event("req-1", {"a": 1}), Event("req-2", [1, "two"])])
        for rid, event in (("req-1", {"a": 1}), ("req-2", [1, "two"])):
            post = run.post_for(rid)
            self.assertEqual(post.path, f"{API_PREFIX}/invocation/{rid}/response")
            self.assertEqual(post.json(), {"got": event})
            self.assertNotIn("lambda-runtime-function-error-type", post.headers)
            self.assertEqual(post.headers["host"], run.api.address)
            self.assertEqual(post.headers["content-type"], "application/json")
            self.assertEqual(int(post.headers["content-length"]), len(post.body))
        self.assertEqual(run.api.served_from["req-1"], run.api.served_from["req-2"])
        # The queue ran dry, the server hung up twice, and the runtime gave up.
        self.assertEqual(run.returncode, 1)

    def test_none_result_is_null(self):
        run = self.run_python({"app.py": "def handler(event, context):\n    pass\n"},
                              [Event("r", {})])
        self.assertEqual(run.post_for("r").body, b"null")

    def test_empty_event_is_empty_object(self):
        run = self.run_python({"app.py": "def handler(event, context):\n    return event\n"},
                              [Event("r", b"")])
        self.assertEqual(run.post_for("r").json(), {})

    def test_context_fields_and_remaining_time(self):
        client_context = {"client": {"installation_id": "inst", "app_title": "t"},
                          "custom": {"k": "v"}, "env": {"platform": "x"}}
        identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        now_ms = int(time.time() * 1000)
        run = self.run_python(
            {"app.py": """
                import os

                def handler(event, context):
                    cc = context.client_context
                    return {
                        "aws_request_id": context.aws_request_id,
                        "function_name": context.function_name,
                        "function_version": context.function_version,
                        "memory_limit_in_mb": context.memory_limit_in_mb,
                        "invoked_function_arn": context.invoked_function_arn,
                        "log_group_name": context.log_group_name,
                        "log_stream_name": context.log_stream_name,
                        "remaining": context.get_remaining_time_in_millis(),
                        "client": None if cc is None else [cc.client.installation_id, cc.custom, cc.env],
                        "identity": [context.identity.cognito_identity_id,
                                     context.identity.cognito_identity_pool_id],
                        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
                    }
            """},
            [Event("ctx-1", {}, deadline_ms=now_ms + 60_000, trace_id="Root=1-abc",
                   headers={"Lambda-Runtime-Client-Context": json.dumps(client_context),
                            "Lambda-Runtime-Cognito-Identity": json.dumps(identity)}),
             Event("ctx-2", {}, deadline_ms=now_ms - 5_000)])
        first = run.post_for("ctx-1").json()
        self.assertEqual(first["aws_request_id"], "ctx-1")
        self.assertEqual(first["function_name"], "fn")
        self.assertEqual(first["function_version"], "3")
        self.assertEqual(first["memory_limit_in_mb"], 256)
        self.assertEqual(first["invoked_function_arn"], "arn:aws:lambda:local:000000000000:function:fn")
        self.assertEqual(first["log_group_name"], "/aws/lambda/fn")
        self.assertEqual(first["log_stream_name"], "2024/01/01/[3]abc")
        self.assertGreater(first["remaining"], 30_000)
        self.assertLessEqual(first["remaining"], 60_000)
        self.assertEqual(first["client"], ["inst", {"k": "v"}, {"platform": "x"}])
        self.assertEqual(first["identity"], ["id-1", "pool-1"])
        self.assertEqual(first["trace"], "Root=1-abc")

        second = run.post_for("ctx-2").json()
        self.assertEqual(second["remaining"], 0)
        self.assertIsNone(second["client"])
        self.assertEqual(second["identity"], [None, None])
        self.assertIsNone(second["trace"], "a trace id must not outlive its invocation")

    def test_exception_reports_class_message_and_user_frames(self):
        run = self.run_python(
            {"app.py": """
                class QuotaExceeded(Exception):
                    pass

                def check(n):
                    raise QuotaExceeded(f"over by {n}")

                def handler(event, context):
                    check(event["n"])
            """},
            [Event("bad", {"n": 7}), Event("after", {"n": 1})])
        post = run.post_for("bad")
        self.assertEqual(post.path, f"{API_PREFIX}/invocation/bad/error")
        self.assertEqual(post.headers["lambda-runtime-function-error-type"], "QuotaExceeded")
        body = post.json()
        self.assertEqual(body["errorType"], "QuotaExceeded")
        self.assertEqual(body["errorMessage"], "over by 7")
        self.assertEqual(body["requestId"], "bad")
        app = run.code_dir / "app.py"
        self.assertEqual(body["stackTrace"], [
            f'  File "{app}", line 9, in handler\n    check(event["n"])\n',
            f'  File "{app}", line 6, in check\n    raise QuotaExceeded(f"over by {{n}}")\n',
        ])
        self.assertIn("QuotaExceeded: over by 7", run.stderr)
        self.assertIn(f'File "{app}", line 6, in check', run.stderr)
        # The worker stays usable after a failed invocation.
        self.assertTrue(run.post_for("after").path.endswith("/error"))

    def test_unserialisable_result_is_marshal_error(self):
        run = self.run_python(
            {"app.py": """
                def handler(event, context):
                    return {"when": object()} if event["kind"] == "object" else float("nan")
            """},
            [Event("obj", {"kind": "object"}), Event("nan", {"kind": "nan"})])
        for rid in ("obj", "nan"):
            post = run.post_for(rid)
            self.assertEqual(post.path, f"{API_PREFIX}/invocation/{rid}/error")
            self.assertEqual(post.headers["lambda-runtime-function-error-type"], "Runtime.MarshalError")
            body = post.json()
            self.assertEqual(body["errorType"], "Runtime.MarshalError")
            self.assertEqual(body["requestId"], rid)
            self.assertTrue(body["errorMessage"].startswith("Unable to marshal response"))

    def test_invalid_event_is_unmarshal_error(self):
        bodies = {"r": b"{not json", "ws": b"  \n", "extra": b'{"a": 1} {"b": 2}', "bad-utf8": b'"\xff"'}
        run = self.run_python({"app.py": "def handler(event, context):\n    return 1\n"},
                              [Event(rid, body) for rid, body in bodies.items()])
        for rid, body in bodies.items():
            with self.subTest(body=body):
                post = run.post_for(rid)
                self.assertTrue(post.path.endswith("/error"))
                self.assertEqual(post.json()["errorType"], "Runtime.UnmarshalError")
                # json's own words, whichever decoder found the fault.
                with self.assertRaises(ValueError) as expected:
                    json.loads(body)
                self.assertEqual(post.json()["errorMessage"],
                                 f"Unable to parse input as json: {expected.exception}")

    def test_events_in_other_unicode_encodings_are_decoded(self):
        event = {"name": "caf\u00e9 \u2603", "n": [1, 2.5, None]}
        bodies = {"utf-16": json.dumps(event).encode("utf-16"),
                  "utf-16-le": json.dumps(event).encode("utf-16-le"),
                  "utf-32": json.dumps(event).encode("utf-32"),
                  "utf-8-sig": json.dumps(event).encode("utf-8-sig")}
        run = self.run_python({"app.py": "def handler(event, context):\n    return event\n"},
                              [Event(rid, body) for rid, body in bodies.items()])
        for rid in bodies:
            self.assertEqual(run.post_for(rid).json(), event, rid)

    def test_result_is_serialised_as_json_dumps_does(self):
        text = "caf\u00e9 \u2603 \"q\" \\ \n\t\x01 \U0001d11e \u2028"
        run = self.run_python(
            {"app.py": """
                def handler(event, context):
                    return {"text": event["text"], "big": 2 ** 70, "f": 0.1, "t": (1, True, None),
                            3: "int key", 2.5: None, "nested": [[{}], []]}
            """},
            [Event("r", {"text": text})])
        expected = {"text": text, "big": 2 ** 70, "f": 0.1, "t": (1, True, None),
                    3: "int key", 2.5: None, "nested": [[{}], []]}
        self.assertEqual(run.post_for("r").body, json.dumps(expected).encode())

    def test_print_output_reaches_stdout(self):
        run = self.run_python(
            {"app.py": """
                import sys

                def handler(event, context):
                    print("log line from", context.aws_request_id)
                    print("to stderr", file=sys.stderr)
                    return "ok"
            """},
            [Event("p-1", {})])
        self.assertIn("log line from p-1", run.stdout)
        self.assertIn("to stderr", run.stderr)
        self.assertEqual(run.post_for("p-1").json(), "ok")

    def test_handler_in_subdirectory_and_package(self):
        files = {
            "src/pkg/__init__.py": "",
            "src/pkg/mod.py": "def handler(event, context):\n    return 'sub'\n",
            "lib/tools.py": "def go(event, context):\n    return 'pkg'\n",
        }
        run = self.run_python(files, [Event("s", {})], handler="src/pkg.mod.handler")
        self.assertEqual(run.post_for("s").json(), "sub")
        run = self.run_python(files, [Event("d", {})], handler="lib.tools.go")
        self.assertEqual(run.post_for("d").json(), "pkg")

    def test_user_code_gets_a_complete_http_client(self):
        run = self.run_python(
            {"app.py": """
                import http.client
                import urllib.request

                def handler(event, context):
                    return [hasattr(http.client, "HTTPSConnection"),
                            hasattr(urllib.request, "HTTPSHandler")]
            """},
            [Event("h", {})])
        self.assertEqual(run.post_for("h").json(), [True, True])

    def test_import_error(self):
        run = self.run_python({"app.py": "raise RuntimeError('no config')\n"}, [Event("x", {})])
        body = self.assert_init_error(run, "Runtime.ImportModuleError",
                                      "Unable to import module 'app': no config")
        self.assertTrue(any("app.py" in line for line in body["stackTrace"]), body["stackTrace"])
        for runtime_file in ("bootstrap.py", "funcd_runtime.py", "funcd_json.py"):
            self.assertFalse(any(runtime_file in line for line in body["stackTrace"]), runtime_file)

    def test_syntax_error_is_import_error(self):
        run = self.run_python({"app.py": "def handler(event, context)\n    return 1\n"},
                              [Event("x", {})])
        self.assert_init_error(run, "Runtime.ImportModuleError", "Unable to import module 'app': ")

    def test_missing_module_is_import_error(self):
        run = self.run_python({"other.py": ""}, [Event("x", {})])
        self.assert_init_error(run, "Runtime.ImportModuleError",
                               "Unable to import module 'app': No module named 'app'")

    def test_missing_or_uncallable_handler(self):
        run = self.run_python({"app.py": "def other(event, context):\n    pass\n"}, [Event("x", {})])
        self.assert_init_error(run, "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'")
        run = self.run_python({"app.py": "handler = 3\n"}, [Event("x", {})])
        self.assert_init_error(run, "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'app'")

    def test_malformed_handler_name(self):
        for spec in ("app", "app.", ".handler", "a..handler", "app.not-a-name"):
            with self.subTest(spec=spec):
                run = self.run_python({"app.py": "def handler(e, c):\n    pass\n"}, [Event("x", {})],
                                      handler=spec)
                self.assert_init_error(run, "Runtime.MalformedHandlerName", f"Bad handler '{spec}'")

    def test_reads_chunked_unframed_and_split_bodies(self):
        big = {"blob": "x" * 200_000, "n": list(range(1000))}
        events = [Event("chunked", big, framing=FRAME_BY_CHUNKS),
                  Event("empty-chunked", b"", framing=FRAME_BY_CHUNKS),
                  Event("unframed", {"u": 1}, framing=FRAME_BY_CLOSE),
                  Event("split", big)]
        run = self.run_python({"app.py": "def handler(event, context):\n    return event\n"},
                              events, split_writes=True)
        self.assertEqual(run.post_for("chunked").json(), big)
        self.assertEqual(run.post_for("empty-chunked").json(), {})
        self.assertEqual(run.post_for("unframed").json(), {"u": 1})
        self.assertEqual(run.post_for("split").json(), big)

    def test_connection_close_is_honoured(self):
        run = self.run_python({"app.py": "def handler(event, context):\n    return event\n"},
                              [Event("closing", {"a": 1}, keep_alive=False), Event("next", {"b": 2})])
        self.assertEqual(run.post_for("closing").json(), {"a": 1})
        self.assertEqual(run.post_for("next").json(), {"b": 2})
        self.assertNotEqual(run.api.served_from["closing"], run.api.served_from["next"])

    def test_header_names_are_case_insensitive(self):
        run = self.run_python(
            {"app.py": """
                def handler(event, context):
                    return [context.client_context.custom, context.identity.cognito_identity_id]
            """},
            [Event("ci", {}, headers={
                "LAMBDA-RUNTIME-CLIENT-CONTEXT": json.dumps({"custom": {"k": "v"}}),
                "lambda-runtime-cognito-identity": json.dumps({"cognitoIdentityId": "id-1"})})])
        self.assertEqual(run.post_for("ci").json(), [{"k": "v"}, "id-1"])

    def test_error_type_cannot_add_headers(self):
        run = self.run_python(
            {"app.py": """
                Odd = type("Odd\\r\\nX-Injected: yes", (Exception,), {})

                def handler(event, context):
                    raise Odd("boom")
            """},
            [Event("odd", {})])
        post = run.post_for("odd")
        self.assertNotIn("x-injected", post.headers)
        self.assertEqual(post.headers["lambda-runtime-function-error-type"], "Odd??X-Injected: yes")
        self.assertEqual(post.json()["errorType"], "Odd\r\nX-Injected: yes")

    def test_request_id_that_would_break_the_request_line_is_fatal(self):
        run = self.run_python({"app.py": "def handler(event, context):\n    return 1\n"},
                              [Event("a b", {}), Event("never", {})])
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.api.posts, [])
        self.assertEqual(run.api.events.qsize(), 1)

    def test_start_up_imports_no_http_stack(self):
        # Every module the runtime imports is paid for on each cold start; json would
        # bring re and enum with it.
        run = self.run_python(
            {"app.py": """
                import sys

                def handler(event, context):
                    return [m for m in ("http.client", "email", "ssl", "urllib", "traceback",
                                        "json", "re", "enum")
                            if m in sys.modules]
            """},
            [Event("m", {"event": ["with", {"content": 1.5}]}, headers={
                "Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}}),
                "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id-1"})})])
        self.assertEqual(run.post_for("m").json(), [])

    def test_reconnects_after_a_dropped_connection(self):
        run = self.run_python({"app.py": "def handler(event, context):\n    return event\n"},
                              [DROP, Event("r", {"x": 1})])
        self.assertEqual(run.post_for("r").json(), {"x": 1})

    def test_client_error_on_post_is_logged_and_loop_continues(self):
        run = self.run_python({"app.py": "def handler(event, context):\n    return 1\n"},
                              [Event("refused", {}), Event("fine", {})], post_status={"refused": 400})
        self.assertIn("400", run.stderr)
        self.assertEqual(run.post_for("fine").json(), 1)

    def test_server_error_on_post_exits(self):
        run = self.run_python({"app.py": "def handler(event, context):\n    return 1\n"},
                              [Event("broken", {}), Event("never", {})], post_status={"broken": 500})
        self.assertEqual(run.returncode, 1)
        # Its next `next` went out with the answer (pipelining), so this server, which serves
        # requests one after another, may have handed it "never"; it is never answered.
        self.assertEqual([p.path for p in run.api.posts], [f"{API_PREFIX}/invocation/broken/response"])

    def test_uses_its_own_connection_and_pipelines_next(self):
        code = self.write_code({"app.py": "def handler(event, context):\n    return event['n'] * 10\n"})
        run, sent = self.exchange_on_inherited_connection([sys.executable, "-I", "-u", str(BOOTSTRAP)], code)
        self.assert_answered_and_asked_again(sent[0], "e-1", b"10")
        self.assert_answered_and_asked_again(sent[1], "e-2", b"20")
        # That connection closed before e-2's answer was acknowledged: the answer went again
        # over TCP, which then had no event for it.
        self.assertEqual([p.path for p in run.api.posts], [f"{API_PREFIX}/invocation/e-2/response"])
        self.assertGreaterEqual(run.api.nexts, 1)
        self.assertEqual(run.returncode, 1)

    def test_own_connection_is_not_inherited_by_the_handlers_children(self):
        code = self.write_code({"app.py": """
            import os, subprocess
            def handler(event, context):
                fds = subprocess.run(["ls", "/proc/self/fd"], capture_output=True, text=True).stdout.split()
                return {"fds": sorted(int(f) for f in fds), "env": os.environ.get("FUNCD_RUNTIME_API_FD")}
            """})
        run, sent = self.exchange_on_inherited_connection([sys.executable, "-I", "-u", str(BOOTSTRAP)], code)
        body = sent[0].split(b"\r\n\r\n", 1)[1]
        answer = json.loads(body[:body.index(NEXT_REQUEST_LINE)])
        self.assertLessEqual(max(answer["fds"]), 3, answer)  # stdio and ls's own directory
        self.assertIsNone(answer["env"])

    def test_hello_python_example(self):
        example = SOURCE_DIR / "examples" / "hello-python"
        run = self.run_runtime([sys.executable, "-I", "-u", str(BOOTSTRAP)],
                               [Event("hi", {"name": "funcd"}), Event("bye", {})], example)
        self.assertEqual(run.post_for("hi").json(), {"message": "hello, funcd", "request_id": "hi"})
        self.assertEqual(run.post_for("bye").json(), {"message": "hello, world", "request_id": "bye"})
        self.assertIn("hi", run.stdout)


class RuntimeModulesTest(RuntimeTestCase):
    def test_importing_the_runtime_imports_neither_json_nor_re(self):
        # -S: some interpreters' site imports re itself, which would hide a regression.
        script = textwrap.dedent("""
            import sys
            sys.path.insert(0, sys.argv[1])
            import funcd_json
            import funcd_runtime

            def imported():
                return sorted(m for m in ("json", "re", "enum") if m in sys.modules)

            funcd_json.loads(b'{"event": [1, 2.5, "caf\\\\u00e9", null, true]}')
            funcd_json.loads('{"custom": {"k": "v"}}')
            funcd_json.dumps({"result": [1, 2.5, None, "caf\\u00e9"]}, allow_nan=False)
            print(imported())
            try:
                funcd_json.loads(b"{not json")
            except ValueError:
                pass
            print(imported())
        """)
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(RUNTIME_DIR)],
                              capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        # The second line shows the check would see json had it been imported.
        self.assertEqual(proc.stdout.splitlines(), ["[]", "['enum', 'json', 're']"])

    def test_runtime_runs_from_the_bytecode_compileall_writes(self):
        # What the daemon runs when it starts, on a copy that leaves the checkout alone.
        runtime = self.tmp / "runtime" / "python"
        shutil.copytree(RUNTIME_DIR, runtime, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, "-I", "-m", "compileall", "-q", "--invalidation-mode",
                        "timestamp", str(runtime)], check=True, timeout=PROCESS_TIMEOUT_S)
        code = self.write_code({"app.py": "def handler(event, context):\n    return event\n"})
        # -v: the import system says where each module's code came from.
        run = self.run_runtime([sys.executable, "-I", "-v", "-u", str(runtime / "bootstrap.py")],
                               [Event("r", {"a": 1})], code)
        self.assertEqual(run.post_for("r").json(), {"a": 1})
        for module in ("funcd_runtime", "funcd_json"):
            cached = importlib.util.cache_from_source(str(runtime / f"{module}.py"))
            self.assertIn(f"code object from '{cached}'", run.stderr)


# Stands for the real `_json` when loading a copy of the codec.
REAL_ACCELERATOR = object()


class Codec:
    """A private copy of funcd_json that counts how often it hands over to the json package."""

    copies = 0

    def __init__(self, accelerator=REAL_ACCELERATOR):
        Codec.copies += 1
        spec = importlib.util.spec_from_file_location(f"funcd_json_copy_{Codec.copies}",
                                                      RUNTIME_DIR / "funcd_json.py")
        self.module = importlib.util.module_from_spec(spec)
        saved = sys.modules.get("_json")
        if accelerator is not REAL_ACCELERATOR:
            sys.modules["_json"] = accelerator  # None makes `import _json` fail
        try:
            spec.loader.exec_module(self.module)
        finally:
            if saved is None:
                sys.modules.pop("_json", None)
            else:
                sys.modules["_json"] = saved
        self.handovers = 0
        handover = self.module._json

        def counting_handover():
            self.handovers += 1
            return handover()

        self.module._json = counting_handover
        self.dumps = self.module.dumps
        self.loads = self.module.loads


def changed_accelerator():
    """A `_json` whose make_encoder wants one argument more than funcd_json passes."""
    import _json

    fake = types.ModuleType("_json")
    fake.make_scanner = _json.make_scanner
    fake.encode_basestring_ascii = _json.encode_basestring_ascii

    def make_encoder(markers, default, encoder, indent, key_separator, item_separator,
                     sort_keys, skipkeys, allow_nan, extra):
        raise AssertionError("not reached: called with one argument too few")

    fake.make_encoder = make_encoder
    return fake


def outcome(call, *args, **kwargs):
    """What a call returned (as its repr, which tells 1 from 1.0 and shows NaN), or the
    class and message of what it raised."""
    try:
        return "returned", repr(call(*args, **kwargs))
    except Exception as e:  # RecursionError too
        return "raised", type(e), str(e)


def nested(depth):
    value = {"leaf": [1, "x", None]}
    for level in range(depth):
        value = [value, {"level": level}] if level % 2 else {"level": level, "inner": value}
    return value


class Int(int):
    pass


class Float(float):
    pass


class Str(str):
    pass


class Dict(dict):
    pass


class List(list):
    pass


CORPUS = [
    None, True, False, 0, -1, 7, 2 ** 63, -(2 ** 200), 10 ** 300,
    0.0, -0.0, 1.5, -2.25, 0.1, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, 123456789.12345679,
    "", "plain", "caf\u00e9 \u2603 \U0001d11e \u4e2d\u6587", 'quote " backslash \\ slash /',
    "\b\f\n\r\t\x00\x01\x1f\x7f\x80\u2028\u2029\ufeff", "lone \ud800 surrogate", "x" * 100_000,
    [], {}, (), [[]], [{}], {"": ""},
    [1, "two", None, True, [3.0, {"four": []}]],
    {"caf\u00e9": {"\u2603": ["\U0001d11e"]}, "k": {"deeper": {"still": [[[None]]]}}},
    {3: "int key", 2.5: "float key", False: "bool key", None: "null key", "s": "str key"},
    nested(150),
    list(range(10_000)),
    {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"},
                                                  "object": {"key": "a/b c.jpg", "size": 1024}}}] * 50},
    Int(5), Float(2.5), Str("sub"), Dict(a=[List([1, 2])]), collections.OrderedDict([("z", 1), ("a", 2)]),
    [Int(1), Float(0.5), Str("s"), True],
]
# Floats JSON has no literal for: json writes them anyway unless allow_nan=False.
NON_FINITE = [float("nan"), float("inf"), float("-inf"), [1.0, float("nan")], {"x": float("inf")},
              Float("nan")]
UNSERIALISABLE = [object(), {"a": object()}, [1, {2, 3}], b"bytes", 1j, {(1, 2): "tuple key"},
                  {"ok": [1, bytearray(b"x")]}]


def circular_values():
    a = []
    a.append(a)
    d = {}
    d["self"] = d
    inner = {"x": []}
    inner["x"].append(inner)
    return [a, d, [1, inner]]


def too_deep(depth=100_000):
    value = []
    for _ in range(depth):
        value = [value]
    return value


class JsonCodecTest(unittest.TestCase):
    """funcd_json answers exactly as json.dumps and json.loads, mostly without json."""

    def setUp(self):
        self.codec = Codec()

    def assert_same_dumps(self, value):
        for kwargs in ({}, {"allow_nan": True}, {"allow_nan": False}):
            self.assertEqual(outcome(self.codec.dumps, value, **kwargs), outcome(json.dumps, value, **kwargs),
                             kwargs)

    def assert_same_loads(self, document):
        self.assertEqual(outcome(self.codec.loads, document), outcome(json.loads, document))

    def test_dumps_matches_json(self):
        for value in CORPUS + NON_FINITE:
            with self.subTest(value=repr(value)[:80]):
                self.assert_same_dumps(value)
        self.assertEqual(self.codec.handovers, 0)

    def test_non_finite_floats_are_refused_without_allow_nan(self):
        for value in NON_FINITE:
            with self.subTest(value=value):
                with self.assertRaises(ValueError) as ours:
                    self.codec.dumps(value, allow_nan=False)
                with self.assertRaises(ValueError) as theirs:
                    json.dumps(value, allow_nan=False)
                self.assertEqual(str(ours.exception), str(theirs.exception))
                # Allowed by default, as json allows them.
                self.assertRegex(self.codec.dumps(value), "NaN|Infinity")

    def test_unserialisable_values_raise_type_error(self):
        for value in UNSERIALISABLE:
            with self.subTest(value=value):
                with self.assertRaises(TypeError) as ours:
                    self.codec.dumps(value)
                self.assertEqual(outcome(self.codec.dumps, value), outcome(json.dumps, value))
        with self.assertRaises(TypeError) as raised:
            self.codec.dumps({"when": object()}, allow_nan=False)
        self.assertEqual(str(raised.exception), "Object of type object is not JSON serializable")

    def test_circular_and_too_deep_values_raise_as_json_does(self):
        for value in circular_values():
            with self.subTest(value=repr(value)):
                with self.assertRaises(ValueError):
                    self.codec.dumps(value)
                self.assert_same_dumps(value)
        deep = too_deep()
        with self.assertRaises(RecursionError):
            self.codec.dumps(deep, allow_nan=False)
        self.assert_same_dumps(deep)

    def test_a_failed_dump_leaves_nothing_behind(self):
        # The C encoder leaves the containers it failed inside marked as being encoded;
        # encoding one of them again must not then look like a cycle.
        value = [{"a": [object()]}]
        for _ in range(3):
            with self.assertRaises(TypeError):
                self.codec.dumps(value)
        value[0]["a"] = [1]
        self.assertEqual(self.codec.dumps(value), '[{"a": [1]}]')

    def test_loads_matches_json(self):
        for value in CORPUS + NON_FINITE:
            text = json.dumps(value)
            raw = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
            for document in (text, text.encode(), bytearray(text.encode()), raw,
                             f" \t\n\r{text}\r\n\t ".encode()):
                with self.subTest(document=repr(document)[:80]):
                    self.assert_same_loads(document)
        for document in (b"NaN", b"-Infinity", b"[Infinity, -0, 1E5, 1e400, -1e-400, 0.1e1]",
                         b'"\\ud83d\\ude00 \\u00e9 \\/ \\b"', b'"\xed\xa0\x80"', b'{"a": 1, "a": 2}',
                         b"1" * 4300, b"-" + b"9" * 4300, b"12345678901234567890.5e-3",
                         b'{"deep": ' * 500 + b"0" + b"}" * 500, b"[" * 500 + b"]" * 500):
            with self.subTest(document=document[:80]):
                self.assert_same_loads(document)
        self.assertEqual(self.codec.handovers, 0)

    def test_unusual_input_is_left_to_json(self):
        event = json.dumps({"a": "caf\u00e9", "n": [1, 2]})
        documents = [
            b"", b"   ", "", b"{not json", b"[1,]", b'{"a": 1} x', b'{"a" 1}', b"[1 2]", b"nul", b"01",
            b"\xff", b'"\xff"', b'"\xed\xa0"', b'"a\nb"', b'"\\x"', b"1" * 4301,
            b"[" * 100_000, b"\xef\xbb\xbf{}", "\ufeff{}", b"1\x00",
            event.encode("utf-8-sig"), event.encode("utf-16"), event.encode("utf-16-le"),
            event.encode("utf-16-be"), event.encode("utf-32"), event.encode("utf-32-le"),
            12, None, ["[]"],
        ]
        for document in documents:
            with self.subTest(document=repr(document)[:80]):
                before = self.codec.handovers
                self.assert_same_loads(document)
                self.assertEqual(self.codec.handovers, before + 1)
        with self.assertRaises(json.JSONDecodeError) as raised:
            self.codec.loads(b"")
        self.assertEqual(str(raised.exception), "Expecting value: line 1 column 1 (char 0)")

    def test_without_a_usable_accelerator_json_does_everything(self):
        for accelerator in (None, changed_accelerator()):
            with self.subTest(accelerator=accelerator):
                codec = Codec(accelerator)
                self.codec = codec
                for value in CORPUS[:40] + NON_FINITE + UNSERIALISABLE:
                    self.assert_same_dumps(value)
                for document in (b'{"a": [1, 2.5, "caf\\u00e9"]}', b"{not json", "\ufeff{}"):
                    self.assert_same_loads(document)
                self.assertGreater(codec.handovers, 0)
                handovers = codec.handovers
                self.assertEqual(codec.dumps({"a": 1}), '{"a": 1}')
                self.assertEqual(codec.loads(b"[1]"), [1])
                self.assertEqual(codec.handovers, handovers + 2)


BIG_EVENT = {"blob": "x" * 300_000, "n": list(range(1000))}


@unittest.skipUnless(os.environ.get("FUNCD_NOOP_BOOTSTRAP"), "FUNCD_NOOP_BOOTSTRAP is not set")
class NoopBootstrapTest(RuntimeTestCase):
    def run_noop(self, events, env=None, **api_options):
        return self.run_runtime([os.environ["FUNCD_NOOP_BOOTSTRAP"]], events, self.write_code({}),
                                env=env, **api_options)

    def test_answers_empty_object_on_one_connection(self):
        run = self.run_noop([Event("n-1", {"a": 1}), Event("n-2", BIG_EVENT)])
        for rid in ("n-1", "n-2"):
            post = run.post_for(rid)
            self.assertEqual(post.path, f"{API_PREFIX}/invocation/{rid}/response")
            self.assertEqual(post.body, b"{}")
        self.assertEqual(run.api.served_from["n-1"], run.api.served_from["n-2"])
        self.assertEqual(run.returncode, 1)

    def test_echo_reassembles_split_bodies(self):
        events = [Event("e-1", {"hello": "world"}), Event("e-2", BIG_EVENT), Event("e-3", b"")]
        run = self.run_noop(events, env={"NOOP_ECHO": "1"}, split_writes=True)
        for event in events:
            self.assertEqual(run.post_for(event.request_id).body, event.body)

    def test_uses_its_own_connection_and_pipelines_next(self):
        run, sent = self.exchange_on_inherited_connection([os.environ["FUNCD_NOOP_BOOTSTRAP"]], self.write_code({}))
        self.assert_answered_and_asked_again(sent[0], "e-1", b"{}")
        self.assert_answered_and_asked_again(sent[1], "e-2", b"{}")
        self.assertEqual(run.returncode, 1)  # a connection that breaks is the end of the noop

    def test_stops_on_refused_response(self):
        run = self.run_noop([Event("n-1", {}), Event("n-2", {})], post_status={"n-1": 400})
        self.assertEqual(run.returncode, 1)
        # Its next `next` went out with the refused response (pipelining), so this server,
        # which answers requests one after another, may have handed it n-2; funcd would not
        # have (it checks the connection is still there). Either way n-2 is never answered.
        self.assertEqual([p.path for p in run.api.posts], [f"{API_PREFIX}/invocation/n-1/response"])


@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
class HelloProvidedTest(RuntimeTestCase):
    def test_echoes_events(self):
        example = SOURCE_DIR / "examples" / "hello-provided"
        events = [Event("c-1", {"x": 1}), Event("c-2", ["a", {"b": None}])]
        run = self.run_runtime([str(example / "bootstrap")], events, example)
        for event in events:
            post = run.post_for(event.request_id)
            self.assertEqual(post.path, f"{API_PREFIX}/invocation/{event.request_id}/response")
            self.assertEqual(post.json(), {"echo": json.loads(event.body)})
        self.assertIn("handling c-1", run.stdout)
        self.assertNotEqual(run.returncode, 0)


class PythonLoggingTest(RuntimeTestCase):
    """AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL and the telemetry descriptor, as Lambda's
    Python runtime has them."""

    SOURCE = """
        import logging
        logger = logging.getLogger("app")

        def handler(event, context):
            logger.debug("debugging %s", 1)
            logger.info("two\\nlines", extra={"order": 42})
            logging.warning("warned")
            try:
                {}["missing"]
            except KeyError:
                logger.exception("failed")
            print("bare print")
            if event.get("raise"):
                raise ValueError("boom")
            return "ok"
    """

    def argv(self):
        return [sys.executable, "-I", "-u", str(BOOTSTRAP)]

    def test_json_records_on_stdout_with_lambdas_keys(self):
        code = self.write_code({"app.py": self.SOURCE})
        run = self.run_runtime(self.argv(), [Event("req-j", {})], code,
                               env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"})
        records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        self.assertEqual([r["level"] for r in records], ["INFO", "WARNING", "ERROR"], run.stdout)
        info, warning, error = records
        self.assertEqual(info["message"], "two\nlines")
        self.assertEqual(info["logger"], "app")
        self.assertEqual(info["requestId"], "req-j")
        self.assertEqual(info["order"], 42)  # the record's `extra`
        self.assertTrue(info["timestamp"].endswith("Z"))
        stamp = datetime.fromisoformat(info["timestamp"].replace("Z", "+00:00"))
        self.assertLess(abs((stamp - datetime.now(timezone.utc)).total_seconds()), 60)
        self.assertNotIn("stackTrace", info)
        self.assertEqual(warning["logger"], "root")
        self.assertEqual(error["errorType"], "KeyError")
        self.assertEqual(error["errorMessage"], "'missing'")
        self.assertRegex(error["location"], r"app\.py:handler:\d+$")
        self.assertTrue(any("app.py" in frame for frame in error["stackTrace"]))
        self.assertIn("bare print", run.stdout.splitlines())
        self.assertEqual(run.post_for("req-j").json(), "ok")

    def test_level_filter_and_trace_is_debug(self):
        code = self.write_code({"app.py": self.SOURCE})
        levels = {}
        for level in ("TRACE", "WARN", "ERROR"):
            run = self.run_runtime(self.argv(), [Event("r", {})], code,
                                   env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": level})
            levels[level] = [json.loads(l)["level"] for l in run.stdout.splitlines() if l.startswith("{")]
        self.assertEqual(levels["TRACE"], ["DEBUG", "INFO", "WARNING", "ERROR"])
        self.assertEqual(levels["WARN"], ["WARNING", "ERROR"])
        self.assertEqual(levels["ERROR"], ["ERROR"])

    def test_text_leaves_logging_alone(self):
        code = self.write_code({"app.py": self.SOURCE})
        run = self.run_runtime(self.argv(), [Event("r", {})], code, env={"AWS_LAMBDA_LOG_FORMAT": "Text"})
        self.assertFalse(any(line.startswith("{") for line in run.stdout.splitlines()), run.stdout)
        # Python's own last-resort handler, as before: warnings and errors on stderr.
        self.assertIn("warned", run.stderr)

    def test_error_report_is_one_json_record(self):
        code = self.write_code({"app.py": self.SOURCE})
        run = self.run_runtime(self.argv(), [Event("r-err", {"raise": True})], code,
                               env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"})
        reports = [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{") and "errorType" in l]
        report = reports[-1]
        self.assertEqual((report["level"], report["errorType"], report["errorMessage"], report["requestId"]),
                         ("ERROR", "ValueError", "boom", "r-err"))
        self.assertIsInstance(report["stackTrace"], list)

    def test_telemetry_descriptor_gets_one_frame_per_record(self):
        code = self.write_code({"app.py": self.SOURCE})
        run, frames = run_with_telemetry(self.argv(), [Event("r-t", {"raise": True})], code,
                                         env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"})
        self.assertEqual([FRAME_LEVELS[f[0]] for f in frames], ["DEBUG", "INFO", "WARN", "ERROR", "ERROR"])
        self.assertTrue(all(f[1] for f in frames))  # JSON frames
        records = [json.loads(f[3]) for f in frames]
        self.assertEqual(records[1]["message"], "two\nlines")
        self.assertTrue(all(r["requestId"] == "r-t" for r in records))
        self.assertLess(abs(frames[0][2] / 1e6 - time.time()), 60)
        # Nothing of it on stdout but the bare print; the variable is gone from the handler's view.
        self.assertEqual(run.stdout.splitlines(), ["bare print"])

    def test_text_error_report_is_one_frame_with_its_traceback(self):
        code = self.write_code({"app.py": self.SOURCE})
        run, frames = run_with_telemetry(self.argv(), [Event("r-x", {"raise": True})], code)
        errors = [f for f in frames if f[3].startswith("[ERROR] ValueError: boom")]
        self.assertEqual(len(errors), 1, frames)
        level, is_json, _, text = errors[0]
        self.assertEqual((FRAME_LEVELS[level], is_json), ("ERROR", False))
        self.assertIn("\nTraceback (most recent call last):\n", text)
        self.assertIn("app.py", text)
        self.assertNotIn("ValueError", run.stderr)

    def test_telemetry_variable_is_not_the_handlers(self):
        code = self.write_code({"app.py": """
            import os
            def handler(event, context):
                return os.environ.get("_LAMBDA_TELEMETRY_LOG_FD")
        """})
        run, _ = run_with_telemetry(self.argv(), [Event("r", {})], code)
        self.assertIsNone(run.post_for("r").json())


if __name__ == "__main__":
    unittest.main()
