"""Runs funcd's Node.js runtime (runtime/nodejs/bootstrap.js) against a fake Lambda Runtime
API and checks what it posts back, as test_python_bootstrap.py does for the Python runtime.

The fake API here also reads streamed (chunked) responses with their trailers, and can make a
handler wait for something the API saw: handlers poll for files the API writes, so the order
of events is checked by cause and effect rather than by timing.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
from datetime import datetime, timezone
from pathlib import Path

from test_python_bootstrap import (
    API_PREFIX,
    DROP,
    FRAME_BY_CHUNKS,
    FRAME_BY_CLOSE,
    NEXT_REQUEST_LINE,
    PROCESS_TIMEOUT_S,
    Event,
    FakeRuntimeApi,
    Post,
    Run,
    FRAME_LEVELS,
    RuntimeTestCase,
    run_with_telemetry,
    runtime_env,
)

SOURCE_DIR = Path(__file__).resolve().parents[2]
BOOTSTRAP = SOURCE_DIR / "runtime" / "nodejs" / "bootstrap.js"
NODE = os.environ.get("FUNCD_NODE") or shutil.which("node") or "/usr/bin/node"
NODE_MAJOR = None  # read once from the node under test

EXIT_UNCAUGHT_EXCEPTION = 129
EXIT_UNHANDLED_REJECTION = 128
NODE_JS_EXIT_MESSAGE = (
    "The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a "
    "Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\t([^\t]*)\t(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\t(.*)$")
PRELUDE_DELIMITER = b"\0" * 8
# How long a handler waits for a file the fake API writes before it gives up (and the
# test fails on what it then answers). Only reached when the runtime is wrong.
HANDLER_WAIT_CAP_MS = 10_000

# Handler-side helper: resolves once `file` exists, or with false after `capMs`.
WAIT_FOR_FILE_JS = f"""
const fs = require('fs');
function waitForFile(file, capMs = {HANDLER_WAIT_CAP_MS}) {{
  return new Promise((resolve) => {{
    const start = Date.now();
    const timer = setInterval(() => {{
      if (fs.existsSync(file)) {{ clearInterval(timer); resolve(true); }}
      else if (Date.now() - start > capMs) {{ clearInterval(timer); resolve(false); }}
    }}, 5);
  }});
}}
"""


class StreamingPost(Post):
    def __init__(self, path, headers, body, chunks, trailers):
        super().__init__(path, headers, body)
        self.chunks = chunks
        self.trailers = trailers


class NodeRuntimeApi(FakeRuntimeApi):
    """FakeRuntimeApi that also reads chunked request bodies and their trailers.

    `flags`: a directory where, when a POST for request `rid` arrives, the file `posted-<rid>`
    is written, and when the first chunk of a streamed one arrives, `chunk-<rid>`.
    `probe`: called as each POST arrives; what it returns is kept in `probed[rid]`.
    `body_gate`: a file a streamed POST waits for before its body is read.
    """

    def __init__(self, events, flags=None, probe=None, body_gate=None, **kwargs):
        super().__init__(events, **kwargs)
        self.flags = flags
        self.probe = probe
        self.body_gate = body_gate
        self.probed = {}

    def on_post(self, h):
        headers = {k.lower(): v for k, v in h.headers.items()}
        parts = h.path[len(API_PREFIX):].split("/")
        rid = "init" if parts[1:] == ["init", "error"] else (parts[2] if len(parts) > 2 else "")
        if self.probe:
            self.probed[rid] = self.probe()
        if self.flags:
            (self.flags / f"posted-{rid}").write_text("")
        if "chunked" in headers.get("transfer-encoding", ""):
            if self.body_gate:
                wait_for_file(self.body_gate)
            chunks, trailers = self.read_chunked(h, rid)
            post = StreamingPost(h.path, headers, b"".join(chunks), chunks, trailers)
        else:
            post = Post(h.path, headers, h.rfile.read(int(headers.get("content-length", "0"))))
        with self.lock:
            self.posts.append(post)
        status = self.post_status.get(rid, 202)
        reply = b'{"status":"OK"}' if status == 202 else b'{"errorMessage":"refused"}'
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(reply)))
        h.end_headers()
        h.wfile.write(reply)

    def read_chunked(self, h, rid):
        chunks = []
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                break
            chunks.append(h.rfile.read(size))
            assert h.rfile.readline() == b"\r\n"
            if self.flags and len(chunks) == 1:
                (self.flags / f"chunk-{rid}").write_text("")
        trailers = {}
        while True:
            line = h.rfile.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            trailers[name.strip().lower()] = value.strip()
        return chunks, trailers


def wait_for_file(path, cap_s=HANDLER_WAIT_CAP_MS / 1000):
    deadline = time.monotonic() + cap_s
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def log_records(text):
    """The log records among a run's stdout lines: (time, request id, level, message)."""
    return [m.groups() for m in map(LOG_LINE.match, text.split("\n")) if m]


class NodeRuntimeTestCase(RuntimeTestCase):
    @classmethod
    def setUpClass(cls):
        global NODE_MAJOR
        if not Path(NODE).exists():
            raise AssertionError(f"no node at {NODE}: set FUNCD_NODE or install nodejs")
        if NODE_MAJOR is None:
            NODE_MAJOR = subprocess.run([NODE, "-p", "process.versions.node.split('.')[0]"], capture_output=True,
                                        text=True, check=True, timeout=PROCESS_TIMEOUT_S).stdout.strip()

    def setUp(self):
        super().setUp()
        self.flags = self.tmp / "flags"
        self.flags.mkdir()

    def run_node(self, files, events, handler="app.handler", env=None, node_args=(), **api_options):
        code = self.write_code(files)
        with NodeRuntimeApi(events, **api_options) as api:
            proc = subprocess.run([NODE, *node_args, str(BOOTSTRAP)], cwd=code, env=runtime_env(api, handler, code, env),
                                  capture_output=True, timeout=PROCESS_TIMEOUT_S)
        # Decoded here: text mode would turn the carriage returns inside log records into
        # line breaks.
        proc.stdout = proc.stdout.decode(errors="replace")
        proc.stderr = proc.stderr.decode(errors="replace")
        return Run(proc, api, code)

    def assert_init_error(self, run, error_type, message_start):
        self.assertEqual(run.returncode, EXIT_UNCAUGHT_EXCEPTION, run.stderr)
        self.assertEqual(run.api.nexts, 0)
        self.assertEqual([p.path for p in run.api.posts], [API_PREFIX + "/init/error"])
        post = run.api.posts[0]
        self.assertEqual(post.headers["lambda-runtime-function-error-type"], error_type)
        body = post.json()
        self.assertEqual(body["errorType"], error_type)
        self.assertTrue(body["errorMessage"].startswith(message_start), body["errorMessage"])
        self.assertIsInstance(body["trace"], list)
        # Logged too, as Lambda logs it: "Uncaught Exception" and the error as JSON.
        records = [r for r in log_records(run.stdout) if r[3].startswith("Uncaught Exception \t")]
        self.assertEqual(len(records), 1, run.stdout)
        self.assertEqual(records[0][1:3], ("undefined", "ERROR"))
        self.assertEqual(json.loads(records[0][3].split("\t", 1)[1])["errorType"], error_type)
        return body

    def assert_error_post(self, run, rid, error_type, message):
        post = run.post_for(rid)
        self.assertEqual(post.path, f"{API_PREFIX}/invocation/{rid}/error")
        self.assertEqual(post.headers["lambda-runtime-function-error-type"], error_type)
        body = post.json()
        self.assertEqual((body["errorType"], body["errorMessage"]), (error_type, message))
        return body


