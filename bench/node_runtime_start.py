#!/usr/bin/env python3
"""What funcd's Node.js runtime adds to a cold start: `node runtime/nodejs/bootstrap.js` with a
noop CommonJS handler, from its spawn to its first `GET .../invocation/next` on the Runtime API
connection it inherits (as funcd starts it), against `node -e 0` from its spawn to its exit.
Rounds alternate the two, so a machine that gets busier or quieter moves both alike; the
figure is the median of the per-round differences. Both get the heap flags funcd starts a
128 MB function's worker with (src/pool/node_launch.cpp), unless told otherwise: they
change how Node itself starts (V8 refuses Node's built-in code cache under them).

    bench/node_runtime_start.py [--rounds 40] [--node /usr/bin/node] [--node-flags "..."]
"""
import argparse
import shlex
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

BOOTSTRAP = Path(__file__).resolve().parents[1] / "runtime" / "nodejs" / "bootstrap.js"
NEXT_REQUEST = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n"


# What funcd passes for memory_mb 128, the default (tests/unit/node_launch_test.cpp).
FUNCD_HEAP_FLAGS = "--max-old-space-size=90 --max-semi-space-size=4"


def node_e0(node, flags, env):
    start = time.perf_counter()
    subprocess.run([node, *flags, "-e", "0"], env=env, check=True)
    return time.perf_counter() - start


def bootstrap_to_first_next(node, flags, env, code):
    ours, theirs = socket.socketpair()
    start = time.perf_counter()
    proc = subprocess.Popen([node, *flags, str(BOOTSTRAP)], cwd=code, env=dict(env, FUNCD_RUNTIME_API_FD=str(theirs.fileno())),
                            pass_fds=[theirs.fileno()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    theirs.close()
    received = b""
    while b"\r\n\r\n" not in received:
        data = ours.recv(4096)
        if not data:
            raise SystemExit("the runtime hung up before asking for an event")
        received += data
    elapsed = time.perf_counter() - start
    if not received.startswith(NEXT_REQUEST):
        raise SystemExit(f"unexpected first request: {received[:200]!r}")
    ours.close()  # the runtime then falls back to TCP, finds nothing there and exits
    proc.wait()
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--node", default=shutil.which("node") or "/usr/bin/node")
    parser.add_argument("--node-flags", default=FUNCD_HEAP_FLAGS,
                        help='flags for both nodes (default "%s"; "" for none)' % FUNCD_HEAP_FLAGS)
    args = parser.parse_args()
    flags = shlex.split(args.node_flags)
    with tempfile.TemporaryDirectory(prefix="funcd-node-start-") as tmp:
        code = Path(tmp)
        (code / "app.js").write_text("exports.handler = async () => ({});\n")
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ":UTC", "_HANDLER": "app.handler",
               "LAMBDA_TASK_ROOT": str(code), "NODE_PATH": str(code),
               # Nothing listens there: only the inherited connection is used.
               "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}
        baseline, runtime = [], []
        for i in range(args.rounds):
            pair = [lambda: baseline.append(node_e0(args.node, flags, env)),
                    lambda: runtime.append(bootstrap_to_first_next(args.node, flags, env, code))]
            for measure in (pair if i % 2 else reversed(pair)):
                measure()
    ms = lambda seconds: f"{seconds * 1000:.1f} ms"
    shown = "".join(f + " " for f in flags)
    print(f"{args.rounds} rounds, p50: node {shown}-e 0 {ms(statistics.median(baseline))}, "
          f"bootstrap.js to its first next {ms(statistics.median(runtime))}, "
          f"difference {ms(statistics.median([r - b for b, r in zip(baseline, runtime)]))}")


if __name__ == "__main__":
    main()
