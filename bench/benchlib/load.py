"""Load generators: wrk for keep-alive latency and throughput, and a burst client that
really holds N requests in flight at once (one socket each, all sent before any answer is
read)."""
import json
import os
import selectors
import shutil
import socket
import subprocess
import threading
import time

from . import procs
from .services import BENCH_DIR, TOKEN

WRK_SCRIPT = os.path.join(BENCH_DIR, "invoke.lua")


class WrkError(RuntimeError):
    pass


def wrk(url, threads, connections, duration_s, token=TOKEN, raw_log=None, headers=None):
    """One wrk run; returns the BENCH_RESULT dict plus 'rps' and 'errors_total'. `headers`:
    more request headers (a dict)."""
    cmd = [shutil.which("wrk") or "wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration_s,
           "--timeout", "5s", "-s", WRK_SCRIPT, url]
    env = dict(os.environ, BENCH_TOKEN=token or "")
    if headers:
        env["BENCH_HEADERS"] = "\n".join("%s: %s" % kv for kv in headers.items())
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration_s + 30,
                             preexec_fn=procs.die_with_parent)
    except subprocess.TimeoutExpired:
        raise WrkError("wrk did not finish within %d s: %s" % (duration_s + 30, " ".join(cmd)))
    if raw_log:
        with open(raw_log, "a") as f:
            f.write("$ %s\n%s%s\n" % (" ".join(cmd), out.stdout, out.stderr))
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise WrkError("wrk failed (%d): %s %s" % (out.returncode, out.stdout[-500:], out.stderr[-500:]))
    r = json.loads(line[len("BENCH_RESULT "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
    r["errors_total"] = sum(r["errors"].values())
    r["cmd"] = " ".join(cmd[:-1] + ["URL"])
    return r


# ---------------------------------------------------------------------------------------
# Burst

class _Call:
    __slots__ = ("sock", "buf", "sent", "done", "status", "headers", "body", "error", "need")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.sent = self.done = None
        self.status = None
        self.headers = {}
        self.body = b""
        self.error = None
        self.need = None  # total bytes of the response once its head is parsed


def _parse_head(call):
    end = call.buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    lines = bytes(call.buf[:end]).decode("latin-1").split("\r\n")
    call.status = int(lines[0].split()[1])
    for line in lines[1:]:
        k, _, v = line.partition(":")
        call.headers[k.strip().lower()] = v.strip()
    if "chunked" in call.headers.get("transfer-encoding", ""):
        raise ValueError("chunked answer")
    call.need = end + 4 + int(call.headers.get("content-length", "0"))
    return True


def burst(port, path, n, token=TOKEN, timeout_s=120):
    """Opens n connections, then sends one POST on each as fast as possible and reads all
    answers. Times are from the first send. Returns a dict of results."""
    request = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" % (path, port, token)).encode()
    calls = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            calls.append(_Call(s))
        time.sleep(0.2)  # let the daemon accept them all before the clock starts
        sel = selectors.DefaultSelector()
        t0 = time.perf_counter()
        for c in calls:
            c.sock.sendall(request)  # small: fits the socket buffer at once
            c.sent = time.perf_counter()
            c.sock.setblocking(False)
            sel.register(c.sock, selectors.EVENT_READ, c)
        last_send = time.perf_counter()
        pending = n
        deadline = t0 + timeout_s
        while pending and time.perf_counter() < deadline:
            for key, _ in sel.select(timeout=0.5):
                c = key.data
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    data, c.error = b"", "recv: %s" % e
                if not data:
                    c.error = c.error or "connection closed before the answer was complete"
                else:
                    c.buf += data
                    try:
                        if c.need is None:
                            _parse_head(c)
                    except ValueError as e:
                        c.error = str(e)
                    if c.need is None or len(c.buf) < c.need:
                        if c.error is None:
                            continue
                if c.error is None:
                    c.body = bytes(c.buf[c.buf.find(b"\r\n\r\n") + 4:c.need])
                c.done = time.perf_counter()
                sel.unregister(c.sock)
                pending -= 1
        end = time.perf_counter()
        sel.close()
    finally:
        for c in calls:
            c.sock.close()

    ok = [c for c in calls if c.error is None and c.status == 200 and "x-funcd-function-error" not in c.headers]
    failed = [c for c in calls if c not in ok]
    finished = [c.done for c in calls if c.done is not None]
    latencies = sorted((c.done - c.sent) * 1000 for c in calls if c.done is not None and c.error is None)
    outcomes = {}
    for c in failed:
        if c.done is None:
            key = "no answer within %d s" % timeout_s
        elif c.error:
            key = c.error
        else:
            key = ("%s %s" % (c.status, c.headers.get("x-funcd-function-error", ""))).strip()
            try:
                key += " " + json.loads(c.body).get("error", {}).get("type", "")
            except (ValueError, AttributeError):
                pass
        outcomes[key] = outcomes.get(key, 0) + 1
    samples = [c.body[:300].decode("utf-8", "replace") for c in failed if c.body][:3]
    return {
        "n": n,
        "ok": len(ok),
        "errors": len(failed),
        "error_kinds": outcomes,
        "error_samples": samples,
        "all_answered_s": (max(finished) - t0) if len(finished) == n else None,
        "elapsed_s": end - t0,
        "send_spread_ms": (last_send - t0) * 1000,
        "cold": sum(1 for c in ok if "x-funcd-init-duration-ms" in c.headers),
        "latency_ms": {
            "p50": _pct(latencies, 50), "p99": _pct(latencies, 99), "max": latencies[-1] if latencies else None,
        },
    }


def _pct(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


class WorkerWatch:
    """Polls a function's instances through the API (and counts the daemon's worker
    processes in /proc every `proc_every` polls) in a thread, keeping the peaks."""

    def __init__(self, daemon, name, interval_s=0.01, proc_every=10):
        import http.client
        self.daemon, self.name = daemon, name
        self.interval_s, self.proc_every = interval_s, proc_every
        self.conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
        self.peak_api = self.peak_busy = self.peak_procs = 0
        self.polls = 0
        self.poll_errors = []
        self.samples = []  # (seconds since start, idle, busy, worker processes or None)
        self._last = (0, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        self.conn.close()

    def _run(self):
        self.t0 = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.conn.request("GET", "/v1/functions/" + self.name, headers={"Authorization": "Bearer " + TOKEN})
                r = self.conn.getresponse()
                body = r.read()
                if r.status == 200:
                    inst = json.loads(body)["instances"]
                    self._last = (inst["idle"], inst["busy"])
                    self.peak_api = max(self.peak_api, inst["idle"] + inst["busy"])
                    self.peak_busy = max(self.peak_busy, inst["busy"])
                elif len(self.poll_errors) < 5:
                    self.poll_errors.append("%d %s" % (r.status, body[:200]))
            except Exception as e:  # keep polling: the burst is what is measured
                self.conn.close()
                if len(self.poll_errors) < 5:
                    self.poll_errors.append(repr(e))
            self.polls += 1
            if self.polls % self.proc_every == 0:
                count = len(procs.children_of(self.daemon.pid))
                self.peak_procs = max(self.peak_procs, count)
                self.samples.append((time.perf_counter() - self.t0, self._last[0], self._last[1], count))
            self._stop.wait(self.interval_s)

    def timeline(self, marks=(0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30)):
        """The sample nearest after each mark (seconds), as (mark, idle, busy, processes)."""
        out = []
        for m in marks:
            s = next((x for x in self.samples if x[0] >= m), None)
            if s is None:
                break
            out.append((m,) + s[1:])
        return out