class HandlerLookupTest(NodeRuntimeTestCase):
    def answers(self, files, handler, events=None):
        run = self.run_node(files, events or [Event("r", {})], handler=handler)
        return run, run.post_for("r").json()

    def test_commonjs_module_and_nested_export(self):
        files = {"app.js": """
            exports.handler = async (event) => ({ kind: 'top', event });
            exports.api = { v1: { get: async () => 'nested' } };
        """}
        self.assertEqual(self.answers(files, "app.handler", [Event("r", {"a": 1})])[1], {"kind": "top", "event": {"a": 1}})
        self.assertEqual(self.answers(files, "app.api.v1.get")[1], "nested")

    def test_mjs_module_with_top_level_await(self):
        run, answer = self.answers({"app.mjs": """
            const value = await new Promise((resolve) => setTimeout(() => resolve(42), 20));
            const seen = typeof awslambda.streamifyResponse;
            export const handler = async () => ({ value, seen, format: typeof require });
        """}, "app.handler")
        # Loaded as an ES module (no require), its init awaited, the awslambda global there.
        self.assertEqual(answer, {"value": 42, "seen": "function", "format": "undefined"})

    def test_js_is_an_es_module_under_type_module(self):
        files = {
            "package.json": '{"type": "module"}',
            # Top-level await: only import() can load it (Node 20 can require() other ES modules).
            "app.js": "await Promise.resolve();\nexport const handler = async () => typeof require;",
            # The nearest package.json decides: this one makes its directory CommonJS again.
            "legacy/package.json": '{"type": "commonjs"}',
            "legacy/app.js": "exports.handler = async () => typeof require;",
        }
        self.assertEqual(self.answers(files, "app.handler")[1], "undefined")
        self.assertEqual(self.answers(files, "legacy/app.handler")[1], "function")

    def test_cjs_next_to_es_modules(self):
        files = {
            "package.json": '{"type": "module"}',
            "other.js": "export const x = 1;",
            "app.cjs": "module.exports.handler = async () => ['cjs', typeof require];",
        }
        self.assertEqual(self.answers(files, "app.handler")[1], ["cjs", "function"])

    def test_extensionless_file(self):
        files = {"app": "exports.handler = async () => 'extensionless';",
                 "app.js": "exports.handler = async () => 'js';"}
        self.assertEqual(self.answers(files, "app.handler")[1], "extensionless")

    def test_lookup_order(self):
        cases = [
            ({"app.js": "exports.handler = async () => 'js';", "app.mjs": "export const handler = async () => 'mjs';"}, "js"),
            ({"package.json": '{"type": "module"}', "app.js": "export const handler = async () => 'esm js';",
              "app.mjs": "export const handler = async () => 'mjs';"}, "esm js"),
            ({"app.mjs": "export const handler = async () => 'mjs';",
              "app.cjs": "exports.handler = async () => 'cjs';"}, "mjs"),
        ]
        for files, expected in cases:
            with self.subTest(expected=expected):
                shutil.rmtree(self.tmp / "code", ignore_errors=True)
                self.assertEqual(self.answers(files, "app.handler")[1], expected)

    def test_module_in_nested_directories(self):
        files = {
            "src/handlers/app.js": """
                const helper = require('./helper');
                exports.handler = async () => helper.name;
            """,
            "src/handlers/helper.js": "exports.name = 'nested helper';",
        }
        self.assertEqual(self.answers(files, "src/handlers/app.handler")[1], "nested helper")

    def test_module_from_node_modules(self):
        files = {
            "node_modules/mypkg/package.json": '{"main": "lib/main.js"}',
            "node_modules/mypkg/lib/main.js": "exports.handler = async () => 'from node_modules';",
        }
        self.assertEqual(self.answers(files, "mypkg.handler")[1], "from node_modules")

    def test_layers_and_node_path(self):
        opt = self.tmp / "opt"
        for rel, text in {
            "nodejs/node_modules/shared/index.js": "module.exports = 'any node';",
            f"nodejs/node{NODE_MAJOR}/node_modules/shared/index.js": "module.exports = 'this node';",
            "nodejs/node_modules/onlyhere/index.js": "module.exports = 'layer';",
            "nodejs/node_modules/layerfn/index.js": "exports.handler = async () => 'handler from a layer';",
        }.items():
            (opt / rel).parent.mkdir(parents=True, exist_ok=True)
            (opt / rel).write_text(text)
        files = {
            "app.js": """
                exports.handler = async () => [require('shared'), require('onlyhere'), require('lib/util'),
                                               process.env.FUNCD_LAYERS_ROOT === undefined];
            """,
            "lib/util.js": "module.exports = 'task root';",
        }
        env = {"FUNCD_LAYERS_ROOT": str(opt)}
        run = self.run_node(files, [Event("r", {})], env=env)
        # node<major> before the shared directory; the task root last; the variable not left behind.
        self.assertEqual(run.post_for("r").json(), ["this node", "layer", "task root", True])
        run = self.run_node(files, [Event("r", {})], handler="layerfn.handler", env=env)
        self.assertEqual(run.post_for("r").json(), "handler from a layer")
        # A NODE_PATH set by whoever starts the runtime is the one used.
        elsewhere = self.tmp / "elsewhere"
        (elsewhere / "onlyhere").mkdir(parents=True)
        (elsewhere / "onlyhere" / "index.js").write_text("module.exports = 'launcher';")
        (elsewhere / "shared").mkdir()
        (elsewhere / "shared" / "index.js").write_text("module.exports = 'launcher shared';")
        (elsewhere / "lib").mkdir()
        (elsewhere / "lib" / "util.js").write_text("module.exports = 'launcher lib';")
        run = self.run_node(files, [Event("r", {})], env=dict(env, NODE_PATH=str(elsewhere)))
        self.assertEqual(run.post_for("r").json(), ["launcher shared", "launcher", "launcher lib", True])


