"""funcd's Python runtime: runs one function's handler against the Lambda Runtime API.

Started by the daemon as `python3 -I -u bootstrap.py` in the function's code root.
Only the standard library is used, and only the parts the loop needs, because every
module imported here is paid for on each cold start.
"""
import importlib
import json
import os
import sys
import time


def _import_private_http_client():
    # http.client imports ssl only to offer HTTPSConnection, which the loopback Runtime
    # API never needs, and ssl is a large share of start-up time. Import a copy with ssl
    # hidden, then unregister it, so user code that imports http.client gets a complete
    # module of its own (with HTTPS) rather than this one.
    if "http.client" in sys.modules or "ssl" in sys.modules:
        import http.client
        return http.client
    sys.modules["ssl"] = None
    try:
        import http.client as module
    finally:
        del sys.modules["ssl"]
    del sys.modules["http.client"]
    delattr(sys.modules["http"], "client")
    return module


_http = _import_private_http_client()

API_VERSION = "2018-06-01"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
JSON_HEADERS = {"Content-Type": "application/json"}
# Lambda hands an empty invoke payload to handlers as an empty object.
EMPTY_EVENT = b"{}"

# Frames from these files are the runtime's own and would only hide the user's.
_RUNTIME_FILES = (__file__, os.path.abspath(__file__), importlib.__file__)


class RuntimeFault(Exception):
    """An error the runtime reports under a `Runtime.*` type rather than a user class."""

    def __init__(self, error_type, message, exc=None):
        super().__init__(message)
        self.error_type = error_type
        self.exc = exc


# --- Runtime API client ---------------------------------------------------------------

class RuntimeClient:
    def __init__(self, address):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise SystemExit(f"funcd runtime: bad AWS_LAMBDA_RUNTIME_API {address!r}")
        self._host = host.strip("[]")
        self._port = int(port)
        self._conn = None
        self._prefix = f"/{API_VERSION}/runtime"

    def _request(self, method, path, body=None, headers=None):
        # A keep-alive connection the daemon closed while we were idle shows up only when
        # it is next used, so one fresh connection is tried before giving up.
        for attempt in (0, 1):
            if self._conn is None:
                # No timeout: `next` is held open for as long as there is no work.
                self._conn = _http.HTTPConnection(self._host, self._port)
            try:
                self._conn.request(method, self._prefix + path, body=body,
                                   headers=headers or {})
                resp = self._conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self._drop()
                return resp, data
            except (OSError, _http.HTTPException):
                self._drop()
                if attempt:
                    raise

    def _drop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def next(self):
        try:
            resp, data = self._request("GET", "/invocation/next")
        except (OSError, _http.HTTPException) as e:
            fatal(f"cannot reach the Runtime API: {e!r}")
        if resp.status != 200:
            fatal(f"invocation/next answered {resp.status}: {data[:200]!r}")
        return resp, data

    def post(self, path, payload, error_type=None):
        headers = JSON_HEADERS
        if error_type is not None:
            headers = dict(JSON_HEADERS)
            headers[ERROR_TYPE_HEADER] = error_type
        # The daemon attributes log lines to the request running when they arrive, so
        # everything the handler printed must be out before the invocation is closed.
        flush_std_streams()
        try:
            resp, data = self._request("POST", path, payload, headers)
        except (OSError, _http.HTTPException) as e:
            fatal(f"cannot reach the Runtime API: {e!r}")
        if resp.status >= 500:
            fatal(f"POST {path} answered {resp.status}: {data[:200]!r}")
        if resp.status >= 400:
            log(f"POST {path} answered {resp.status}: {data[:200]!r}")


def flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # user code may have replaced or closed a stream
            pass


def log(message):
    print(f"funcd runtime: {message}", file=sys.__stderr__, flush=True)


def fatal(message):
    log(message)
    flush_std_streams()
    sys.exit(1)


# --- Errors -----------------------------------------------------------------------------

def stack_trace(tb):
    """Frames of user code formatted the way Lambda reports them, runtime frames left out."""
    import traceback  # only needed once something has failed

    lines = []
    for frame in traceback.extract_tb(tb):
        if frame.filename in _RUNTIME_FILES or frame.filename.startswith("<frozen importlib"):
            continue
        entry = f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
        if frame.line:
            entry += f"    {frame.line}\n"
        lines.append(entry)
    return lines


def syntax_error_trace(e):
    # A SyntaxError is raised before any frame of the module runs, so the traceback
    # holds only import machinery; the useful location is on the exception itself.
    if not isinstance(e, SyntaxError) or not e.filename:
        return []
    entry = f'  File "{e.filename}" Line {e.lineno}\n'
    if e.text:
        entry += f"    {e.text.strip()}\n"
    return [entry]


