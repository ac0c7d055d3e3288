"""funcd's Python runtime: runs one function's handler against the Lambda Runtime API.

bootstrap.py, which the daemon starts as `python3 -I -u bootstrap.py` in the function's
code root, imports this module and calls main(). Only the standard library is used, and
only the parts the loop needs, because every module imported here is paid for on each
cold start.
"""
import _socket as socket  # socket.py adds enum-typed constants and selectors, unneeded here
import os
import sys
import time

import funcd_json  # not json, whose regular expressions cost a third of a cold start

API_VERSION = "2018-06-01"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
# Names the descriptor of the runtime's own connection to funcd's Runtime API.
API_FD_VARIABLE = "FUNCD_RUNTIME_API_FD"
# Names where the function's layers are (/opt in the sandbox).
LAYERS_ROOT_VARIABLE = "FUNCD_LAYERS_ROOT"
# Names the runtime's telemetry descriptor, where records go framed (see LogSink).
TELEMETRY_FD_VARIABLE = "_LAMBDA_TELEMETRY_LOG_FD"
JSON_CONTENT_TYPE = "application/json"
# Lambda hands an empty invoke payload to handlers as an empty object.
EMPTY_EVENT = b"{}"

# Frames from these files are the runtime's own and would only hide the user's.
_RUNTIME_DIR = os.path.dirname(__file__)
_RUNTIME_FILES = frozenset(
    path
    for name in ("bootstrap.py", "funcd_template.py", "funcd_runtime.py", "funcd_json.py")
    for path in (os.path.join(_RUNTIME_DIR, name), os.path.abspath(os.path.join(_RUNTIME_DIR, name))))

RECV_BYTES = 64 * 1024
# Response heads from the Runtime API are a few hundred bytes; anything near this is broken.
MAX_HEAD_BYTES = 64 * 1024
# Far above Lambda's 6 MB payload limit, low enough to refuse a corrupt length.
MAX_BODY_BYTES = 64 * 1024 * 1024
# Statuses whose responses never carry a body, whatever their headers say.
BODILESS_STATUSES = (204, 304)
SWITCHING_PROTOCOLS = 101


class RuntimeFault(Exception):
    """An error the runtime reports under a `Runtime.*` type rather than a user class."""

    def __init__(self, error_type, message, exc=None):
        super().__init__(message)
        self.error_type = error_type
        self.exc = exc


# --- Runtime API client ---------------------------------------------------------------
# http.client would do, but importing it (email.*, urllib, ssl...) costs more than the
# rest of a cold start; the Runtime API needs only a small, well-behaved subset of HTTP/1.1.

class ProtocolError(Exception):
    """An answer that is not the HTTP this client speaks, or a request it cannot write safely."""


# What a broken or confused connection raises; either way a fresh connection may help.
TRANSPORT_ERRORS = (OSError, ProtocolError)


class Response:
    __slots__ = ("status", "headers", "will_close")

    def __init__(self, status, headers, will_close):
        self.status = status
        self.headers = headers  # lower-cased names
        self.will_close = will_close

    def getheader(self, name, default=None):
        return self.headers.get(name.lower(), default)