class InitErrorTest(NodeRuntimeTestCase):
    def test_missing_module(self):
        run = self.run_node({"other.js": ""}, [Event("x", {})])
        self.assert_init_error(run, "Runtime.ImportModuleError", "Error: Cannot find module 'app'")

    def test_missing_dependency(self):
        run = self.run_node({"app.js": "require('not-installed');\nexports.handler = async () => 1;"}, [Event("x", {})])
        self.assert_init_error(run, "Runtime.ImportModuleError", "Error: Cannot find module 'not-installed'")

    def test_syntax_error(self):
        for name in ("app.js", "app.mjs"):
            with self.subTest(module=name):
                shutil.rmtree(self.tmp / "code", ignore_errors=True)
                run = self.run_node({name: "exports.handler = async (event => 1;\n"}, [Event("x", {})])
                body = self.assert_init_error(run, "Runtime.UserCodeSyntaxError", "SyntaxError: ")
                if name == "app.js":
                    # The stack of a CommonJS module's syntax error names the file and line
                    # (an ES module's, in Node 20, does not).
                    self.assertIn(f"{run.code_dir / name}:1", body["trace"][0])

    def test_handler_not_found(self):
        run = self.run_node({"app.js": "exports.other = async () => 1;"}, [Event("x", {})])
        self.assert_init_error(run, "Runtime.HandlerNotFound", "app.handler is undefined or not exported")
        run = self.run_node({"app.js": "exports.handler = 3;"}, [Event("x", {})])
        self.assert_init_error(run, "Runtime.HandlerNotFound", "app.handler is not a function")
        run = self.run_node({"app.js": "exports.api = {};"}, [Event("x", {})], handler="app.api.v1.get")
        self.assert_init_error(run, "Runtime.HandlerNotFound", "app.api.v1.get is undefined or not exported")

    def test_malformed_handler_name(self):
        for spec, message in (("app", "Bad handler"), ("", "Bad handler"), ("src/", "Bad handler"),
                              (".handler", "Bad handler"),
                              ("../app.handler", "'../app.handler' is not a valid handler name.")):
            with self.subTest(spec=spec):
                run = self.run_node({"app.js": "exports.handler = async () => 1;"}, [Event("x", {})], handler=spec)
                self.assert_init_error(run, "Runtime.MalformedHandlerName", message)

    def test_module_that_throws_reports_its_own_error(self):
        run = self.run_node({"app.js": "class ConfigError extends Error {}\nConfigError.prototype.name = 'ConfigError';\n"
                                       "throw new ConfigError('no config');"}, [Event("x", {})])
        body = self.assert_init_error(run, "ConfigError", "no config")
        self.assertTrue(any("app.js" in line for line in body["trace"]), body["trace"])

    def test_top_level_await_rejection_and_never_settling(self):
        run = self.run_node({"app.mjs": "await Promise.reject(new TypeError('init failed'));\n"
                                        "export const handler = async () => 1;"}, [Event("x", {})])
        self.assert_init_error(run, "TypeError", "init failed")
        run = self.run_node({"app.mjs": "await new Promise(() => {});\nexport const handler = async () => 1;"},
                            [Event("x", {})])
        self.assert_init_error(run, "Runtime.NodeJsExit", NODE_JS_EXIT_MESSAGE)

    def test_unknown_streaming_mark(self):
        run = self.run_node({"app.js": """
            exports.handler = async () => 1;
            exports.handler[Symbol.for('aws.lambda.runtime.handler.streaming')] = 'request';
        """}, [Event("x", {})])
        self.assert_init_error(run, "Runtime.MalformedStreamingHandler", "Only response streaming is supported.")