def error_body(error_type, message, trace, request_id=None):
    body = {"errorMessage": message, "errorType": error_type}
    if request_id is not None:
        body["requestId"] = request_id
    body["stackTrace"] = trace
    return json.dumps(body).encode()


def log_error(error_type, message, trace):
    text = f"[ERROR] {error_type}: {message}\n"
    if trace:
        text += "Traceback (most recent call last):\n" + "".join(trace)
    sys.stderr.write(text)


# --- Handler loading -------------------------------------------------------------------

def load_handler(spec):
    module_path, dot, name = spec.rpartition(".")
    segments = module_path.replace("/", ".").split(".")
    if not dot or not name.isidentifier() or not all(segments):
        raise RuntimeFault("Runtime.MalformedHandlerName",
                           f"Bad handler '{spec}': expected 'module.function'")
    try:
        module = importlib.import_module(".".join(segments))
    except (Exception, SystemExit) as e:
        raise RuntimeFault("Runtime.ImportModuleError",
                           f"Unable to import module '{module_path}': {e}", e) from e
    handler = getattr(module, name, None)
    if not callable(handler):
        raise RuntimeFault("Runtime.HandlerNotFound",
                           f"Handler '{name}' missing on module '{module_path}'")
    return handler


# --- Context ----------------------------------------------------------------------------

class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data):
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code",
                 "app_package_name")

    def __init__(self, data):
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, data):
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")


class LambdaContext:
    def __init__(self, request_id, deadline_ms, function_arn, client_context, identity):
        env = os.environ
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = _int_or_none(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.client_context = client_context
        self.identity = identity
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message):
        sys.stdout.write(str(message))

    def __repr__(self):
        return (f"LambdaContext(aws_request_id={self.aws_request_id!r}, "
                f"function_name={self.function_name!r}, "
                f"function_version={self.function_version!r})")


def _int_or_none(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _json_header(resp, name):
    text = resp.getheader(name)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def make_context(resp, request_id):
    client_context = _json_header(resp, "Lambda-Runtime-Client-Context")
    identity = _json_header(resp, "Lambda-Runtime-Cognito-Identity") or {}
    return LambdaContext(
        request_id,
        _int_or_none(resp.getheader("Lambda-Runtime-Deadline-Ms")) or 0,
        resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
        ClientContext(client_context) if client_context is not None else None,
        CognitoIdentity(identity),
    )


# --- Main loop --------------------------------------------------------------------------

def invoke(client, handler, resp, body):
    request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    if not request_id:
        fatal("invocation/next answered without Lambda-Runtime-Aws-Request-Id")
    base = f"/invocation/{request_id}"

    trace_id = resp.getheader("Lambda-Runtime-Trace-Id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        # A trace id left over from the previous invocation would mislabel this one.
        os.environ.pop("_X_AMZN_TRACE_ID", None)

    try:
        event = json.loads(body or EMPTY_EVENT)
    except ValueError as e:
        message = f"Unable to parse input as json: {e}"
        log_error("Runtime.UnmarshalError", message, [])
        client.post(base + "/error",
                    error_body("Runtime.UnmarshalError", message, [], request_id),
                    "Runtime.UnmarshalError")
        return

    try:
        result = handler(event, make_context(resp, request_id))
    except Exception as e:
        error_type = type(e).__name__
        trace = stack_trace(e.__traceback__)
        log_error(error_type, str(e), trace)
        client.post(base + "/error", error_body(error_type, str(e), trace, request_id),
                    error_type)
        return

    try:
        # allow_nan=False: NaN and Infinity are not JSON and the caller could not parse them.
        payload = json.dumps(result, allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as e:
        message = f"Unable to marshal response: {e}"
        log_error("Runtime.MarshalError", message, [])
        client.post(base + "/error",
                    error_body("Runtime.MarshalError", message, [], request_id),
                    "Runtime.MarshalError")
        return
    client.post(base + "/response", payload)


def main():
    client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API", ""))

    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    sys.path.insert(0, task_root)

    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except RuntimeFault as fault:
        trace = []
        if fault.exc is not None:
            trace = stack_trace(fault.exc.__traceback__) + syntax_error_trace(fault.exc)
        message = str(fault)
        log_error(fault.error_type, message, trace)
        client.post("/init/error", error_body(fault.error_type, message, trace),
                    fault.error_type)
        sys.exit(1)

    while True:
        resp, body = client.next()
        invoke(client, handler, resp, body)


if __name__ == "__main__":
    main()
