"""The benchmark sections. Each measures its figures and their baselines in the same run,
adds rows to the table and lines to its details, and stops everything it started."""
import json
import os
import socket
import statistics
import subprocess
import time

from . import load, procs, services, sigv4
from .report import Row, mb, ms, ratio, rps, us
from .services import NODE, PYTHON_BOOTSTRAP, PYTHON_NOOP, Daemon, Nginx, StartError

# A burst or 200 idle workers must not be held back by the daemon's admission limits: the
# memory budget charges a new worker its runtime's starting estimate (and memory_mb, 128,
# per worker where the workers' memory cannot be fenced), and the figures measured here are
# the launch path's, not admission's.
UNTHROTTLED = ("--memory-budget-mb", "100000", "--max-concurrency", "1000")


class Context:
    def __init__(self, args, out_dir, log):
        self.args = args
        self.out_dir = out_dir
        self.log = log  # progress lines, to stderr
        self.rows = []
        self.details = {}
        self.failures = []

    def row(self, *a, **kw):
        self.rows.append(Row(*a, **kw))

    def note(self, section, line):
        self.details.setdefault(section, []).append(line)

    def daemon(self, label, *args):
        return Daemon(label, *args, log_dir=self.out_dir).start()

    def wrk_log(self):
        return os.path.join(self.out_dir, "wrk.txt")


def _check_invoke(d, name):
    status, headers, body = d.invoke(name)
    if status != 200 or "x-funcd-function-error" in headers:
        raise RuntimeError("invoke %s: %d %s %s" % (name, status, headers.get("x-funcd-function-error", ""),
                                                   body[:300]))


def _warm_up(d, name, threads, conns):
    """Runs wrk until the function has a worker per connection (at most 4 rounds), so the
    measured run has no cold starts. Returns (idle, busy) afterwards."""
    url = d.url("/v1/functions/%s/invoke" % name)
    for seconds in (2, 3, 3, 5):
        load.wrk(url, threads, conns, seconds)
        # Invocations the warm-up left in flight (waiting for a cold start) finish first.
        deadline = time.monotonic() + 15
        idle_n, busy_n = d.instances(name)
        while busy_n and time.monotonic() < deadline:
            time.sleep(0.1)
            idle_n, busy_n = d.instances(name)
        if idle_n >= conns:
            break
    return idle_n, busy_n


def _wrk_errors(r):
    return ", ".join("%s %d" % (k, v) for k, v in r["errors"].items() if v) or "none"


# ---------------------------------------------------------------------------------------
# 1-3. Warm invoke: latency on one keep-alive connection, throughput on 64.

WARM_SHAPES = (("c1", 1, 1), ("c64", 2, 64))
# Warm functions: runtime label -> (runtime, extra deploy settings). "provided-tcp" is the
# same noop told to ignore the connection funcd starts it with (FUNCD_RUNTIME_API_FD) and
# use TCP, as any other Lambda runtime client does.
WARM_FUNCTIONS = (("provided", "provided", {}), ("provided-tcp", "provided", {"env": {"NOOP_TCP": "1"}}),
                  ("python3", "python3", {}), ("nodejs", "nodejs", {}))
# funcd's Node.js runtime against its Python one on the warm path (p50, 1 connection).
NODE_WARM_TARGET = 1.3


def warm(ctx):
    s = "warm"
    dur = ctx.args.duration
    nginx = Nginx(log_dir=ctx.out_dir).start()
    d = ctx.daemon("warm", "--sandbox", "on")
    try:
        for label, runtime, settings in WARM_FUNCTIONS:
            d.deploy_noop("warm-" + label, runtime, **settings)
            _check_invoke(d, "warm-" + label)
        res, warmed, after = {}, {}, {}
        for shape, threads, conns in WARM_SHAPES:
            ctx.log("warm %s: nginx" % shape)
            load.wrk(nginx.url(), threads, conns, 1)  # warm-up
            res[("nginx", shape)] = load.wrk(nginx.url(), threads, conns, dur, raw_log=ctx.wrk_log())
            for runtime, _, _ in WARM_FUNCTIONS:
                ctx.log("warm %s: funcd %s" % (shape, runtime))
                url = d.url("/v1/functions/warm-%s/invoke" % runtime)
                # Warm-up: starts the workers the connections need (one per connection).
                warmed[(runtime, shape)] = _warm_up(d, "warm-" + runtime, threads, conns)
                res[(runtime, shape)] = load.wrk(url, threads, conns, dur, raw_log=ctx.wrk_log())
                # Invocations still in flight when wrk stopped are let finish before counting.
                deadline = time.monotonic() + 10
                while d.instances("warm-" + runtime)[1] and time.monotonic() < deadline:
                    time.sleep(0.1)
                after[(runtime, shape)] = d.instances("warm-" + runtime)
    finally:
        d.stop()
        nginx.stop()

    ng1, ng64 = res[("nginx", "c1")], res[("nginx", "c64")]
    for runtime, _, _ in WARM_FUNCTIONS:
        r1, r64 = res[(runtime, "c1")], res[(runtime, "c64")]
        lat, nlat = r1["latency_us"], ng1["latency_us"]
        p = runtime == "provided"  # the targets are set for the native noop
        ctx.row(s, "warm p50, %s noop, 1 conn" % runtime, us(lat["p50"]), "nginx " + us(nlat["p50"]),
                ratio(lat["p50"], nlat["p50"]), "<= 2.5x nginx" if p else "-",
                (lat["p50"] <= 2.5 * nlat["p50"]) if p else None)
        ctx.row(s, "warm p99, %s noop, 1 conn" % runtime, us(lat["p99"]), "nginx " + us(nlat["p99"]),
                ratio(lat["p99"], nlat["p99"]), "<= 1 ms" if p else "-", (lat["p99"] <= 1000) if p else None)
        ctx.row(s, "warm p99.9, %s noop, 1 conn" % runtime, us(lat["p999"]), "nginx " + us(nlat["p999"]),
                ratio(lat["p999"], nlat["p999"]))
        ctx.row(s, "warm throughput, %s noop, 64 conns" % runtime, rps(r64["rps"]), "nginx " + rps(ng64["rps"]),
                ratio(r64["rps"], ng64["rps"]), ">= 0.25x nginx" if p else "-",
                (r64["rps"] >= 0.25 * ng64["rps"]) if p else None)
    node, py = res[("nodejs", "c1")]["latency_us"]["p50"], res[("python3", "c1")]["latency_us"]["p50"]
    ctx.row(s, "warm p50, nodejs noop against python3 noop, 1 conn", us(node), "python3 " + us(py), ratio(node, py),
            "<= %gx python3" % NODE_WARM_TARGET, node <= NODE_WARM_TARGET * py)
    ctx.note(s, "wrk %d s per run after a warm-up run; `%s` and `%s`, script `bench/invoke.lua` "
                "(POST `{}` with the token; nginx gets the same requests)."
             % (dur, res[("nginx", "c1")]["cmd"], res[("nginx", "c64")]["cmd"]))
    ctx.note(s, "")
    ctx.note(s, "| run | req/s | p50 | p90 | p99 | p99.9 | max | wrk errors |")
    ctx.note(s, "|---|---|---|---|---|---|---|---|")
    for who in ("nginx",) + tuple(label for label, _, _ in WARM_FUNCTIONS):
        for shape, _, _ in WARM_SHAPES:
            r = res[(who, shape)]
            l = r["latency_us"]
            ctx.note(s, "| %s %s | %s | %s | %s | %s | %s | %s | %s |" % (
                who, shape, rps(r["rps"]), us(l["p50"]), us(l["p90"]), us(l["p99"]), us(l["p999"]), us(l["max"]),
                _wrk_errors(r)))
            if who != "nginx" and r["errors_total"]:
                ctx.failures.append("warm %s %s: wrk counted errors: %s" % (who, shape, _wrk_errors(r)))
    ctx.note(s, "")
    ctx.note(s, "Workers (API idle/busy) after the warm-up and after the measured run: " + "; ".join(
        "%s %s %d/%d then %d/%d" % (rt, shape, *warmed[(rt, shape)], *after[(rt, shape)])
        for rt, _, _ in WARM_FUNCTIONS for shape, _, _ in WARM_SHAPES) +
        ". A run on N connections needs N workers; more afterwards means some invocations cold-started "
        "during the measured run, fewer means workers were lost.")


# ---------------------------------------------------------------------------------------
# 4. Cold start: request in -> response out at the client, against spawn+exec.