class InvocationTest(NodeRuntimeTestCase):
    def test_async_promise_and_sync_handlers(self):
        for source, expected in (
                ("exports.handler = async (event) => event.n + 1;", 2),
                ("exports.handler = (event) => Promise.resolve(event.n * 10);", 10),
                ("exports.handler = async () => undefined;", None),
                # A handler that neither returns a promise nor calls back answers null.
                ("exports.handler = (event) => event.n;", None),
                ("exports.handler = (event, context, callback) => callback(null, {n: event.n});", {"n": 1})):
            with self.subTest(source=source):
                run = self.run_node({"app.js": source}, [Event("r", {"n": 1})])
                post = run.post_for("r")
                self.assertEqual(post.path, f"{API_PREFIX}/invocation/r/response")
                self.assertEqual(post.json(), expected)
                self.assertEqual(post.headers["content-type"], "application/json")
                self.assertNotIn("lambda-runtime-function-error-type", post.headers)

    def test_callback_waits_for_empty_event_loop_by_default(self):
        # Work the invocation leaves pending: a timer that ends once the API has the answer,
        # or after a cap. A runtime that answers at once lets it end just after; one that
        # waits for the event loop to empty answers only after the cap.
        source = WAIT_FOR_FILE_JS + """
            exports.handler = (event, context, callback) => {
              if (event.wait === false) context.callbackWaitsForEmptyEventLoop = false;
              callback(null, context.callbackWaitsForEmptyEventLoop);
              waitForFile(`${event.flags}/posted-${context.awsRequestId}`, event.capMs)
                .then(() => fs.writeFileSync(`${event.flags}/timer-${context.awsRequestId}`, ''));
            };
        """
        flags = self.flags
        run = self.run_node({"app.js": source},
                            [Event("no-wait", {"wait": False, "flags": str(flags)}),
                             Event("default", {"flags": str(flags), "capMs": 300})],
                            flags=flags, probe=lambda: sorted(p.name for p in flags.glob("timer-*")))
        self.assertEqual(run.post_for("no-wait").json(), False)
        self.assertEqual(run.api.probed["no-wait"], [], "waited for the pending timer")
        self.assertEqual(run.post_for("default").json(), True)
        self.assertIn("timer-default", run.api.probed["default"], "answered while a timer was pending")

    def test_context_succeed_fail_and_done_answer_at_once(self):
        source = WAIT_FOR_FILE_JS + """
            exports.handler = (event, context, callback) => {
              waitForFile(`${event.flags}/posted-${context.awsRequestId}`)
                .then(() => fs.writeFileSync(`${event.flags}/timer-${context.awsRequestId}`, ''));
              if (event.how === 'succeed') context.succeed('ok');
              if (event.how === 'done') context.done(null, 'done');
              if (event.how === 'fail') context.fail(new RangeError('failed'));
              if (event.how === 'fail-nothing') context.fail();
              callback(null, 'ignored: the first answer wins');
            };
        """
        flags = self.flags
        run = self.run_node({"app.js": source},
                            [Event(how, {"how": how, "flags": str(flags)}) for how in
                             ("succeed", "done", "fail", "fail-nothing")],
                            flags=flags, probe=lambda: sorted(p.name for p in flags.glob("timer-*")))
        self.assertEqual(run.post_for("succeed").json(), "ok")
        self.assertEqual(run.post_for("done").json(), "done")
        self.assert_error_post(run, "fail", "RangeError", "failed")
        self.assert_error_post(run, "fail-nothing", "string", "handled")
        for how in ("succeed", "done", "fail", "fail-nothing"):
            self.assertNotIn(f"timer-{how}", run.api.probed[how], how)

    def test_callback_kept_from_an_earlier_invocation_does_nothing(self):
        run = self.run_node({"app.js": """
            let kept;
            exports.handler = (event, context, callback) => {
              if (event.n === 1) kept = callback;  // and no answer: null once the loop is empty
              else kept(null, 'stale');
            };
        """}, [Event("first", {"n": 1}), Event("second", {"n": 2}), Event("third", {"n": 3})])
        for rid in ("first", "second", "third"):
            self.assertEqual(run.post_for(rid).body, b"null", rid)

    def test_never_settling_async_handler_is_node_js_exit(self):
        run = self.run_node({"app.js": """
            exports.handler = async (event) => {
              if (event.hang) await new Promise(() => {});
              return 'next one fine';
            };
        """}, [Event("hang", {"hang": True}), Event("after", {})])
        body = self.assert_error_post(run, "hang", "Runtime.NodeJsExit", NODE_JS_EXIT_MESSAGE)
        self.assertIsInstance(body["trace"], list)
        self.assertIn("Invoke Error", run.stdout)
        # The worker stays usable.
        self.assertEqual(run.post_for("after").json(), "next one fine")

    def test_errors(self):
        source = """
            class QuotaExceeded extends Error {}
            QuotaExceeded.prototype.name = 'QuotaExceeded';
            function check(n) { throw new QuotaExceeded(`over by ${n}`); }
            exports.handler = async (event) => {
              if (event.kind === 'class') check(7);
              if (event.kind === 'string') throw 'plain string';
              if (event.kind === 'reject') return Promise.reject(new TypeError('bad type'));
              return 'fine';
            };
        """
        run = self.run_node({"app.js": source}, [Event("class", {"kind": "class"}), Event("string", {"kind": "string"}),
                                                 Event("reject", {"kind": "reject"}), Event("fine", {})])
        body = self.assert_error_post(run, "class", "QuotaExceeded", "over by 7")
        self.assertEqual(body["trace"][0], "QuotaExceeded: over by 7")
        self.assertIn("at check (", body["trace"][1])
        self.assertIn(str(run.code_dir / "app.js"), body["trace"][1])
        self.assertEqual(self.assert_error_post(run, "string", "string", "plain string")["trace"], [])
        self.assert_error_post(run, "reject", "TypeError", "bad type")
        self.assertEqual(run.post_for("fine").json(), "fine")
        invoke_errors = [r for r in log_records(run.stdout) if r[3].startswith("Invoke Error \t")]
        self.assertEqual([(r[1], r[2]) for r in invoke_errors], [("class", "ERROR"), ("string", "ERROR"), ("reject", "ERROR")])
        self.assertEqual(json.loads(invoke_errors[0][3].split("\t", 1)[1])["errorMessage"], "over by 7")

    def test_callback_error_and_sync_throw(self):
        source = """
            exports.handler = (event, context, callback) => {
              if (event.kind === 'callback') return callback(new Error('from callback'));
              throw new SyntaxError('thrown');
            };
        """
        run = self.run_node({"app.js": source}, [Event("callback", {"kind": "callback"}), Event("throw", {})])
        self.assert_error_post(run, "callback", "Error", "from callback")
        self.assert_error_post(run, "throw", "SyntaxError", "thrown")

    def test_error_type_cannot_add_headers(self):
        run = self.run_node({"app.js": """
            exports.handler = async () => { const e = new Error('boom'); e.name = 'Odd\\r\\nX-Injected: yes'; throw e; };
        """}, [Event("odd", {})])
        post = run.post_for("odd")
        self.assertNotIn("x-injected", post.headers)
        self.assertEqual(post.headers["lambda-runtime-function-error-type"], "Odd??X-Injected: yes")
        self.assertEqual(post.json()["errorType"], "Odd\r\nX-Injected: yes")

    def test_unparsable_event_and_unserialisable_result(self):
        run = self.run_node({"app.js": "exports.handler = async (event) => event.big ? 2n ** 70n : event;"},
                            [Event("bad", b"{not json"), Event("empty", b""), Event("big", {"big": True})])
        body = self.assert_error_post(run, "bad", "Runtime.UnmarshalError", "Unable to parse input as json: "
                                      + node_json_error("{not json"))
        self.assertEqual(run.post_for("empty").json(), {})
        self.assert_error_post(run, "big", "Runtime.JSONStringifyError", "Unable to stringify response body")
        self.assertIsInstance(body["trace"], list)

    def test_context(self):
        client_context = {"client": {"installation_id": "inst"}, "custom": {"k": "v"}, "env": {"platform": "x"}}
        identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        now_ms = int(time.time() * 1000)
        source = """
            exports.handler = async (event, context) => ({
              awsRequestId: context.awsRequestId,
              functionName: context.functionName,
              functionVersion: context.functionVersion,
              invokedFunctionArn: context.invokedFunctionArn,
              memoryLimitInMB: context.memoryLimitInMB,
              logGroupName: context.logGroupName,
              logStreamName: context.logStreamName,
              remaining: context.getRemainingTimeInMillis(),
              clientContext: context.clientContext === undefined ? 'none' : context.clientContext,
              identity: context.identity === undefined ? 'none' : context.identity,
              waits: context.callbackWaitsForEmptyEventLoop,
              legacy: [typeof context.succeed, typeof context.fail, typeof context.done],
              trace: process.env._X_AMZN_TRACE_ID === undefined ? 'none' : process.env._X_AMZN_TRACE_ID,
            });
        """
        run = self.run_node({"app.js": source}, [
            Event("ctx-1", {}, deadline_ms=now_ms + 60_000, trace_id="Root=1-abc",
                  headers={"Lambda-Runtime-Client-Context": json.dumps(client_context),
                           "LAMBDA-RUNTIME-COGNITO-IDENTITY": json.dumps(identity)}),
            Event("ctx-2", {}, deadline_ms=now_ms - 5_000),
            Event("bad-json", {}, headers={"Lambda-Runtime-Client-Context": "{nope"}),
        ])
        first = run.post_for("ctx-1").json()
        remaining = first.pop("remaining")
        self.assertGreater(remaining, 30_000)
        self.assertLessEqual(remaining, 60_000)
        self.assertEqual(first, {
            "awsRequestId": "ctx-1", "functionName": "fn", "functionVersion": "3",
            "invokedFunctionArn": "arn:aws:lambda:local:000000000000:function:fn",
            "memoryLimitInMB": "256", "logGroupName": "/aws/lambda/fn", "logStreamName": "2024/01/01/[3]abc",
            "clientContext": client_context, "identity": identity, "waits": True,
            "legacy": ["function", "function", "function"], "trace": "Root=1-abc",
        })
        second = run.post_for("ctx-2").json()
        # Past the deadline the remaining time is negative, as on Lambda.
        self.assertLess(second["remaining"], -4_000)
        self.assertEqual((second["clientContext"], second["identity"]), ("none", "none"))
        self.assertEqual(second["trace"], "none", "a trace id must not outlive its invocation")
        self.assert_error_post(run, "bad-json", "Error", "Cannot parse ClientContext as json: " +
                               "SyntaxError: " + node_json_error("{nope"))