class RuntimeClient:
    def __init__(self, address):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise SystemExit(f"funcd runtime: bad AWS_LAMBDA_RUNTIME_API {address!r}")
        self._host = host.strip("[]")
        self._port = int(port)
        self._authority = address
        self._sock = self._inherited_connection()
        self._buf = bytearray()
        self._prefix = f"/{API_VERSION}/runtime"

    @staticmethod
    def _inherited_connection():
        """The connection to the Runtime API funcd starts the runtime with, if any: cheaper
        than TCP. Once the server closes it, the client goes on over TCP."""
        text = os.environ.pop(API_FD_VARIABLE, None)  # not the handler's business
        if text is None:
            return None
        if not text.isdigit() or int(text) < 3:
            log(f"ignoring {API_FD_VARIABLE}={text[:20]!r}")
            return None
        try:
            fd = int(text)
            os.set_inheritable(fd, False)  # nothing the handler starts gets it
            return socket.socket(fileno=fd)
        except OSError as e:
            log(f"cannot use {API_FD_VARIABLE}={text}: {e!r}")
            return None

    def _message(self, method, path, body=None, headers=None):
        target = self._prefix + path
        # A request id with a space or control character in it would forge the request line.
        if not (target.isascii() and target.isprintable()) or " " in target:
            raise ProtocolError(f"refusing to send {target!r}")
        head = [f"{method} {target} HTTP/1.1", f"Host: {self._authority}"]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        for name, value in (headers or {}).items():
            if not value.isprintable():
                # type() accepts any string as a class name, and a line break in an error
                # type would end the header early.
                value = "".join(c if c.isprintable() else "?" for c in value)
            head.append(f"{name}: {value}")
        # One write, so that with Nagle off the request leaves as few packets as it can.
        message = "\r\n".join(head).encode("latin-1", "replace") + b"\r\n\r\n"
        if body:
            message += body
        return message

    def _request(self, method, path, body=None, headers=None):
        message = self._message(method, path, body, headers)
        # A keep-alive connection the daemon closed while we were idle shows up only when
        # it is next used, so one fresh connection is tried before giving up.
        for attempt in (0, 1):
            try:
                if self._sock is None:
                    self._connect()
                self._sock.sendall(message)
                resp, data = self._read_response()
                if resp.will_close:
                    self._drop()
                return resp, data
            except TRANSPORT_ERRORS:
                self._drop()
                if attempt:
                    raise

    def _connect(self):
        # A bytes host keeps getaddrinfo from loading the IDNA codec for a name that is
        # plain ASCII anyway.
        error = None
        for family, kind, proto, _, address in socket.getaddrinfo(
                self._host.encode(), self._port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                # Requests are written whole, so waiting to coalesce them only adds latency.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # No timeout: `next` is held open for as long as there is no work.
                sock.connect(address)
            except OSError as e:
                sock.close()
                error = e
                continue
            self._sock = sock
            return
        raise error or OSError(f"no address for {self._host!r}")

    def _drop(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf.clear()

    def _fill(self):
        if not self._recv():
            raise ConnectionResetError("the Runtime API closed the connection")

    def _recv(self):
        data = self._sock.recv(RECV_BYTES)
        self._buf += data
        return len(data)

    def _read_line(self):
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                break
            if len(self._buf) > MAX_HEAD_BYTES:
                raise ProtocolError("response head too large")
            start = len(self._buf)
            self._fill()
        line = bytes(self._buf[:end]).rstrip(b"\r")
        del self._buf[:end + 1]
        return line.decode("latin-1")

    def _read_exact(self, size):
        if size > MAX_BODY_BYTES:
            raise ProtocolError(f"response body of {size} bytes is too large")
        buffered = min(size, len(self._buf))
        data = bytearray(size)
        data[:buffered] = self._buf[:buffered]
        del self._buf[:buffered]
        # Straight into place: a 6 MB event must not be copied chunk by chunk.
        view = memoryview(data)
        while buffered < size:
            n = self._sock.recv_into(view[buffered:])
            if not n:
                raise ConnectionResetError("the Runtime API closed the connection mid-body")
            buffered += n
        return bytes(data)

    def _read_head(self):
        while True:
            status_line = self._read_line()
            version, _, rest = status_line.partition(" ")
            code, _, _ = rest.partition(" ")
            if not version.startswith("HTTP/") or not code.isdigit() or len(code) != 3:
                raise ProtocolError(f"bad status line {status_line[:200]!r}")
            headers = {}
            last = None
            head_bytes = len(status_line)
            while True:
                line = self._read_line()
                if not line:
                    break
                head_bytes += len(line)
                if head_bytes > MAX_HEAD_BYTES:
                    raise ProtocolError("response head too large")
                if line[0] in " \t" and last is not None:
                    headers[last] += " " + line.strip()  # obsolete line folding
                    continue
                name, colon, value = line.partition(":")
                if not colon:
                    raise ProtocolError(f"bad header line {line[:200]!r}")
                last = name.strip().lower()
                value = value.strip()
                headers[last] = f"{headers[last]}, {value}" if last in headers else value
            status = int(code)
            # Interim answers (100 Continue and the like) precede the real one.
            if 100 <= status < 200 and status != SWITCHING_PROTOCOLS:
                continue
            return version, status, headers

    def _read_chunked(self):
        chunks = []
        total = 0
        while True:
            size_text = self._read_line().partition(";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text[:40]!r}") from None
            if size == 0:
                break
            total += size
            if total > MAX_BODY_BYTES:
                raise ProtocolError("chunked response body too large")
            chunks.append(self._read_exact(size))
            if self._read_line():
                raise ProtocolError("chunk not followed by a line break")
        while self._read_line():  # trailers, which nothing here needs
            pass
        return b"".join(chunks)

    def _read_to_close(self):
        while self._recv():
            if len(self._buf) > MAX_BODY_BYTES:
                raise ProtocolError("response body too large")
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def _read_response(self):
        version, status, headers = self._read_head()
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        # HTTP/1.0 closes after every response unless it offered to keep the connection.
        will_close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
        length = headers.get("content-length")
        if status in BODILESS_STATUSES or status == SWITCHING_PROTOCOLS:
            data = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            data = self._read_chunked()
        elif length is not None:
            # Repeated Content-Length headers were joined above; they must agree.
            values = {v.strip() for v in length.split(",")}
            size = values.pop() if len(values) == 1 else ""
            if not size.isdigit():
                raise ProtocolError(f"bad Content-Length {length[:40]!r}")
            data = self._read_exact(int(size))
        else:
            # No framing at all: the body runs until the server hangs up.
            data = self._read_to_close()
            will_close = True
        return Response(status, headers, will_close), data

    def next(self):
        try:
            resp, data = self._request("GET", "/invocation/next")
        except TRANSPORT_ERRORS as e:
            fatal(f"cannot reach the Runtime API: {e!r}")
        if resp.status != 200:
            fatal(f"invocation/next answered {resp.status}: {data[:200]!r}")
        return resp, data

    def post(self, path, payload, error_type=None):
        # The daemon attributes log lines to the request running when they arrive, so
        # everything the handler printed must be out before the invocation is closed.
        flush_std_streams()
        try:
            resp, data = self._request("POST", path, payload, self._post_headers(error_type))
        except TRANSPORT_ERRORS as e:
            fatal(f"cannot reach the Runtime API: {e!r}")
        self._check_post(path, resp, data)

    def answer_and_next(self, path, payload, error_type=None):
        """Posts an invocation's answer and asks for the next event in the same write (HTTP
        pipelining): funcd then sends its acknowledgement together with the next event, one
        round trip per invocation instead of two."""
        flush_std_streams()
        message = (self._message("POST", path, payload, self._post_headers(error_type)) +
                   self._message("GET", "/invocation/next"))
        for attempt in (0, 1):
            try:
                if self._sock is None:
                    self._connect()
                self._sock.sendall(message)
                resp, data = self._read_response()
                break
            except TRANSPORT_ERRORS as e:
                self._drop()
                if attempt:
                    fatal(f"cannot reach the Runtime API: {e!r}")
        self._check_post(path, resp, data)
        if not resp.will_close:
            try:
                resp, data = self._read_response()
            except TRANSPORT_ERRORS:
                pass  # asked again below, on a fresh connection
            else:
                if resp.status != 200:
                    fatal(f"invocation/next answered {resp.status}: {data[:200]!r}")
                if resp.will_close:
                    self._drop()
                return resp, data
        # The connection ended after the answer, so the pipelined `next` went unanswered.
        self._drop()
        return self.next()

    @staticmethod
    def _post_headers(error_type):
        headers = {"Content-Type": JSON_CONTENT_TYPE}
        if error_type is not None:
            headers[ERROR_TYPE_HEADER] = error_type
        return headers

    @staticmethod
    def _check_post(path, resp, data):
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


# --- Logging ----------------------------------------------------------------------------
# As Lambda's Python runtime logs. AWS_LAMBDA_LOG_FORMAT=JSON puts a handler on the root
# logger that writes each record as one JSON object ({"timestamp", "level", "message",
# "logger", "requestId"}, the exception's "errorType", "errorMessage", "stackTrace" and
# "location", and the record's `extra` fields) and sets the root level to
# AWS_LAMBDA_LOG_LEVEL (TRACE is DEBUG). Text leaves the logging module alone (it is not even
# imported). Either way, the runtime's own error reports and those records go to the
# telemetry descriptor when there is one, each a frame, so a traceback is one record.

# Frame types: form (2 JSON, 3 text) | level << 2, under the 0xA55A magic.
_FRAME_JSON = 0xA55A0002
_FRAME_TEXT = 0xA55A0003
_FRAME_LEVELS = {0: 0, 10: 2, 20: 3, 30: 4, 40: 5, 50: 6}  # logging's levels -> frame levels
_FRAME_ERROR_LEVEL = 5


class LogSink:
    """Where records go: framed to the telemetry descriptor, or as lines to stdout."""

    def __init__(self, fd=None):
        self.fd = fd

    @classmethod
    def from_environment(cls, env):
        text = env.pop(TELEMETRY_FD_VARIABLE, None)  # not the handler's business
        if text is None:
            return cls()
        if not text.isdigit():
            log(f"ignoring {TELEMETRY_FD_VARIABLE}={text[:20]!r}")
            return cls()
        return cls(int(text))

    def write(self, text, json_form, level):
        """One record; `level` a frame level (0 none ... 6 FATAL)."""
        if self.fd is not None:
            body = text.encode("utf-8", "backslashreplace")
            header = (((_FRAME_JSON if json_form else _FRAME_TEXT) | level << 2).to_bytes(4, "big") +
                      len(body).to_bytes(4, "big") + (time.time_ns() // 1000).to_bytes(8, "big", signed=True))
            try:
                data = memoryview(header + body)
                while data:
                    data = data[os.write(self.fd, data):]
                return
            except OSError as e:
                # Closed or replaced by the handler: stdout from here on, said once.
                self.fd = None
                log(f"the telemetry descriptor failed ({e}); logging to stdout")
        # One line: the record's own line breaks as carriage returns, as Lambda writes them.
        if text.endswith("\n"):
            text = text[:-1]
        sys.stdout.write(text.replace("\n", "\r") + "\n")


_log_sink = LogSink()
_json_logs = False
_current_request_id = None


def setup_logging(env):
    global _log_sink, _json_logs
    _log_sink = LogSink.from_environment(env)
    _json_logs = env.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    if not _json_logs:
        return
    import logging  # only for JSON logs: it costs milliseconds at every cold start

    level = env.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    level = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)
    root = logging.getLogger()
    root.addHandler(_make_json_handler(logging))
    if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        root.setLevel(level)


def _make_json_handler(logging):
    import json
    import traceback
    from datetime import datetime, timezone

    reserved = frozenset((
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
        "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
        "threadName", "processName", "process", "taskName", "aws_request_id"))
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    class JsonHandler(logging.Handler):
        def emit(self, record):
            try:
                level = min(50, max(0, record.levelno)) // 10 * 10
                exc = record.exc_info
                out = {
                    "timestamp": datetime.fromtimestamp(record.created, tz=timezone.utc)
                    .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "level": logging.getLevelName(level),
                    "message": record.getMessage(),
                    "logger": record.name,
                    "stackTrace": traceback.format_tb(exc[2]) if exc else None,
                    "errorType": exc[0].__name__ if exc else None,
                    "errorMessage": str(exc[1]) if exc else None,
                    "requestId": _current_request_id or "",
                    "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc else None,
                }
                out.update((k, v) for k, v in record.__dict__.items() if k not in reserved and k not in out)
                _log_sink.write(encode({k: v for k, v in out.items() if v is not None}), True,
                                _FRAME_LEVELS.get(level, 0))
            except Exception:
                self.handleError(record)

    return JsonHandler()


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
    return funcd_json.dumps(body).encode()


def log_error(error_type, message, trace):
    if _json_logs:
        # Lambda's record of an error: the error document with a time and a level.
        record = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "ERROR",
                  "errorMessage": message, "errorType": error_type, "requestId": _current_request_id or "",
                  "stackTrace": trace}
        _log_sink.write(funcd_json.dumps(record), True, _FRAME_ERROR_LEVEL)
        return
    text = f"[ERROR] {error_type}: {message}\n"
    if trace:
        text += "Traceback (most recent call last):\n" + "".join(trace)
    if _log_sink.fd is not None:
        _log_sink.write(text, False, _FRAME_ERROR_LEVEL)
    else:
        sys.stderr.write(text)


# --- Handler loading -------------------------------------------------------------------

def load_handler(spec):
    module_path, dot, name = spec.rpartition(".")
    segments = module_path.replace("/", ".").split(".")
    if not dot or not name.isidentifier() or not all(segments):
        raise RuntimeFault("Runtime.MalformedHandlerName",
                           f"Bad handler '{spec}': expected 'module.function'")
    try:
        # __import__ rather than importlib.import_module, which would be one more import
        # paid at start-up; it returns the top-level package, so look the module up.
        module_name = ".".join(segments)
        __import__(module_name)
        module = sys.modules[module_name]
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
        value = funcd_json.loads(text)
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

def invoke(handler, resp, body):
    """Runs one invocation; returns the request that answers it: (path, body, error type)."""
    request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    if not request_id:
        fatal("invocation/next answered without Lambda-Runtime-Aws-Request-Id")
    base = f"/invocation/{request_id}"
    global _current_request_id
    _current_request_id = request_id

    trace_id = resp.getheader("Lambda-Runtime-Trace-Id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        # A trace id left over from the previous invocation would mislabel this one.
        os.environ.pop("_X_AMZN_TRACE_ID", None)

    try:
        event = funcd_json.loads(body or EMPTY_EVENT)
    except ValueError as e:
        message = f"Unable to parse input as json: {e}"
        log_error("Runtime.UnmarshalError", message, [])
        return (base + "/error", error_body("Runtime.UnmarshalError", message, [], request_id),
                "Runtime.UnmarshalError")

    try:
        result = handler(event, make_context(resp, request_id))
    except Exception as e:
        error_type = type(e).__name__
        trace = stack_trace(e.__traceback__)
        log_error(error_type, str(e), trace)
        return base + "/error", error_body(error_type, str(e), trace, request_id), error_type

    try:
        # allow_nan=False: NaN and Infinity are not JSON and the caller could not parse them.
        payload = funcd_json.dumps(result, allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as e:
        message = f"Unable to marshal response: {e}"
        log_error("Runtime.MarshalError", message, [])
        return (base + "/error", error_body("Runtime.MarshalError", message, [], request_id),
                "Runtime.MarshalError")
    return base + "/response", payload, None


def layer_paths(root):
    """Lambda's search path for a Python function's layers, after the function's own code:
    python/lib/pythonX.Y/site-packages, then python/, under the layers' root."""
    if not root:
        return []
    python = root + "/python"
    return [f"{python}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages", python]


def main():
    client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API", ""))

    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    layers_root = os.environ.pop(LAYERS_ROOT_VARIABLE, "")  # not the handler's business
    setup_logging(os.environ)
    sys.path[0:0] = [task_root] + layer_paths(layers_root)

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

    resp, body = client.next()
    while True:
        resp, body = client.answer_and_next(*invoke(handler, resp, body))