def _spawn_floor(runs, argv, env):
    out = subprocess.run([services.SPAWN_FLOOR, str(runs), *argv], capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("spawn-floor %s: %s" % (argv[0], out.stderr[-300:]))
    return json.loads(out.stdout)


def _python_floor(runs):
    """spawn+exec of the python runtime's bootstrap, loading the noop handler, up to its
    first request to a Runtime API that refuses the connection (then it exits)."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="funcd-bench-py-") as task:
        with open(os.path.join(task, "app.py"), "wb") as f:
            f.write(PYTHON_NOOP)
        env = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1", "_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": task,
               "PATH": "/usr/bin:/bin"}
        out = subprocess.run([services.SPAWN_FLOOR, str(runs), "/usr/bin/python3", "-I", "-u", PYTHON_BOOTSTRAP],
                             capture_output=True, text=True, env=env, timeout=600)
        if out.returncode != 0:
            raise RuntimeError("spawn-floor python3: %s" % out.stderr[-300:])
        return json.loads(out.stdout)


def _cold_starts(d, runtime, n):
    latencies, inits = [], []
    for i in range(n):
        name = "cold-%s-%d" % (runtime, i)
        d.deploy_noop(name, runtime)
        start = time.perf_counter()
        status, headers, text = d.invoke(name)
        latencies.append((time.perf_counter() - start) * 1000)
        if status != 200 or "x-funcd-function-error" in headers:
            raise RuntimeError("cold invoke %s: %d %s" % (name, status, text[:300]))
        if "x-funcd-init-duration-ms" not in headers:
            raise RuntimeError("invoke %s was not a cold start" % name)
        inits.append(float(headers["x-funcd-init-duration-ms"]))
    return latencies, inits


def _pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def _node_flags(d):
    """The flags between `node` and bootstrap.js in the command line funcd starts a nodejs
    noop's worker with (the heap limits it derives from memory_mb), read from the live
    worker's /proc/PID/cmdline."""
    name = "cold-nodejs-flags"
    d.deploy_noop(name, "nodejs")
    _check_invoke(d, name)
    for tree in d.workers().values():
        for pid in tree:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
            except OSError:
                continue
            if len(argv) < 2 or not os.path.basename(argv[0]).startswith("node"):
                continue
            # The worker's sandbox init carries the same words after its own.
            if argv[-1].endswith("/nodejs/bootstrap.js"):
                return argv[1:-1]
            # Forked from a runtime template: the template's command line, its script after
            # the worker's flags and V8's --single-threaded.
            scripts = [i for i, a in enumerate(argv) if a.endswith("/nodejs/template.js")]
            if scripts:
                return [a for a in argv[1:scripts[0]] if a != "--single-threaded"]
    raise RuntimeError("no nodejs worker under the daemon to read its command line from")


def _node_floor(n, flags):
    # Node's own start as funcd runs it (with the same heap flags), which every Node.js cold
    # start pays before the runtime's first line.
    return _spawn_floor(n, [NODE, *flags, "-e", "0"], {"PATH": "/usr/bin:/bin"})


def _heap_flags_cost(n, flags, chunks=5):
    """What the heap flags cost node's own start (details only): `node -e 0` with and
    without them in alternating chunks, so that the machine's drift moves both alike.
    Medians of the chunks' p50s: (without, with)."""
    per = max(1, n // chunks)
    without, with_flags = [], []
    for _ in range(chunks):
        without.append(_node_floor(per, [])["p50_ms"])
        with_flags.append(_node_floor(per, flags)["p50_ms"])
    return statistics.median(without), statistics.median(with_flags)


def _floor(runtime, n, node_flags):
    if runtime == "provided":
        return _spawn_floor(n, [services.NOOP_BOOTSTRAP], {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"})
    if runtime == "nodejs":
        return _node_floor(n, node_flags)
    return _python_floor(n)


# What the image-resize example imports: the modules its functions preload in the rows
# "Pillow preloaded" (a template of their own, shared by every copy).
IMAGE_RESIZE_PRELOAD = ["PIL.Image", "PIL.ImageOps"]


def _image_resize_cold_starts(ctx, n):
    """Cold starts of examples/image-resize (an empty event: it imports Pillow, resizes
    nothing), its Pillow preloaded into the template or not; None without Pillow."""
    if subprocess.run(["/usr/bin/python3", "-I", "-c", "import PIL.Image"], capture_output=True).returncode != 0:
        ctx.note("cold", "The image-resize rows need Pillow (Debian's python3-pil): not installed, left out.")
        return None
    with open(os.path.join(services.ROOT, "examples", "image-resize", "lambda_function.py"), "rb") as f:
        code = services.zip_of({"lambda_function.py": (f.read(), 0o644)})
    d = ctx.daemon("cold-preload", "--preload-modules", ",".join(IMAGE_RESIZE_PRELOAD), *UNTHROTTLED)
    out = {}
    try:
        # The preloading template starts with the first function that names it: not measured.
        d.deploy("resize-warmup", "python3", code, "lambda_function.lambda_handler", preload=IMAGE_RESIZE_PRELOAD)
        d.invoke("resize-warmup", b'{"Records": []}')
        for label, settings in (("preload", {"preload": IMAGE_RESIZE_PRELOAD}), ("plain", {})):
            ctx.log("cold: image-resize, %s, %d cold starts" % (label, n))
            latencies, inits = [], []
            for i in range(n):
                name = "resize-%s-%d" % (label, i)
                d.deploy(name, "python3", code, "lambda_function.lambda_handler", **settings)
                start = time.perf_counter()
                status, headers, text = d.invoke(name, b'{"Records": []}')
                latencies.append((time.perf_counter() - start) * 1000)
                if status != 200 or "x-funcd-function-error" in headers:
                    raise RuntimeError("image-resize %s: %d %s" % (name, status, text[:300]))
                inits.append(float(headers["x-funcd-init-duration-ms"]))
            out[label] = (statistics.median(latencies), _pct(latencies, 99), statistics.median(inits))
    finally:
        d.stop()
    return out


COLD_RUNTIMES = ("provided", "python3", "nodejs")
# The runtimes whose workers are forked from runtime templates.
TEMPLATE_RUNTIMES = ("python3", "nodejs")
# A Python cold start forked from a runtime template, sandbox on, p50: a native function's
# cost (the design brief's target for Python with templates).
PYTHON_TEMPLATE_TARGET_MS = 5.0
# What funcd's Node.js runtime may add to node's own start (`node -e 0`), p50, sandbox on,
# started plainly: the target the runtime was built to (docs/runtimes.md, "Cold start").
NODE_COLD_OVERHEAD_MS = 10.0
# A Node.js cold start forked from a runtime template, sandbox on, p50 (the design brief's
# target for Node.js with templates).
NODE_TEMPLATE_TARGET_MS = 10.0
# How the nodejs rows name their baseline: node -e 0 with the worker's heap flags.
NODE_BASELINE = "node -e 0 (heap flags) "


def cold(ctx):
    s = "cold"
    n = ctx.args.cold
    res, floors, bare_node = {}, {}, {}
    node_flags = None
    for mode in ("on", "off"):
        d = ctx.daemon("cold-sandbox-" + mode, "--sandbox", mode, *UNTHROTTLED)
        try:
            if node_flags is None:
                node_flags = _node_flags(d)
            for runtime in COLD_RUNTIMES:
                # The floor right before its row: the machine's load drifts.
                ctx.log("cold: %s, sandbox %s, %d spawn+execs then %d cold starts" % (runtime, mode, n, n))
                if runtime == "nodejs" and node_flags:
                    bare_node[mode] = _heap_flags_cost(n, node_flags)
                floors[(runtime, mode)] = _floor(runtime, n, node_flags)
                lat, inits = _cold_starts(d, runtime, n)
                res[(runtime, mode)] = (statistics.median(lat), _pct(lat, 99), statistics.median(inits))
        finally:
            d.stop()
    # Workers forked from a runtime template (the default) against started ones.
    d = ctx.daemon("cold-templates-off", "--runtime-templates", "off", *UNTHROTTLED)
    try:
        for runtime in TEMPLATE_RUNTIMES:
            ctx.log("cold: %s, sandbox on, runtime templates off, %d cold starts" % (runtime, n))
            floors[(runtime, "plain")] = _floor(runtime, n, node_flags)
            lat, inits = _cold_starts(d, runtime, n)
            res[(runtime, "plain")] = (statistics.median(lat), _pct(lat, 99), statistics.median(inits))
    finally:
        d.stop()
    preload = _image_resize_cold_starts(ctx, n)
    bare_python = _spawn_floor(n, ["/usr/bin/python3", "-I", "-c", "pass"], {"PATH": "/usr/bin:/bin"})
    targets = {"provided": 5.0, "python3": PYTHON_TEMPLATE_TARGET_MS}
    plain_p50, plain_p99, _ = res[("python3", "plain")]
    ctx.row(s, "cold start p50, python3 noop, sandbox on, templates off", ms(plain_p50),
            "spawn+exec " + ms(floors[("python3", "plain")]["p50_ms"]),
            ratio(plain_p50, floors[("python3", "plain")]["p50_ms"]), "<= 30 ms", plain_p50 <= 30.0)
    ctx.row(s, "cold start p99, python3 noop, sandbox on, templates off", ms(plain_p99),
            "spawn+exec " + ms(floors[("python3", "plain")]["p99_ms"]),
            ratio(plain_p99, floors[("python3", "plain")]["p99_ms"]))
    ctx.row(s, "cold start p50, python3 noop from a template, against `python3 -I -c pass`",
            ms(res[("python3", "on")][0]), "python3 -I -c pass " + ms(bare_python["p50_ms"]),
            ratio(res[("python3", "on")][0], bare_python["p50_ms"]))
    if preload:
        ctx.row(s, "cold start p50, image-resize example, Pillow preloaded", ms(preload["preload"][0]),
                "not preloaded " + ms(preload["plain"][0]), ratio(preload["preload"][0], preload["plain"][0]))
        ctx.row(s, "init duration p50, image-resize example, Pillow preloaded", ms(preload["preload"][2]),
                "not preloaded " + ms(preload["plain"][2]), ratio(preload["preload"][2], preload["plain"][2]))
    ctx.row(s, "cold start p50, python3 noop from a template, against the provided noop",
            ms(res[("python3", "on")][0]), "provided " + ms(res[("provided", "on")][0]),
            ratio(res[("python3", "on")][0], res[("provided", "on")][0]))
    node_plain_p50, node_plain_p99, _ = res[("nodejs", "plain")]
    node_floor = floors[("nodejs", "plain")]
    node_over = node_plain_p50 - node_floor["p50_ms"]
    ctx.row(s, "cold start p50, nodejs noop, sandbox on, templates off", ms(node_plain_p50),
            NODE_BASELINE + ms(node_floor["p50_ms"]), ratio(node_plain_p50, node_floor["p50_ms"]),
            "<= node -e 0 + %g ms (+%.1f ms)" % (NODE_COLD_OVERHEAD_MS, node_over), node_over <= NODE_COLD_OVERHEAD_MS)
    ctx.row(s, "cold start p99, nodejs noop, sandbox on, templates off", ms(node_plain_p99),
            NODE_BASELINE + ms(node_floor["p99_ms"]), ratio(node_plain_p99, node_floor["p99_ms"]))
    ctx.row(s, "cold start p50, nodejs noop from a template, against the provided noop",
            ms(res[("nodejs", "on")][0]), "provided " + ms(res[("provided", "on")][0]),
            ratio(res[("nodejs", "on")][0], res[("provided", "on")][0]))
    for runtime in COLD_RUNTIMES:
        for mode in ("on", "off"):
            f = floors[(runtime, mode)]
            p50, p99, _ = res[(runtime, mode)]
            on = mode == "on"
            if runtime == "nodejs":
                # Forked from a template with the sandbox on: judged by the brief's absolute
                # target. Started plainly (sandbox off, and the row above): by what it adds
                # to node's own start, which alone takes tens of milliseconds.
                over = p50 - f["p50_ms"]
                ctx.row(s, "cold start p50, nodejs noop, sandbox %s" % mode, ms(p50), NODE_BASELINE + ms(f["p50_ms"]),
                        ratio(p50, f["p50_ms"]), ("<= %g ms" % NODE_TEMPLATE_TARGET_MS) if on else "+%.1f ms" % over,
                        (p50 <= NODE_TEMPLATE_TARGET_MS) if on else None)
                ctx.row(s, "cold start p99, nodejs noop, sandbox %s" % mode, ms(p99), NODE_BASELINE + ms(f["p99_ms"]),
                        ratio(p99, f["p99_ms"]))
                continue
            ctx.row(s, "cold start p50, %s noop, sandbox %s" % (runtime, mode), ms(p50), "spawn+exec " + ms(f["p50_ms"]),
                    ratio(p50, f["p50_ms"]), ("<= %g ms" % targets[runtime]) if on else "-",
                    (p50 <= targets[runtime]) if on else None)
            ctx.row(s, "cold start p99, %s noop, sandbox %s" % (runtime, mode), ms(p99), "spawn+exec " + ms(f["p99_ms"]),
                    ratio(p99, f["p99_ms"]))
    ctx.note(s, "python3 and nodejs with the sandbox on are forked from a runtime template (the default); the "
                "rows \"templates off\" are a daemon started with `--runtime-templates off`, whose workers start "
                "their interpreter afresh. With the sandbox off there are no templates.")
    ctx.note(s, "%d cold starts per row: each deploys a fresh copy of the noop and invokes it once "
                "(request in -> response out at the client). Floor, measured right before each row: "
                "`bench/spawn-floor`, posix_spawn + wait of `noop-bootstrap` (exits at once: no Runtime API), or of "
                "`python3 -I -u runtime/python/bootstrap.py` loading the noop handler (exits at its first, refused, "
                "connection), or of `node %s-e 0` for nodejs (the flags funcd starts the noop's worker with, read "
                "from its command line), %d runs." % (n, "".join(f + " " for f in node_flags), n))
    ctx.note(s, "")
    ctx.note(s, "| row | p50 | p99 | median X-Funcd-Init-Duration-Ms | its floor p50 | floor p99 |")
    ctx.note(s, "|---|---|---|---|---|---|")
    for runtime, mode in [(r, m) for r in COLD_RUNTIMES for m in ("on", "off")] + \
            [(r, "plain") for r in TEMPLATE_RUNTIMES]:
        p50, p99, init = res[(runtime, mode)]
        f = floors[(runtime, mode)]
        label = "sandbox on, templates off" if mode == "plain" else "sandbox " + mode
        ctx.note(s, "| %s, %s | %s | %s | %s | %s | %s |" % (runtime, label, ms(p50), ms(p99), ms(init),
                                                             ms(f["p50_ms"]), ms(f["p99_ms"])))
    sandbox_cost = res[("provided", "on")][0] - res[("provided", "off")][0]
    ctx.note(s, "")
    ctx.note(s, "Sandbox cost on a provided cold start (p50): %.2f ms." % sandbox_cost)
    for mode, (without, with_flags) in bare_node.items():
        ctx.note(s, "The heap flags on node's own start, before the sandbox-%s nodejs row (`node -e 0` without and "
                    "with them, alternating chunks, median of the chunks' p50s): %s without, %s with (%+.1f ms)."
                 % (mode, ms(without), ms(with_flags), with_flags - without))


# ---------------------------------------------------------------------------------------
# 5. Burst: 500 concurrent first invocations of one function, from zero workers.

def _burst_round(ctx, d, name, n):
    with load.WorkerWatch(d, name) as watch:
        r = load.burst(d.port, "/v1/functions/%s/invoke" % name, n)
        time.sleep(0.05)
    r["peak_api"], r["peak_busy"], r["peak_procs"], r["polls"] = (watch.peak_api, watch.peak_busy,
                                                                   watch.peak_procs, watch.polls)
    r["poll_errors"] = watch.poll_errors
    r["timeline"] = watch.timeline()
    r["after"] = d.instances(name)
    r["procs_after"] = len(procs.children_of(d.pid))
    return r


def burst(ctx):
    s = "burst"
    n = ctx.args.burst
    d = ctx.daemon("burst", "--sandbox", "on", *UNTHROTTLED)
    try:
        d.deploy_noop("burst", "provided")
        before = d.instances("burst")
        ctx.log("burst: %d concurrent first invocations" % n)
        cold_r = _burst_round(ctx, d, "burst", n)
        ctx.log("burst: the same %d once warm" % n)
        warm_r = _burst_round(ctx, d, "burst", n)
        rss_after = d.rss_kb()
    finally:
        leftovers = d.stop()
    ctx.log("burst: %d spawn+execs" % n)
    t = time.perf_counter()
    floor = _spawn_floor(n, [services.NOOP_BOOTSTRAP], {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:1"})
    floor_s = time.perf_counter() - t

    def secs(v):
        return "-" if v is None else "%.3f s" % v

    ok = cold_r["errors"] == 0
    ctx.row(s, "burst: %d concurrent first invocations, all answered" % n, secs(cold_r["all_answered_s"]),
            "same %d warm %s" % (n, secs(warm_r["all_answered_s"])),
            ratio(cold_r["all_answered_s"], warm_r["all_answered_s"]))
    ctx.row(s, "burst: same, against %d spawn+execs in a row" % n, secs(cold_r["all_answered_s"]),
            "spawn+exec x%d %s" % (n, secs(floor_s)), ratio(cold_r["all_answered_s"], floor_s))
    ctx.row(s, "burst: errors (not 200 / function error / no answer)", "%d of %d" % (cold_r["errors"], n),
            "warm round %d" % warm_r["errors"], None, "0", ok)
    ctx.row(s, "burst: peak workers (API idle+busy / processes)", "%d / %d" % (cold_r["peak_api"], cold_r["peak_procs"]),
            "%d requests" % n, ratio(cold_r["peak_api"], n), "-")
    ctx.note(s, "Fresh daemon (`--sandbox on %s`), one noop `provided` function deployed, %s workers before. "
                "The client opens %d connections first, then sends one `POST .../invoke` on each as fast as it can "
                "(single thread, non-blocking sockets) and reads every answer; the clock starts at the first send. "
                "Peak workers: `GET /v1/functions/burst` polled every 10 ms (idle+busy) and the daemon's child "
                "processes (sandbox inits) counted every 100 ms. Baselines: the same %d requests once the workers "
                "are warm (second round, same daemon), and %d spawn+execs of `noop-bootstrap` one after another."
             % (" ".join(UNTHROTTLED), "%d idle/%d busy" % before, n, n, n))
    ctx.note(s, "")
    ctx.note(s, "| round | all answered | sends took | p50 | p99 | max | errors | cold starts | peak API idle+busy "
                "(busy) | peak processes | after: idle/busy, processes |")
    ctx.note(s, "|---|---|---|---|---|---|---|---|---|---|---|")
    for label, r in (("cold (from zero)", cold_r), ("warm (second round)", warm_r)):
        lat = r["latency_ms"]
        ctx.note(s, "| %s | %s | %.1f ms | %s | %s | %s | %d | %d | %d (%d) | %d | %d/%d, %d |" % (
            label, secs(r["all_answered_s"]), r["send_spread_ms"], ms(lat["p50"]), ms(lat["p99"]), ms(lat["max"]),
            r["errors"], r["cold"], r["peak_api"], r["peak_busy"], r["peak_procs"], r["after"][0], r["after"][1],
            r["procs_after"]))
    ctx.note(s, "")
    ctx.note(s, "Over time in the cold round (API idle/busy; worker process trees under the daemon): " + ", ".join(
        "%gs %d/%d, %d" % x for x in cold_r["timeline"]) + ". Busy includes invocations whose worker is still "
        "being launched.")
    ctx.note(s, "")
    ctx.note(s, "spawn+exec of noop-bootstrap, %d in a row: %.3f s (p50 %s, p99 %s each). Daemon RSS after both "
                "rounds: %s." % (n, floor_s, ms(floor["p50_ms"]), ms(floor["p99_ms"]), mb(rss_after)))
    for label, r in (("cold", cold_r), ("warm", warm_r)):
        if r["errors"]:
            ctx.note(s, "")
            ctx.note(s, "%s round errors: %s; samples: %s" % (label, json.dumps(r["error_kinds"]),
                                                             json.dumps(r["error_samples"])))
            ctx.failures.append("burst %s round: %d errors: %s" % (label, r["errors"], json.dumps(r["error_kinds"])))
        if r["poll_errors"]:
            ctx.note(s, "%s round: instance polls failed: %s" % (label, r["poll_errors"]))
    if leftovers:
        ctx.failures.append("burst: %d worker processes outlived the daemon's shutdown" % len(leftovers))
    _python_burst_at_defaults(ctx, n)


def _python_burst_at_defaults(ctx, n):
    """The same burst against a Python noop and a daemon with its default admission (memory
    budget: 80% of RAM; each worker charged what it is expected to use, under the workers'
    memory fence): what a user sees out of the box. Throttles (429) count as errors."""
    s = "burst"
    d = ctx.daemon("burst-python-defaults", "--sandbox", "on")
    try:
        d.deploy_noop("burst-py", "python3")
        ctx.log("burst: %d concurrent first invocations of a Python noop, default limits" % n)
        r = _burst_round(ctx, d, "burst-py", n)
        admission = d.memory_admission()
        used_mb, limit_mb = d.memory_budget_mb()
    finally:
        leftovers = d.stop()
    answered = "-" if r["all_answered_s"] is None else "%.3f s" % r["all_answered_s"]
    ctx.row(s, "burst: %d first invocations of a Python noop, daemon defaults: errors" % n,
            "%d of %d" % (r["errors"], n), answered + " until all answered", None, "0", r["errors"] == 0)
    ctx.note(s, "")
    ctx.note(s, "Python noop, fresh daemon with default admission (`--sandbox on` only): all answered %s, "
                "p50 %s, p99 %s, %d cold starts, peak workers %d (API) / %d (processes); outcomes other "
                "than 200: %s." % (answered, ms(r["latency_ms"]["p50"]), ms(r["latency_ms"]["p99"]), r["cold"],
                                   r["peak_api"], r["peak_procs"], json.dumps(r["error_kinds"]) if r["error_kinds"] else "none"))
    idle, busy = r["after"]
    ctx.note(s, "Memory admission `%s`; after the burst the budget counts %s of %s MB for %d live workers "
                "(%s MB each; `memory_mb` is 128)." % (
                    admission, "-" if used_mb is None else "%.0f" % used_mb,
                    "-" if limit_mb is None else "%.0f" % limit_mb, idle + busy,
                    "%.1f" % (used_mb / (idle + busy)) if used_mb is not None and idle + busy else "-"))
    if leftovers:
        ctx.failures.append("burst (python): %d worker processes outlived the daemon's shutdown" % len(leftovers))


# ---------------------------------------------------------------------------------------
# 6. Scale to zero: daemon RSS at rest, with 200 idle workers, after keep-alive; memory
#    of an idle worker.

def _worker_memory(trees):
    """Per worker (one tree under the daemon): USS and PSS summed over its processes."""
    per_worker, inits, runtimes = [], [], []
    for root, tree in trees.items():
        uss = pss = 0
        for pid in tree:
            m = procs.smaps_rollup(pid)
            if m is None:
                continue
            uss += m["uss"]
            pss += m["pss"]
            (inits if pid == root else runtimes).append(m)
        per_worker.append((uss, pss, len(tree)))
    return per_worker, inits, runtimes


def _plain_process_memory():
    """noop-bootstrap as a plain process, waiting for its first event from a socket that
    never answers: the same program with no sandbox and no daemon around it."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(10)
        port = srv.getsockname()[1]
        p = subprocess.Popen([services.NOOP_BOOTSTRAP], env={"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % port},
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             preexec_fn=procs.die_with_parent)
        try:
            conn, _ = srv.accept()
            conn.settimeout(10)
            conn.recv(4096)  # its GET .../next: now it blocks for the answer
            time.sleep(0.2)
            m = procs.smaps_rollup(p.pid)
            conn.close()
        finally:
            p.kill()
            p.wait()
    return m


def _settled_rss(d, seconds=1.0):
    time.sleep(seconds)
    return (d.rss_kb(), procs.status_kb(d.pid, "RssAnon"), procs.status_kb(d.pid, "RssFile"),
            procs.heap_rss_kb(d.pid))


def _idle_cycle(ctx, d, n, keep):
    """n concurrent invocations, readings once the workers are idle, then again once
    keep-alive has ended them all."""
    c = {}
    r = load.burst(d.port, "/v1/functions/idle/invoke", n)
    fired = time.monotonic()
    c["burst"] = r
    deadline = fired + 10
    while time.monotonic() < deadline and d.instances("idle")[1] != 0:
        time.sleep(0.1)
    c["loaded"] = _settled_rss(d)
    c["counts"] = d.instances("idle")
    c["per_worker"], c["inits"], c["runtimes"] = _worker_memory(d.workers())
    ctx.log("idle: waiting for keep-alive (%d s) to end the workers" % keep)
    c["zero_s"] = None
    deadline = fired + keep + 90
    while time.monotonic() < deadline:
        i, b = d.instances("idle")
        if i + b == 0 and not procs.children_of(d.pid):
            c["zero_s"] = time.monotonic() - fired
            break
        time.sleep(0.25)
    c["after"] = _settled_rss(d, 2.0)
    c["after_counts"] = d.instances("idle")
    c["after_procs"] = len(procs.children_of(d.pid))
    return c


# Python and Node.js workers for the memory rows: enough to average over, few enough for a
# quick run.
TEMPLATE_IDLE_WORKERS = 20


def _template_idle_memory(ctx, runtime, templates, n):
    """n idle noop workers of `runtime` of a daemon with runtime templates on or off: memory
    per worker (its sandbox init and runtime), and the template's own."""
    d = ctx.daemon("idle-%s-templates-%s" % (runtime, templates), "--runtime-templates", templates, *UNTHROTTLED)
    try:
        d.deploy_noop("idle-rt", runtime, keep_alive_s=600)
        r = load.burst(d.port, "/v1/functions/idle-rt/invoke", n)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and d.instances("idle-rt")[1] != 0:
            time.sleep(0.1)
        time.sleep(1.0)
        per_worker, _, _ = _worker_memory(d.workers())
        template = [procs.smaps_rollup(p) for p in procs.templates_of(d.pid)]
        return {"per_worker": per_worker, "template": [t for t in template if t], "errors": r["errors"]}
    finally:
        d.stop()


def idle(ctx):
    s = "idle"
    n = ctx.args.idle_workers
    keep = ctx.args.keep_alive
    d = ctx.daemon("idle", "--sandbox", "on", *UNTHROTTLED)
    cycles = []
    try:
        d.deploy_noop("idle", "provided", keep_alive_s=keep)
        rest = _settled_rss(d)
        for k in range(ctx.args.idle_cycles):
            ctx.log("idle: cycle %d: %d concurrent invocations, keep_alive_s %d" % (k + 1, n, keep))
            cycles.append(_idle_cycle(ctx, d, n, keep))
    finally:
        d.stop()
    plain = _plain_process_memory()
    template_memory = {(runtime, mode): _template_idle_memory(ctx, runtime, mode, TEMPLATE_IDLE_WORKERS)
                       for runtime in TEMPLATE_RUNTIMES for mode in ("on", "off")}

    first = cycles[0]
    per_worker, inits, runtimes = first["per_worker"], first["inits"], first["runtimes"]
    workers = len(per_worker)
    uss = sum(w[0] for w in per_worker) / workers if workers else None
    pss = sum(w[1] for w in per_worker) / workers if workers else None
    loaded, after = first["loaded"], first["after"]
    ctx.row(s, "daemon RSS at rest (deployed, no workers)", mb(rest[0]), "-", None, "-")
    ctx.row(s, "daemon RSS with %d idle workers" % workers, mb(loaded[0]), "at rest " + mb(rest[0]),
            ratio(loaded[0], rest[0]))
    ctx.row(s, "daemon RSS after keep-alive (scaled to zero)", mb(after[0]), "at rest " + mb(rest[0]),
            ratio(after[0], rest[0]), "<= 1.10x", after[0] <= 1.10 * rest[0] and first["zero_s"] is not None)
    for k, c in enumerate(cycles[1:], start=2):
        ctx.row(s, "daemon RSS after keep-alive, cycle %d" % k, mb(c["after"][0]),
                "after cycle %d %s" % (k - 1, mb(cycles[k - 2]["after"][0])),
                ratio(c["after"][0], cycles[k - 2]["after"][0]))
    last = cycles[-1]
    ctx.row(s, "worker processes after keep-alive", "%d (API %d idle/%d busy)" % (last["after_procs"],
                                                                               *last["after_counts"]),
            "-", None, "0", all(c["after_procs"] == 0 and sum(c["after_counts"]) == 0 for c in cycles))
    ctx.row(s, "idle native worker, private memory (USS)", mb(uss), "plain process " + mb(plain and plain["uss"]),
            ratio(uss, plain and plain["uss"]), "<= 2 MiB", None if uss is None else uss <= 2048)
    ctx.row(s, "idle native worker, PSS", mb(pss), "plain process " + mb(plain and plain["pss"]),
            ratio(pss, plain and plain["pss"]))
    def mean_of(workers, k):
        return sum(w[k] for w in workers) / len(workers) if workers else None
    for runtime in TEMPLATE_RUNTIMES:
        on, off = template_memory[(runtime, "on")], template_memory[(runtime, "off")]
        from_template, started = on["per_worker"], off["per_worker"]
        ctx.row(s, "idle %s worker from a template, USS" % runtime, mb(mean_of(from_template, 0)),
                "started plainly " + mb(mean_of(started, 0)), ratio(mean_of(from_template, 0), mean_of(started, 0)))
        ctx.row(s, "idle %s worker from a template, PSS" % runtime, mb(mean_of(from_template, 1)),
                "started plainly " + mb(mean_of(started, 1)), ratio(mean_of(from_template, 1), mean_of(started, 1)))
        tmpl = on["template"]
        ctx.row(s, "%s runtime template, USS / PSS / RSS" % runtime,
                "%s / %s / %s" % (mb(tmpl[0]["uss"]), mb(tmpl[0]["pss"]), mb(tmpl[0]["rss"])) if tmpl else "none found",
                "-", None)
    ctx.note(s, "python3 and nodejs rows: a fresh daemon each (`--runtime-templates on`, then `off`), the noop "
                "deployed, %d concurrent invocations, readings 1 s after all workers were idle: %s. Per worker: "
                "USS and PSS summed over its sandbox init and its runtime. Pages a template-born runtime shares "
                "with its template and its siblings count in PSS, split between them, and not in USS."
             % (TEMPLATE_IDLE_WORKERS, ", ".join(
                 "%s %s %d workers (errors %d)" % (rt, "from a template" if mode == "on" else "started plainly",
                                                  len(m["per_worker"]), m["errors"])
                 for (rt, mode), m in template_memory.items())))
    ctx.note(s, "")
    ctx.note(s, "Fresh daemon (`--sandbox on %s`), the noop `provided` function deployed with keep_alive_s %d. "
                "At rest: 1 s after the deploy. Each cycle: %d concurrent invocations, readings 1 s after all "
                "workers were idle, then again 2 s after the API and /proc showed no worker left. The table's "
                "target is on cycle 1; further cycles tell memory kept by the allocator (flat) from memory "
                "leaked per worker (growing)." % (" ".join(UNTHROTTLED), keep, n))
    ctx.note(s, "")
    ctx.note(s, "| reading | VmRSS | RssAnon | RssFile | [heap] resident | workers (API idle/busy, process trees) | "
                "invocations: errors, cold starts |")
    ctx.note(s, "|---|---|---|---|---|---|---|")
    ctx.note(s, "| at rest | %s | %s | %s | %s | 0 | - |" % (mb(rest[0]), mb(rest[1]), mb(rest[2]), mb(rest[3])))
    for k, c in enumerate(cycles, start=1):
        r = c["burst"]
        ctx.note(s, "| cycle %d, %d idle workers | %s | %s | %s | %s | %d/%d, %d | %d, %d |" % (
            k, len(c["per_worker"]), mb(c["loaded"][0]), mb(c["loaded"][1]), mb(c["loaded"][2]), mb(c["loaded"][3]),
            c["counts"][0],
            c["counts"][1], len(c["per_worker"]), r["errors"], r["cold"]))
        ctx.note(s, "| cycle %d, after keep-alive (%s after the invocations) | %s | %s | %s | %s | %d/%d, %d | - |" % (
            k, "%.1f s" % c["zero_s"] if c["zero_s"] is not None else "NOT within keep_alive_s + 90 s",
            mb(c["after"][0]), mb(c["after"][1]), mb(c["after"][2]), mb(c["after"][3]), c["after_counts"][0],
            c["after_counts"][1],
            c["after_procs"]))
    ctx.note(s, "")
    if workers:
        def avg(items, key):
            return sum(m[key] for m in items) / len(items) if items else None
        procs_per = statistics.mean(w[2] for w in per_worker)
        ctx.note(s, "Per idle worker, cycle 1 (from /proc/PID/smaps_rollup, USS = Private_Clean + Private_Dirty, "
                    "summed over the worker's %.1f processes): USS %s (min %s, max %s), PSS %s. Sandbox init: USS %s, "
                    "PSS %s; runtime (noop-bootstrap): USS %s, PSS %s. The same bootstrap as a plain process waiting "
                    "for its first event: USS %s, PSS %s, RSS %s."
                 % (procs_per, mb(uss), mb(min(w[0] for w in per_worker)), mb(max(w[0] for w in per_worker)),
                    mb(pss), mb(avg(inits, "uss")), mb(avg(inits, "pss")), mb(avg(runtimes, "uss")),
                    mb(avg(runtimes, "pss")), mb(plain and plain["uss"]), mb(plain and plain["pss"]),
                    mb(plain and plain["rss"])))
    for k, c in enumerate(cycles, start=1):
        r = c["burst"]
        if r["errors"]:
            ctx.failures.append("idle cycle %d: %d of %d invocations failed: %s"
                                % (k, r["errors"], n, json.dumps(r["error_kinds"])))
        if c["zero_s"] is None:
            ctx.failures.append("idle cycle %d: workers still there 90 s after keep_alive_s %d (API %s, %d processes)"
                                % (k, keep, c["after_counts"], c["after_procs"]))
    if after[0] > 1.10 * rest[0]:
        ctx.failures.append("idle: daemon RSS %s after scale to zero vs %s at rest (RssAnon %s vs %s; [heap] "
                            "resident %s vs %s)" % (mb(after[0]), mb(rest[0]), mb(after[1]), mb(rest[1]),
                                                    mb(after[3]), mb(rest[3])))


# ---------------------------------------------------------------------------------------
# 7. Metering overhead: 64-connection throughput with usage records on and off.

def metering(ctx):
    s = "metering"
    dur = ctx.args.duration
    daemons = {}
    try:
        daemons["on"] = ctx.daemon("metering-on", "--sandbox", "on", "--metering", "on")
        try:
            daemons["off"] = ctx.daemon("metering-off", "--sandbox", "on", "--metering", "off")
        except StartError as e:
            if "unknown option" in e.log or "--metering" in e.log:
                ctx.row(s, "c64 throughput, metering on vs off", "n/a", "-", None, "-")
                ctx.note(s, "`funcd serve --metering off` was refused by this build: %s"
                         % e.log.strip().splitlines()[-1:])
                return
            raise
        for mode, d in daemons.items():
            d.deploy_noop("meter", "provided")
            _check_invoke(d, "meter")
            _warm_up(d, "meter", 2, 64)
        # Alternating short runs, so a drift in the machine's load hits both modes alike.
        totals = {"on": [0, 0.0, []], "off": [0, 0.0, []]}
        half = max(2, round(dur / 4))
        order = ("on", "off", "off", "on") * 2
        for mode in order:
            ctx.log("metering: %s, %d s" % (mode, half))
            r = load.wrk(daemons[mode].url("/v1/functions/meter/invoke"), 2, 64, half, raw_log=ctx.wrk_log())
            totals[mode][0] += r["requests"]
            totals[mode][1] += r["duration_us"] / 1e6
            totals[mode][2].append(r)
        records = {}
        for mode, d in daemons.items():
            status, _, body = d.request("GET", "/v1/usage?function=meter")
            if status == 200:
                fns = json.loads(body).get("functions", [])
                records[mode] = fns[0]["invocations"] if fns else 0
    finally:
        for d in daemons.values():
            d.stop()
    on = totals["on"][0] / totals["on"][1]
    off = totals["off"][0] / totals["off"][1]
    ctx.row(s, "c64 throughput, noop provided, metering on", rps(on), "metering off " + rps(off), ratio(on, off), "-")
    ctx.note(s, "Two daemons side by side (`--metering on` / `--metering off`), the noop `provided` function warmed "
                "with 64 connections on each, then `wrk -t2 -c64` for %d s per run in the order %s; "
                "req/s = requests / time over all runs of a mode. Cost of usage records: %.1f%% of the "
                "unmetered throughput%s. Usage records afterwards: on %s, off %s."
             % (half, ", ".join(order), (1 - on / off) * 100,
                " (negative: the metered daemon was faster, so the difference is within this run's noise)"
                if on > off else "", records.get("on", "?"), records.get("off", "?")))
    ctx.note(s, "")
    ctx.note(s, "Each run in order (req/s): " + ", ".join(
        "%s %s" % (m, "{:,.0f}".format(r["rps"])) for m, r in _in_order(order, totals)) + ".")
    for mode in ("on", "off"):
        for r in totals[mode][2]:
            if r["errors_total"]:
                ctx.failures.append("metering %s: wrk counted errors: %s" % (mode, _wrk_errors(r)))


def _in_order(order, totals):
    seen = {"on": 0, "off": 0}
    for m in order:
        yield m, totals[m][2][seen[m]]
        seen[m] += 1


# ---------------------------------------------------------------------------------------
# 8. Metrics on the warm path: 1-connection p50 with /metrics counting on and off.

def metrics(ctx):
    s = "metrics"
    dur = ctx.args.duration
    daemons = {}
    try:
        daemons["on"] = ctx.daemon("metrics-on", "--sandbox", "on", "--metrics", "on")
        try:
            daemons["off"] = ctx.daemon("metrics-off", "--sandbox", "on", "--metrics", "off")
        except StartError as e:
            if "unknown option" in e.log or "--metrics" in e.log:
                ctx.row(s, "warm p50, metrics on vs off", "n/a", "-", None, "-")
                ctx.note(s, "`funcd serve --metrics off` was refused by this build: %s"
                         % e.log.strip().splitlines()[-1:])
                return
            raise
        for mode, d in daemons.items():
            d.deploy_noop("observed", "provided")
            _check_invoke(d, "observed")
            _warm_up(d, "observed", 1, 1)
        # Alternating short runs, so a drift in the machine's load hits both modes alike.
        runs = {"on": [], "off": []}
        # Many short alternating runs: the difference sought is far below a loaded machine's
        # drift between runs, which hits both modes alike only when they alternate often.
        half = max(2, round(dur / 8))
        order = ("on", "off", "off", "on") * 4
        for mode in order:
            ctx.log("metrics: %s, %d s" % (mode, half))
            runs[mode].append(load.wrk(daemons[mode].url("/v1/functions/observed/invoke"), 1, 1, half,
                                       raw_log=ctx.wrk_log()))
        status, _, body = daemons["on"].request("GET", "/metrics")
        counted = None
        if status == 200:
            for line in body.decode().splitlines():
                if line.startswith('funcd_invocations_total{function="observed",outcome="success"} '):
                    counted = int(float(line.rsplit(" ", 1)[1]))
    finally:
        for d in daemons.values():
            d.stop()
    p50 = {m: statistics.median(r["latency_us"]["p50"] for r in runs[m]) for m in runs}
    best = {m: min(r["latency_us"]["p50"] for r in runs[m]) for m in runs}
    # The counting alone, in a loop: the dispatcher's share per invocation among 1,000 functions.
    cost_ns = None
    if os.path.exists(services.METRICS_COST):
        out = subprocess.run([services.METRICS_COST, "1000", "5000000"], capture_output=True, text=True, timeout=120)
        if out.returncode == 0:
            cost_ns = json.loads(out.stdout)["ns_per_invocation"]
    rate = {m: sum(r["requests"] for r in runs[m]) / sum(r["duration_us"] for r in runs[m]) * 1e6 for m in runs}
    cost = (p50["on"] - p50["off"]) / p50["off"] * 100
    ctx.row(s, "warm p50, provided noop, 1 conn, metrics on", us(p50["on"]), "metrics off " + us(p50["off"]),
            ratio(p50["on"], p50["off"]), "<= 1.02x", p50["on"] <= 1.02 * p50["off"])
    if cost_ns is not None:
        share = cost_ns / 1000 / p50["off"]
        ctx.row(s, "counting per invocation (1,000 functions), against warm p50", "%.0f ns" % cost_ns,
                "p50 " + us(p50["off"]), None, "< 2% of p50", share < 0.02)
    ctx.note(s, "Two daemons side by side (`--metrics on` / `--metrics off`), the noop `provided` function warmed, "
                "then `wrk -t1 -c1` for %d s per run in the order %s; p50 = median of the runs' p50s. Cost of "
                "metrics: %.1f%% of the p50 without them%s (target: under 2%%). 1-connection req/s: on %s, off %s. "
                "Successes /metrics counted on the metered daemon: %s. Best run's p50: on %s, off %s."
             % (half, ", ".join(order), cost,
                " (negative: the daemon with metrics was faster, so the difference is within this run's noise)"
                if cost < 0 else "", rps(rate["on"]), rps(rate["off"]), counted if counted is not None else "?",
                us(best["on"]), us(best["off"])))
    if cost_ns is not None:
        ctx.note(s, "")
        ctx.note(s, "`bench/metrics-cost 1000 5000000`: finding a function's record among 1,000 and counting one "
                    "completed invocation (outcome, duration and billed histograms, memory-time) costs %.0f ns, "
                    "%.3f%% of the warm p50 without metrics." % (cost_ns, cost_ns / 1000 / p50["off"] * 100))
    ctx.note(s, "")
    seen = {"on": 0, "off": 0}
    in_order = []
    for m in order:
        in_order.append("%s %s" % (m, us(runs[m][seen[m]]["latency_us"]["p50"])))
        seen[m] += 1
    ctx.note(s, "Each run in order (p50): " + ", ".join(in_order) + ".")
    for mode in ("on", "off"):
        for r in runs[mode]:
            if r["errors_total"]:
                ctx.failures.append("metrics %s: wrk counted errors: %s" % (mode, _wrk_errors(r)))


# ---------------------------------------------------------------------------------------
# 6. Warm invoke through Lambda's API (SigV4, as boto3 signs it) against /v1, same function.

# The key pair the section's daemon accepts (any pair works; this one is only for the run).
BENCH_ACCESS_KEY = "AKIAFUNCDBENCH000001"
BENCH_SECRET = "funcd-bench-secret-0000000000000000000000"
LAMBDA_ROUNDS = 3


def lambda_api(ctx):
    s = "lambda"
    dur = ctx.args.duration
    d = ctx.daemon("lambda", "--sandbox", "on", "--aws-access-key-id", BENCH_ACCESS_KEY,
                   "--aws-secret-access-key", BENCH_SECRET)
    name = "lambda-noop"
    path = "/2015-03-31/functions/%s/invocations" % name
    try:
        d.deploy_noop(name, "provided")
        _check_invoke(d, name)
        # An unqualified Lambda Invoke runs $LATEST, an unqualified /v1 invoke the version
        # /v1 deployed: two pools of the same code, each warmed before it is measured.
        v1_url, lambda_url = d.url("/v1/functions/%s/invoke" % name), d.url(path)
        sign = lambda: sigv4.sign("POST", "127.0.0.1:%d" % d.port, path, b"{}", BENCH_ACCESS_KEY, BENCH_SECRET)
        load.wrk(v1_url, 1, 1, 2)
        load.wrk(lambda_url, 1, 1, 2, token="", headers=sign())
        runs = {"v1": [], "lambda": []}
        for i in range(LAMBDA_ROUNDS):
            ctx.log("lambda round %d: /v1" % (i + 1))
            runs["v1"].append(load.wrk(v1_url, 1, 1, dur, raw_log=ctx.wrk_log()))
            ctx.log("lambda round %d: Lambda Invoke (SigV4)" % (i + 1))
            runs["lambda"].append(load.wrk(lambda_url, 1, 1, dur, token="", headers=sign(), raw_log=ctx.wrk_log()))
    finally:
        d.stop()
    p50 = {k: statistics.median(r["latency_us"]["p50"] for r in v) for k, v in runs.items()}
    p99 = {k: statistics.median(r["latency_us"]["p99"] for r in v) for k, v in runs.items()}
    ctx.row(s, "warm p50, Lambda Invoke (SigV4), provided noop, 1 conn", us(p50["lambda"]), "/v1 " + us(p50["v1"]),
            ratio(p50["lambda"], p50["v1"]), "<= 1.15x /v1", p50["lambda"] <= 1.15 * p50["v1"])
    ctx.row(s, "warm p99, Lambda Invoke (SigV4), provided noop, 1 conn", us(p99["lambda"]), "/v1 " + us(p99["v1"]),
            ratio(p99["lambda"], p99["v1"]))
    ctx.note(s, "%d alternating rounds of wrk, %d s each, 1 connection; medians of the rounds. The Lambda run "
                "replays one request signed as botocore signs an Invoke (host;x-amz-date, body hash), so every "
                "request pays the full verification: canonical request, its SHA-256, the string to sign and two "
                "HMACs with the cached signing key." % (LAMBDA_ROUNDS, dur))
    ctx.note(s, "")
    ctx.note(s, "| round | /v1 p50 | Lambda p50 | /v1 p99 | Lambda p99 | /v1 req/s | Lambda req/s | wrk errors |")
    ctx.note(s, "|---|---|---|---|---|---|---|---|")
    for i in range(LAMBDA_ROUNDS):
        a, b = runs["v1"][i], runs["lambda"][i]
        ctx.note(s, "| %d | %s | %s | %s | %s | %s | %s | %s / %s |" % (
            i + 1, us(a["latency_us"]["p50"]), us(b["latency_us"]["p50"]), us(a["latency_us"]["p99"]),
            us(b["latency_us"]["p99"]), rps(a["rps"]), rps(b["rps"]), _wrk_errors(a), _wrk_errors(b)))
        for who, r in (("/v1", a), ("Lambda", b)):
            if r["errors_total"]:
                ctx.failures.append("lambda %s round %d: wrk counted errors: %s" % (who, i + 1, _wrk_errors(r)))


# ---------------------------------------------------------------------------------------
# 10. Database changes: records per second from commit to function at batch sizes 1, 100 and
# 1000, and the commit-to-invoke latency at a low rate (docs/event-sources.md).

# Each batch: its mapping, how long after its first row's commit the handler ran, and how
# many records it had.
CHANGES_SINK = b"""import time

def handler(event, context):
    now = time.time()
    records = event["Records"]
    print("LAG %s %.6f %d" % (records[0]["eventSourceARN"].rsplit(":", 1)[-1],
                              now - records[0]["dynamodb"]["NewImage"]["sent"], len(records)))
    return {}
"""
CHANGES_BATCHES = ((1, 5000), (100, 100000), (1000, 200000))  # (batch size, rows)
CHANGES_LOW_RATE = 20  # rows per second for the latency figure
CHANGES_LOW_ROWS = 200


def _mapping(d, name, pg, batch_size):
    """Creates the mapping; returns its uuid."""
    body = {"type": "postgres", "connection": pg.conninfo(), "tables": ["public.bench_rows"],
            "batch_size": batch_size}
    status, _, text = d.request("PUT", "/v1/functions/changes-sink/event-sources/" + name,
                                json.dumps(body).encode())
    if status != 201:
        raise RuntimeError("creating mapping %s: %d %s" % (name, status, text[:300]))
    return json.loads(text)["uuid"]


def _mapping_state(d, name):
    status, _, text = d.request("GET", "/v1/functions/changes-sink/event-sources/" + name)
    if status != 200:
        raise RuntimeError("GET mapping %s: %d %s" % (name, status, text[:300]))
    return json.loads(text)


def _drop_mapping(d, name):
    d.request("DELETE", "/v1/functions/changes-sink/event-sources/" + name)


def _lag_lines(d, uuid, expect_records, timeout_s=30):
    """(lag s, records) of each batch the mapping `uuid` delivered, once the function's log
    has them all (it is written moments after the invocations end)."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = []
        try:
            with open(os.path.join(d.dir, "logs", "changes-sink.log"), errors="replace") as f:
                text = f.read()
        except OSError:
            text = ""
        for line in text.splitlines():
            i = line.find("LAG ")
            if i >= 0:
                who, lag, n = line[i + 4:].split()[:3]
                if who == uuid:
                    out.append((float(lag), int(n)))
        if sum(n for _, n in out) >= expect_records or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def _wait_delivered(d, name, rows, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = _mapping_state(d, name)
        if m["records_delivered"] >= rows:
            return m
        time.sleep(0.02)
    raise RuntimeError("mapping %s delivered %s of %d rows in %d s: %s"
                       % (name, _mapping_state(d, name)["records_delivered"], rows, timeout_s, m))


def _per_s(v, unit):
    return "{:,.0f} {}/s".format(v, unit)


def _loop_invoke_rate(d, seconds):
    """Records per second a client gets through by invoking the function itself in a loop,
    one record per call, over one keep-alive connection."""
    event = json.dumps({"Records": [{"dynamodb": {"NewImage": {"sent": 0}}}]}).encode()
    times = []
    start = time.monotonic()
    while time.monotonic() < start + seconds:
        t = time.monotonic()
        status, _, body = d.invoke("changes-sink", event)
        times.append(time.monotonic() - t)
        if status != 200:
            raise RuntimeError("invoke changes-sink: %d %s" % (status, body[:200]))
    return len(times) / (time.monotonic() - start), times


def changes(ctx):
    s = "changes"
    pg = d = None
    try:
        pg = services.Postgres(log_dir=ctx.out_dir).start()
        pg.sql("CREATE TABLE bench_rows (id bigserial PRIMARY KEY, sent double precision NOT NULL)")
        d = ctx.daemon("changes", "--sandbox", "on")
        d.deploy("changes-sink", "python3", services.zip_of({"app.py": (CHANGES_SINK, 0o644)}), "app.handler", timeout_s=60)
        loop_rate, loop_times = _loop_invoke_rate(d, max(3, ctx.args.duration // 2))

        for batch, rows in CHANGES_BATCHES:
            name = "b%d" % batch
            uuid = _mapping(d, name, pg, batch)
            ctx.log("changes: %d rows, batch size %d" % (rows, batch))
            t0 = time.monotonic()
            per_tx = min(rows, 1000)
            pg.sql("DO $$ BEGIN FOR t IN 1..%d LOOP INSERT INTO bench_rows (sent) SELECT "
                   "extract(epoch from clock_timestamp()) FROM generate_series(1, %d); COMMIT; END LOOP; END $$"
                   % (rows // per_tx, per_tx))
            m = _wait_delivered(d, name, rows, 600)
            elapsed = time.monotonic() - t0
            batches = _lag_lines(d, uuid, rows)
            _drop_mapping(d, name)
            rate = rows / elapsed
            ctx.row(s, "records/s commit to function, batch size %d" % batch, _per_s(rate, "records"),
                    "client invoking in a loop " + _per_s(loop_rate, "records"), ratio(rate, loop_rate))
            ctx.note(s, "batch size %d: %d rows committed in transactions of %d; all delivered %.2f s after the "
                        "first commit (%d invocations, %.0f records each on average; %d failed batches)"
                     % (batch, rows, per_tx, elapsed, len(batches),
                        rows / len(batches) if batches else 0, m["batches"]["failed"]))

        # Low rate: one row per commit, CHANGES_LOW_RATE a second, each a batch of its own.
        name = "latency"
        uuid = _mapping(d, name, pg, 1)
        for _ in range(10):  # the worker warm before the measured rows
            pg.sql("INSERT INTO bench_rows (sent) VALUES (extract(epoch from clock_timestamp()))")
        _wait_delivered(d, name, 10, 60)
        ctx.log("changes: %d rows at %d/s" % (CHANGES_LOW_ROWS, CHANGES_LOW_RATE))
        start = time.monotonic()
        for i in range(CHANGES_LOW_ROWS):
            pause = start + i / CHANGES_LOW_RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            pg.sql("INSERT INTO bench_rows (sent) VALUES (extract(epoch from clock_timestamp()))")
        _wait_delivered(d, name, 10 + CHANGES_LOW_ROWS, 60)
        lags = [lag * 1e6 for lag, _ in _lag_lines(d, uuid, 10 + CHANGES_LOW_ROWS)[10:]]
        _drop_mapping(d, name)
    finally:
        if d:
            d.stop()
        if pg:
            pg.stop()
    loop_us = [t * 1e6 for t in loop_times]
    if len(lags) < CHANGES_LOW_ROWS:
        ctx.failures.append("changes: %d of %d latency rows found in the function's log" % (len(lags), CHANGES_LOW_ROWS))
    ctx.row(s, "commit-to-invoke p50, 1 row per commit at %d/s" % CHANGES_LOW_RATE, us(_pct(lags, 50)),
            "warm invoke round trip " + us(_pct(loop_us, 50)), ratio(_pct(lags, 50), _pct(loop_us, 50)))
    ctx.row(s, "commit-to-invoke p99, 1 row per commit at %d/s" % CHANGES_LOW_RATE, us(_pct(lags, 99)),
            "warm invoke round trip " + us(_pct(loop_us, 99)), ratio(_pct(lags, 99), _pct(loop_us, 99)))
    ctx.note(s, "")
    ctx.note(s, "PostgreSQL 15 (Debian's) started for the run with wal_level = logical and fsync off, so "
                "the figures leave out the disk's flush that a durable server makes before any replication "
                "client can see a commit; one Python function (`changes-sink`) with one mapping at a time on a table of "
                "(id, sent), `sent` being the row's clock_timestamp(). Records/s: rows / (time from the start of "
                "the inserts to the mapping's records_delivered reaching them). Commit-to-invoke: the handler's "
                "time.time() minus its first record's `sent` (set by the insert, which commits at once), %d rows "
                "one per commit at %d/s after 10 warm-up rows (%d measured). Baselines: the same function invoked by a client in a loop over one connection with a "
                "one-record event (%d calls)." % (CHANGES_LOW_ROWS, CHANGES_LOW_RATE, len(lags), len(loop_times)))


# ---------------------------------------------------------------------------------------
# 11. Shared state: the warm path of a node whose state is in PostgreSQL (--state) against
# one on SQLite. Nothing on the invoke path reads the shared state, so they should cost the
# same.

SHARED_RUNTIMES = ("provided", "python3")
# Rounds per daemon, alternated, so a slow moment of the machine falls on both.
SHARED_ROUNDS = 3


def shared(ctx):
    s = "shared"
    dur = max(2, ctx.args.duration // SHARED_ROUNDS)
    pg = services.Postgres(log_dir=ctx.out_dir).start()
    daemons = {}
    p50s = {}
    try:
        pg.sql("CREATE DATABASE funcd_state")
        url = "postgresql://postgres@127.0.0.1:%d/funcd_state" % pg.port
        daemons["sqlite"] = ctx.daemon("shared-sqlite", "--sandbox", "on")
        daemons["postgres"] = ctx.daemon("shared-postgres", "--sandbox", "on", "--state", url)
        for d in daemons.values():
            for runtime in SHARED_RUNTIMES:
                d.deploy_noop("shared-" + runtime, runtime)
                _check_invoke(d, "shared-" + runtime)
                _warm_up(d, "shared-" + runtime, 1, 1)
        for rnd in range(SHARED_ROUNDS):
            for runtime in SHARED_RUNTIMES:
                for label, d in daemons.items():
                    ctx.log("shared: round %d, %s on %s" % (rnd + 1, runtime, label))
                    r = load.wrk(d.url("/v1/functions/shared-%s/invoke" % runtime), 1, 1, dur, raw_log=ctx.wrk_log())
                    if r["errors_total"]:
                        ctx.failures.append("shared %s on %s: wrk counted errors: %s" % (runtime, label, _wrk_errors(r)))
                    p50s.setdefault((runtime, label), []).append(r["latency_us"]["p50"])
    finally:
        for d in daemons.values():
            d.stop()
        pg.stop()
    for runtime in SHARED_RUNTIMES:
        shared_p50 = statistics.median(p50s[(runtime, "postgres")])
        local_p50 = statistics.median(p50s[(runtime, "sqlite")])
        ctx.row(s, "warm p50, %s noop, 1 conn, --state postgres" % runtime, us(shared_p50), "sqlite " + us(local_p50),
                ratio(shared_p50, local_p50), "<= 1.1x sqlite", shared_p50 <= 1.1 * local_p50)
    ctx.note(s, "Two daemons at once, one with `--state postgres://...` (a PostgreSQL 15 this run starts, fsync off) "
                "and one on SQLite; wrk on 1 connection, %d rounds of %d s each, alternated; the figure is the median "
                "of the rounds' p50s. Per round (us): %s." % (
                    SHARED_ROUNDS, dur, "; ".join("%s %s %s" % (rt, label, [round(v) for v in p50s[(rt, label)]])
                                                 for rt in SHARED_RUNTIMES for label in ("sqlite", "postgres"))))


SECTIONS = {
    "warm": warm,
    "cold": cold,
    "burst": burst,
    "idle": idle,
    "metering": metering,
    "metrics": metrics,
    "lambda": lambda_api,
    "changes": changes,
    "shared": shared,
}