class UncaughtErrorTest(NodeRuntimeTestCase):
    def test_uncaught_exception_fails_the_invocation_and_exits(self):
        run = self.run_node({"app.js": """
            exports.handler = (event, context, callback) => {
              setTimeout(() => { throw new RangeError('late'); }, 5);
              callback(null, 'would wait for the timer');
            };
        """}, [Event("r", {}), Event("never", {})])
        self.assertEqual(run.returncode, EXIT_UNCAUGHT_EXCEPTION, run.stderr)
        self.assert_error_post(run, "r", "RangeError", "late")
        self.assertEqual(run.api.nexts, 1)
        self.assertEqual(len(run.api.posts), 1)
        self.assertTrue(any(r[1] == "r" and r[3].startswith("Uncaught Exception \t") for r in log_records(run.stdout)))

    def test_unhandled_rejection_fails_the_invocation_and_exits(self):
        run = self.run_node({"app.js": """
            exports.handler = async () => {
              Promise.reject(new Error('nobody listens'));
              await new Promise((resolve) => setTimeout(resolve, 1000));
              return 'too late';
            };
        """}, [Event("r", {}), Event("never", {})])
        self.assertEqual(run.returncode, EXIT_UNHANDLED_REJECTION, run.stderr)
        body = self.assert_error_post(run, "r", "Runtime.UnhandledPromiseRejection", "Error: nobody listens")
        self.assertIsInstance(body["trace"], list)
        self.assertEqual(run.api.nexts, 1)
        logged = [r for r in log_records(run.stdout) if r[3].startswith("Unhandled Promise Rejection \t")]
        self.assertEqual(len(logged), 1, run.stdout)
        self.assertEqual(json.loads(logged[0][3].split("\t", 1)[1])["reason"]["errorMessage"], "nobody listens")

    def test_uncaught_exception_during_init(self):
        run = self.run_node({"app.mjs": """
            setTimeout(() => { throw new Error('during init'); }, 1);
            await new Promise((resolve) => setTimeout(resolve, 200));
            export const handler = async () => 1;
        """}, [Event("x", {})])
        self.assert_init_error(run, "Error", "during init")


