#!/usr/bin/env python3
"""Cold starts of a noop through two daemons that differ only in their runtime directory
(`funcd serve --runtime-dir`): what a change to runtime/ does to a cold start through the
daemon and the sandbox. Each round deploys a fresh noop to each daemon and invokes it once,
the two in alternating order, after one `node -e 0` (for nodejs) with the heap flags of the
worker, so that a machine that gets busier or quieter moves all three alike. Besides the
latencies it reads the CPU time the worker's runtime process used up to its first answer
(/proc/PID/task/*/schedstat, right after the answer), which a loaded machine distorts far
less than wall time.

    bench/runtime_ab.py --before DIR --after DIR [--runtime nodejs] [--pairs 40] [--sandbox on]

e.g. `git archive main runtime | tar -x -C /tmp/main` and `--before /tmp/main/runtime
--after runtime`. Needs build/release (bench/run builds it) and root for the sandbox.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import procs, sections  # noqa: E402
from benchlib.services import NODE, Daemon  # noqa: E402

# The runtime process of a worker, by the first word of its command line.
RUNTIME_PROGRAMS = {"nodejs": b"node", "python3": b"python3", "provided": b"bootstrap"}


def process_cpu_ms(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that just ended
    return total / 1e6


class Side:
    def __init__(self, label, runtime_dir, runtime, sandbox):
        self.label = label
        self.runtime = runtime
        self.daemon = Daemon(label, "--sandbox", sandbox, "--runtime-dir", runtime_dir, *sections.UNTHROTTLED).start()
        self.seen = set()
        self.latency, self.cpu = [], []

    def new_runtime_cpu_ms(self):
        """CPU time of the runtime process of the one worker not seen before."""
        program = RUNTIME_PROGRAMS[self.runtime]
        for child, tree in self.daemon.workers().items():
            if child in self.seen:
                continue
            self.seen.add(child)
            for pid in tree:
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        argv0 = f.read().split(b"\0")[0]
                except OSError:
                    continue
                if os.path.basename(argv0).startswith(program):
                    return process_cpu_ms(pid)
        return None

    def cold_start(self, name):
        self.daemon.deploy_noop(name, self.runtime)
        start = time.perf_counter()
        status, headers, body = self.daemon.invoke(name)
        elapsed = (time.perf_counter() - start) * 1000
        if status != 200 or "x-funcd-function-error" in headers or "x-funcd-init-duration-ms" not in headers:
            raise SystemExit("%s: %s was not a successful cold start: %d %s" % (self.label, name, status, body[:200]))
        self.latency.append(elapsed)
        self.cpu.append(self.new_runtime_cpu_ms())


def node_e0(flags):
    start = time.perf_counter()
    proc = subprocess.Popen([NODE, *flags, "-e", "0"], env={"PATH": "/usr/bin:/bin"})
    _, _, usage = os.wait4(proc.pid, 0)
    return (time.perf_counter() - start) * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def paired(a, b):
    pairs = [x - y for x, y in zip(a, b) if x is not None and y is not None]
    return statistics.median(pairs) if pairs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="runtime directory A")
    ap.add_argument("--after", required=True, help="runtime directory B")
    ap.add_argument("--runtime", default="nodejs", choices=sorted(RUNTIME_PROGRAMS))
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--sandbox", default="on", choices=("on", "off"))
    args = ap.parse_args()
    procs.install_cleanup()
    load_start = procs.loadavg()
    sides = []
    try:
        sides = [Side("before", os.path.abspath(args.before), args.runtime, args.sandbox),
                 Side("after", os.path.abspath(args.after), args.runtime, args.sandbox)]
        # One warm-up each (page cache, the daemons' first deploy); and the worker's flags.
        for side in sides:
            side.cold_start("warm-up")
        flags = sections._node_flags(sides[1].daemon) if args.runtime == "nodejs" else None
        for side in sides:
            side.latency.clear()
            side.cpu.clear()
        e0_wall, e0_cpu = [], []
        for i in range(args.pairs):
            if flags is not None:
                wall, cpu = node_e0(flags)
                e0_wall.append(wall)
                e0_cpu.append(cpu)
            for side in (sides if i % 2 else sides[::-1]):
                side.cold_start("ab-%d" % i)
    finally:
        for side in sides:
            side.daemon.stop()
    print("%d pairs, %s, sandbox %s; load average %s at the start, %s at the end"
          % (args.pairs, args.runtime, args.sandbox, load_start, procs.loadavg()))
    if flags is not None:
        print("node %s-e 0: p50 %.2f ms, CPU p50 %.2f ms" % ("".join(f + " " for f in flags),
                                                            statistics.median(e0_wall), statistics.median(e0_cpu)))
    for side in sides:
        cpu = [c for c in side.cpu if c is not None]
        line = "%-6s cold start p50 %.2f ms, runtime CPU p50 %.2f ms" % (
            side.label, statistics.median(side.latency), statistics.median(cpu) if cpu else float("nan"))
        if flags is not None:
            line += "; over node -e 0 (paired p50): %+.2f ms, CPU %+.2f ms" % (
                paired(side.latency, e0_wall), paired(side.cpu, e0_cpu))
        print(line)
    print("after - before (paired p50): %+.2f ms, runtime CPU %+.2f ms"
          % (paired(sides[1].latency, sides[0].latency), paired(sides[1].cpu, sides[0].cpu)))


if __name__ == "__main__":
    main()