class LoggingTest(NodeRuntimeTestCase):
    SOURCE = """
        exports.handler = async () => {
          console.log('plain %s=%d', 'n', 5);
          console.info({ a: [1, 2] });
          console.warn('two\\nlines');
          console.error(new Error('shown'));
          console.debug('debugging');
          console.trace('tracing');
          console.fatal('fatal');
          process.stdout.write('raw\\n');
          return 1;
        };
    """

    def test_text_format(self):
        run = self.run_node({"app.js": self.SOURCE}, [Event("log-1", {})])
        records = log_records(run.stdout)
        self.assertTrue(all(r[1] == "log-1" for r in records), records)
        by_level = [(r[2], r[3]) for r in records]
        self.assertEqual(by_level[:3], [("INFO", "plain n=5"), ("INFO", "{ a: [ 1, 2 ] }"), ("WARN", "two\rlines")])
        level, message = by_level[3]
        self.assertEqual(level, "ERROR")
        # One record: the stack's line breaks are carriage returns.
        self.assertTrue(message.startswith("Error: shown\r    at "), message)
        self.assertEqual(by_level[4:], [("DEBUG", "debugging"), ("TRACE", "tracing"), ("FATAL", "fatal")])
        lines = run.stdout.split("\n")
        self.assertEqual(len(lines), 9, lines)
        self.assertEqual(lines[8], "")
        self.assertEqual(lines[7], "raw")
        stamp = datetime.fromisoformat(records[0][0].replace("Z", "+00:00"))
        self.assertLess(abs((stamp - datetime.now(timezone.utc)).total_seconds()), 60)

    def test_level_filter(self):
        run = self.run_node({"app.js": self.SOURCE}, [Event("r", {})], env={"AWS_LAMBDA_LOG_LEVEL": "warn"})
        self.assertEqual([r[2] for r in log_records(run.stdout)], ["WARN", "ERROR", "FATAL"])

    def test_json_format(self):
        run = self.run_node({"app.js": self.SOURCE}, [Event("r", {})],
                            env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"})
        records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        self.assertEqual([r["level"] for r in records], ["INFO", "INFO", "WARN", "ERROR", "FATAL"])
        self.assertTrue(all(r["requestId"] == "r" for r in records))
        self.assertEqual(records[0]["message"], "plain n=5")
        self.assertEqual(records[1]["message"], {"a": [1, 2]})
        self.assertEqual(records[2]["message"], "two\nlines")
        self.assertEqual(records[3]["message"]["errorType"], "Error")
        self.assertEqual(records[3]["message"]["errorMessage"], "shown")
        self.assertEqual(len(run.stdout.split("\n")), 7, run.stdout)


class TelemetryDescriptorTest(NodeRuntimeTestCase):
    """With _LAMBDA_TELEMETRY_LOG_FD, console.* records are frames on that descriptor (as
    aws-lambda-ric writes them), their line breaks kept, instead of lines on stdout."""

    def run_framed(self, source, events, env=None):
        code = self.write_code({"app.js": source})
        return run_with_telemetry([NODE, str(BOOTSTRAP)], events, code, env=env)

    def test_text_records_keep_their_line_breaks(self):
        run, frames = self.run_framed(LoggingTest.SOURCE, [Event("t-1", {})])
        self.assertEqual([FRAME_LEVELS[f[0]] for f in frames],
                         ["INFO", "INFO", "WARN", "ERROR", "DEBUG", "TRACE", "FATAL"])
        self.assertFalse(any(f[1] for f in frames))  # text frames
        fields = [f[3].split("\t", 3) for f in frames]
        self.assertTrue(all(f[1] == "t-1" for f in fields), fields)
        self.assertEqual(fields[2][3], "two\nlines\n")
        # A stack trace is one record, its lines as they were.
        self.assertTrue(fields[3][3].startswith("Error: shown\n    at "), fields[3][3])
        self.assertGreater(fields[3][3].count("\n"), 2)
        now_us = time.time() * 1e6
        self.assertTrue(all(abs(f[2] - now_us) < 60e6 for f in frames))
        # Only the raw write is left on stdout.
        self.assertEqual(run.stdout, "raw\n")

    def test_json_records_and_level_filter(self):
        run, frames = self.run_framed(LoggingTest.SOURCE, [Event("j-1", {})],
                                      env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"})
        self.assertEqual([FRAME_LEVELS[f[0]] for f in frames], ["WARN", "ERROR", "FATAL"])
        self.assertTrue(all(f[1] for f in frames))
        records = [json.loads(f[3]) for f in frames]
        self.assertEqual([r["level"] for r in records], ["WARN", "ERROR", "FATAL"])
        self.assertTrue(all(r["requestId"] == "j-1" for r in records))
        self.assertEqual(records[0]["message"], "two\nlines")
        self.assertEqual(records[1]["message"]["errorType"], "Error")
        self.assertIsInstance(records[1]["message"]["stackTrace"], list)

    def test_uncaught_error_is_one_record_and_variable_is_taken(self):
        source = """
            exports.handler = async () => {
              const hidden = process.env._LAMBDA_TELEMETRY_LOG_FD;
              console.log('variable', hidden === undefined ? 'gone' : 'visible');
              throw new TypeError('bad\\nthing');
            };
        """
        run, frames = self.run_framed(source, [Event("e-1", {})])
        texts = [f[3] for f in frames]
        self.assertTrue(texts[0].endswith("\tINFO\tvariable gone\n"), texts)
        errors = [t for t in texts if "Invoke Error" in t]
        self.assertEqual(len(errors), 1, texts)
        self.assertEqual(FRAME_LEVELS[frames[texts.index(errors[0])][0]], "ERROR")


class StreamingTest(NodeRuntimeTestCase):
    def test_chunks_arrive_while_the_handler_runs(self):
        source = WAIT_FOR_FILE_JS + """
            exports.handler = awslambda.streamifyResponse(async (event, stream, context) => {
              stream.write('first ');
              const arrived = await waitForFile(`${event.flags}/chunk-${context.awsRequestId}`);
              stream.write(arrived ? 'second' : 'the first chunk was held back');
              stream.end();
              return 'ignored';
            });
        """
        run = self.run_node({"app.js": source}, [Event("s-1", {"flags": str(self.flags)}),
                                                 Event("s-2", {"flags": str(self.flags)})], flags=self.flags)
        for rid in ("s-1", "s-2"):
            post = run.post_for(rid)
            self.assertEqual(post.path, f"{API_PREFIX}/invocation/{rid}/response")
            self.assertEqual(post.body, b"first second")
            self.assertEqual(post.chunks[0], b"first ")
            self.assertEqual(post.headers["lambda-runtime-function-response-mode"], "streaming")
            self.assertEqual(post.headers["transfer-encoding"], "chunked")
            self.assertEqual(post.headers["trailer"],
                             "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body")
            self.assertEqual(post.headers["content-type"], "application/octet-stream")
            self.assertEqual(post.trailers, {})
        self.assertIn("Streaming handlers ignore return values.", run.stdout)

    def test_http_response_stream_prelude(self):
        source = """
            export const handler = awslambda.streamifyResponse(async (event, stream) => {
              stream = awslambda.HttpResponseStream.from(stream, {
                statusCode: 201, headers: { 'x-custom': 'yes' }, cookies: ['a=1'] });
              stream.write('hello ');
              stream.end(Buffer.from('world'));
            });
        """
        run = self.run_node({"app.mjs": source}, [Event("h", {})])
        post = run.post_for("h")
        prelude = json.dumps({"statusCode": 201, "headers": {"x-custom": "yes"}, "cookies": ["a=1"]},
                             separators=(",", ":")).encode()
        self.assertEqual(post.body, prelude + PRELUDE_DELIMITER + b"hello world")
        self.assertEqual(post.headers["content-type"], "application/vnd.awslambda.http-integration-response")

    def test_content_type_and_empty_body(self):
        source = """
            exports.handler = awslambda.streamifyResponse(async (event, stream) => {
              if (event.kind === 'typed') {
                stream.setContentType('text/plain');
                stream.write({ json: true });
                try { stream.setContentType('text/html'); } catch (e) { stream.write(` ${e.name}`); }
              }
              stream.end();
            });
        """
        run = self.run_node({"app.js": source}, [Event("typed", {"kind": "typed"}), Event("empty", {}),
                                                 Event("after", {})])
        typed = run.post_for("typed")
        self.assertEqual(typed.headers["content-type"], "text/plain")
        self.assertEqual(typed.body, b'{"json":true} Runtime.InvalidStreamingOperation')
        empty = run.post_for("empty")
        self.assertEqual((empty.body, empty.chunks, empty.trailers), (b"", [], {}))
        # Nothing was left over on the connection to spoil the next request on it.
        self.assertEqual(run.api.served_from["empty"], run.api.served_from["after"])
        self.assertEqual(run.post_for("after").body, b"")

    def test_error_after_the_first_byte_goes_in_trailers(self):
        source = """
            exports.handler = awslambda.streamifyResponse(async (event, stream) => {
              if (event.kind === 'late') {
                stream.write('partial');
                await new Promise((resolve) => setTimeout(resolve, 5));
                throw new RangeError('mid-stream');
              }
              if (event.kind === 'early') throw new TypeError('before any byte');
              stream.end('fine');
            });
        """
        run = self.run_node({"app.js": source}, [Event("late", {"kind": "late"}), Event("early", {"kind": "early"}),
                                                 Event("fine", {})])
        late = run.post_for("late")
        self.assertEqual(late.path, f"{API_PREFIX}/invocation/late/response")
        self.assertEqual(late.body, b"partial")
        self.assertEqual(late.trailers["lambda-runtime-function-error-type"], "RangeError")
        error = json.loads(base64.b64decode(late.trailers["lambda-runtime-function-error-body"], validate=True))
        self.assertEqual((error["errorType"], error["errorMessage"]), ("RangeError", "mid-stream"))
        self.assertEqual(error["trace"][0], "RangeError: mid-stream")
        # Nothing sent yet: an ordinary error answer.
        self.assert_error_post(run, "early", "TypeError", "before any byte")
        self.assertEqual(run.post_for("fine").body, b"fine")

    def test_write_returns_false_while_the_connection_is_full(self):
        # The API reads the body only once the handler has seen write() return false and no
        # 'drain' follow: the connection is full. A runtime without backpressure never gets
        # there and writes up to the cap.
        gate = self.flags / "saw-full"
        source = f"""
            const fs = require('fs');
            const {{ once }} = require('events');
            const CAP = 64 * 1024 * 1024;
            exports.handler = awslambda.streamifyResponse(async (event, stream) => {{
              const chunk = Buffer.alloc(64 * 1024, 120);
              let written = 0;
              while (written < CAP) {{
                const ok = stream.write(chunk);
                written += chunk.length;
                if (ok) {{
                  await new Promise((resolve) => setImmediate(resolve));
                  continue;
                }}
                const drained = await Promise.race([
                  once(stream, 'drain').then(() => true),
                  new Promise((resolve) => setTimeout(resolve, 200, false)),
                ]);
                if (!drained) break;
              }}
              fs.writeFileSync({json.dumps(str(gate))}, String(written));
              if (stream.writableNeedDrain) await once(stream, 'drain');
              stream.end(`|${{written}}`);
            }}, {{ highWaterMark: 1024 * 1024 }});
        """
        run = self.run_node({"app.js": source}, [Event("big", {})], body_gate=gate)
        self.assertTrue(gate.exists(), run.stderr)
        written = int(gate.read_text())
        self.assertLess(written, 64 * 1024 * 1024)
        body = run.post_for("big").body
        self.assertEqual(len(body), written + len(f"|{written}"))
        self.assertEqual(body, b"x" * written + f"|{written}".encode())

    def test_non_async_streaming_handler_and_unended_stream(self):
        source = """
            exports.handler = awslambda.streamifyResponse((event, stream) => {
              if (event.kind === 'sync') return 'not a promise';
              return Promise.resolve();  // never ends the stream
            });
        """
        run = self.run_node({"app.js": source}, [Event("sync", {"kind": "sync"}), Event("open", {})])
        self.assert_error_post(run, "sync", "string", "Streaming does not support non-async handlers.")
        self.assert_error_post(run, "open", "string", "Response stream is not finished.")

    def test_uncaught_exception_mid_stream(self):
        source = """
            exports.handler = awslambda.streamifyResponse(async (event, stream) => {
              stream.write('some');
              setTimeout(() => { throw new Error('boom'); }, 5);
              await new Promise(() => setTimeout(() => {}, 1000));
            });
        """
        run = self.run_node({"app.js": source}, [Event("r", {}), Event("never", {})])
        self.assertEqual(run.returncode, EXIT_UNCAUGHT_EXCEPTION, run.stderr)
        post = run.post_for("r")
        self.assertEqual(post.body, b"some")
        self.assertEqual(post.trailers["lambda-runtime-function-error-type"], "Error")
        self.assertEqual(run.api.nexts, 1)

    def test_global_can_be_turned_off(self):
        run = self.run_node({"app.js": "exports.handler = async () => typeof awslambda;"}, [Event("r", {})],
                            env={"AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA": "1"})
        self.assertEqual(run.post_for("r").json(), "undefined")


class TransportTest(NodeRuntimeTestCase):
    def test_one_tcp_connection_for_all_invocations(self):
        run = self.run_node({"app.js": "exports.handler = async (event) => event;"},
                            [Event("a", {"x": 1}), Event("b", [2])])
        self.assertEqual(run.post_for("a").json(), {"x": 1})
        self.assertEqual(run.post_for("b").json(), [2])
        self.assertEqual(run.post_for("a").headers["host"], run.api.address)
        self.assertEqual(run.api.served_from["a"], run.api.served_from["b"])
        # The queue ran dry, the server hung up, and the runtime gave up.
        self.assertEqual(run.returncode, 1)

    def test_own_connection_with_pipelined_next(self):
        code = self.write_code({"app.js": "exports.handler = async (event) => event.n * 10;"})
        run, sent = self.exchange_on_inherited_connection([NODE, str(BOOTSTRAP)], code)
        self.assert_answered_and_asked_again(sent[0], "e-1", b"10")
        self.assert_answered_and_asked_again(sent[1], "e-2", b"20")
        # That connection closed before e-2's answer was acknowledged: the answer went again
        # over TCP, which then had no event for it.
        self.assertEqual([p.path for p in run.api.posts], [f"{API_PREFIX}/invocation/e-2/response"])
        self.assertGreaterEqual(run.api.nexts, 1)
        self.assertEqual(run.returncode, 1)

    def test_streamed_answer_on_own_connection_is_pipelined(self):
        code = self.write_code({"app.js": """
            exports.handler = awslambda.streamifyResponse(async (event, stream, context) => {
              context.callbackWaitsForEmptyEventLoop = false;
              stream.end(`n=${event.n}`);
            });
        """})
        _, sent = self.exchange_on_inherited_connection([NODE, str(BOOTSTRAP)], code)
        self.assertTrue(sent[0].startswith(f"POST {API_PREFIX}/invocation/e-1/response HTTP/1.1\r\n".encode()))
        self.assertIn(b"\r\nTransfer-Encoding: chunked\r\n", sent[0])
        self.assertTrue(sent[0].endswith(b"\r\n\r\n3\r\nn=1\r\n0\r\n\r\n" + NEXT_REQUEST_LINE
                                         + f"Host: {self.host_of(sent[0])}\r\n\r\n".encode()), sent[0])

    @staticmethod
    def host_of(message):
        return re.search(rb"\r\nHost: ([^\r]*)\r\n", message).group(1).decode()

    def test_own_connection_is_not_inherited_by_children(self):
        code = self.write_code({"app.js": """
            const { execFileSync } = require('child_process');
            exports.handler = async () => ({
              fds: execFileSync('ls', ['/proc/self/fd']).toString().split(/\\s+/).filter(Boolean).map(Number),
              env: process.env.FUNCD_RUNTIME_API_FD === undefined,
            });
        """})
        _, sent = self.exchange_on_inherited_connection([NODE, str(BOOTSTRAP)], code)
        body = sent[0].split(b"\r\n\r\n", 1)[1]
        answer = json.loads(body[:body.index(NEXT_REQUEST_LINE)])
        self.assertLessEqual(max(answer["fds"]), 3, answer)  # stdio and ls's own directory
        self.assertTrue(answer["env"])

    def test_reconnects_after_a_dropped_connection(self):
        run = self.run_node({"app.js": "exports.handler = async (event) => event;"}, [DROP, Event("r", {"x": 1})])
        self.assertEqual(run.post_for("r").json(), {"x": 1})

    def test_reads_chunked_unframed_and_split_events(self):
        big = {"blob": "x" * 200_000, "n": list(range(1000))}
        events = [Event("chunked", big, framing=FRAME_BY_CHUNKS), Event("unframed", {"u": 1}, framing=FRAME_BY_CLOSE),
                  Event("split", big), Event("closing", {"c": 1}, keep_alive=False), Event("after", {"d": 1})]
        run = self.run_node({"app.js": "exports.handler = async (event) => event;"}, events, split_writes=True)
        for event in events:
            self.assertEqual(run.post_for(event.request_id).json(), json.loads(event.body), event.request_id)
        self.assertNotEqual(run.api.served_from["closing"], run.api.served_from["after"])

    def test_request_id_that_would_break_the_request_line_is_fatal(self):
        run = self.run_node({"app.js": "exports.handler = async () => 1;"}, [Event("a b", {}), Event("never", {})])
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.api.posts, [])
        self.assertEqual(run.api.events.qsize(), 1)

    def test_refused_and_failed_posts(self):
        run = self.run_node({"app.js": "exports.handler = async () => 1;"},
                            [Event("refused", {}), Event("fine", {})], post_status={"refused": 400})
        self.assertIn("400", run.stderr)
        self.assertEqual(run.post_for("fine").json(), 1)
        run = self.run_node({"app.js": "exports.handler = async () => 1;"},
                            [Event("broken", {}), Event("never", {})], post_status={"broken": 500})
        self.assertEqual(run.returncode, 1)
        self.assertEqual([p.path for p in run.api.posts], [f"{API_PREFIX}/invocation/broken/response"])

    def test_start_up_loads_no_http_stack_nor_es_module_loading(self):
        # Everything loaded is paid for on each cold start: a CommonJS handler needs neither.
        check = r"process.moduleLoadList.filter((m) => /\b(_?http\w*|https|tls|internal\/modules\/esm\/translators)$/.test(m))"
        files = {"app.js": f"exports.handler = async () => {check};",
                 "esm.mjs": f"export const handler = async () => {check};"}
        # What Node.js itself loads to require() one CommonJS file, as loading any handler
        # does, is not the runtime's to avoid (Node.js 18 loads the ES module translators
        # then, 20 does not).
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "other.js").write_text("module.exports = 1;")
            script = Path(tmp) / "check.js"
            script.write_text(f"require('./other.js'); process.stdout.write(JSON.stringify({check}))")
            own = json.loads(subprocess.run([NODE, str(script)], capture_output=True, text=True,
                                            timeout=PROCESS_TIMEOUT_S).stdout)
        run = self.run_node(files, [Event("m", {})])
        self.assertEqual(sorted(set(run.post_for("m").json()) - set(own)), [])
        # The check sees what it looks for when it is there.
        run = self.run_node(files, [Event("m", {})], handler="esm.handler")
        self.assertEqual(run.post_for("m").json(), ["NativeModule internal/modules/esm/translators"])


class HeapFlagsTest(NodeRuntimeTestCase):
    # What V8's code cache check sees (its version and flags) and the heap limit, when the
    # handler module loads and when it is invoked.
    FILES = {"app.js": """
const v8 = require('v8');
const atLoad = v8.cachedDataVersionTag();
exports.handler = async () => ({
  atLoad, atInvoke: v8.cachedDataVersionTag(), heapLimit: v8.getHeapStatistics().heap_size_limit });
"""}
    HEAP_FLAGS = ["--max-old-space-size=90", "--max-semi-space-size=4"]

    def plain_node(self, args=(), env=None):
        """(code cache tag, heap limit) of a node started with `args` and `env`."""
        out = subprocess.run([NODE, *args, "-p", "const v8 = require('v8'); "
                              "JSON.stringify([v8.cachedDataVersionTag(), v8.getHeapStatistics().heap_size_limit])"],
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}, capture_output=True, text=True, check=True,
                             timeout=PROCESS_TIMEOUT_S).stdout
        return tuple(json.loads(out))

    def invoke(self, node_args=(), env=None):
        run = self.run_node(self.FILES, [Event("h", {})], node_args=node_args, env=env)
        return run.post_for("h").json()

    def test_node_code_cache_is_usable_while_the_function_loads_and_the_flags_are_back_after(self):
        # Node's built-in code cache matches a node without flags; the heap flags funcd
        # passes would have V8 refuse it for every module loaded at start.
        plain_tag, _ = self.plain_node()
        flagged_tag, flagged_limit = self.plain_node(self.HEAP_FLAGS)
        self.assertNotEqual(plain_tag, flagged_tag)
        answer = self.invoke(node_args=self.HEAP_FLAGS)
        self.assertEqual(answer["atLoad"], plain_tag)
        self.assertEqual(answer["atInvoke"], flagged_tag)
        # The heap keeps the limits the flags gave it.
        self.assertEqual(answer["heapLimit"], flagged_limit)

    def test_flags_from_node_options_with_underscores(self):
        options = {"NODE_OPTIONS": "--max_old_space_size=64"}
        plain_tag, _ = self.plain_node()
        flagged_tag, flagged_limit = self.plain_node(env=options)
        answer = self.invoke(env=options)
        self.assertEqual((answer["atLoad"], answer["atInvoke"], answer["heapLimit"]),
                         (plain_tag, flagged_tag, flagged_limit))

    def test_unsetting_them_warns_nothing_even_when_deprecations_throw(self):
        options = {"NODE_OPTIONS": "--pending-deprecation --throw-deprecation"}
        run = self.run_node(self.FILES, [Event("h", {})], node_args=self.HEAP_FLAGS, env=options)
        self.assertEqual(run.post_for("h").path, f"{API_PREFIX}/invocation/h/response")
        self.assertNotIn("Deprecation", run.stdout + run.stderr)

    def test_without_heap_flags_nothing_changes(self):
        plain_tag, plain_limit = self.plain_node()
        answer = self.invoke()
        self.assertEqual((answer["atLoad"], answer["atInvoke"], answer["heapLimit"]), (plain_tag, plain_tag, plain_limit))


def node_json_error(text):
    """What JSON.parse says of `text`, in the words of the node under test."""
    return subprocess.run([NODE, "-e", "try { JSON.parse(process.argv[1]) } catch (e) { process.stdout.write(e.message) }",
                           text], capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S).stdout


if __name__ == "__main__":
    unittest.main()
