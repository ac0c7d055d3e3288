"""Child processes that never outlive the benchmark, and readings from /proc."""
import atexit
import ctypes
import os
import signal
import time

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

# Everything started that still needs stopping, oldest first. Each entry has .stop().
_live = []


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when the benchmark dies, even by SIGKILL."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def register(service):
    _live.append(service)


def unregister(service):
    if service in _live:
        _live.remove(service)


def stop_all():
    while _live:
        service = _live.pop()
        try:
            service.stop()
        except Exception as e:  # cleanup goes on whatever one service does
            print("bench: stopping %r: %s" % (service, e), flush=True)


def _terminate(signum, _frame):
    # SIGTERM/SIGHUP become SystemExit so `finally` blocks and atexit run, as on Ctrl-C.
    raise SystemExit(128 + signum)


def install_cleanup():
    atexit.register(stop_all)
    # Ctrl-C raises KeyboardInterrupt even when started from a shell that ignores SIGINT
    # for background jobs (Python keeps an inherited SIG_IGN otherwise).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)


def raise_nofile():
    """The burst holds one socket per request; the daemon inherits the raised limit too."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------------------
# /proc

def _stat_fields(pid):
    """(ppid, starttime) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[1]), int(rest[19])


def process_table():
    """{pid: ppid} of every process on the host."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields:
                table[int(name)] = fields[0]
    return table


def is_runtime_template(pid):
    """A daemon's runtime template (its child, but no worker)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"funcd-template.so" in f.read()  # Python's and Node.js's name their native half
    except OSError:
        return False


def templates_of(pid, table=None):
    table = process_table() if table is None else table
    return [p for p, pp in table.items() if pp == pid and is_runtime_template(p)]


def children_of(pid, table=None):
    """A daemon's workers: its children but its runtime templates."""
    table = process_table() if table is None else table
    return [p for p, pp in table.items() if pp == pid and not is_runtime_template(p)]


def descendants(pid, table=None):
    """Every process below `pid`, as {direct child: [that child and all below it]}, runtime
    templates left out."""
    table = process_table() if table is None else table
    kids = {}
    for p, pp in table.items():
        kids.setdefault(pp, []).append(p)
    trees = {}
    for child in kids.get(pid, []):
        if is_runtime_template(child):
            continue
        tree, todo = [], [child]
        while todo:
            p = todo.pop()
            tree.append(p)
            todo.extend(kids.get(p, []))
        trees[child] = tree
    return trees


def identity(pid):
    """Survives pid reuse: (pid, starttime)."""
    fields = _stat_fields(pid)
    return None if fields is None else (pid, fields[1])


def alive(ident):
    return ident is not None and identity(ident[0]) == ident


def status_kb(pid, field="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def smaps_rollup(pid):
    """{'uss': kB, 'pss': kB, 'rss': kB} of one process, or None when it is gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            text = f.read()
    except OSError:
        return None
    values = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":"):
            try:
                values[parts[0][:-1]] = int(parts[1])
            except ValueError:
                pass
    uss = values.get("Private_Clean", 0) + values.get("Private_Dirty", 0) + values.get("Private_Hugetlb", 0)
    return {"uss": uss, "pss": values.get("Pss", 0), "rss": values.get("Rss", 0)}


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def kill_idents(idents, sig=signal.SIGKILL):
    """Signals the processes still alive among `idents`; returns those it signalled."""
    hit = []
    for ident in idents:
        if alive(ident):
            try:
                os.kill(ident[0], sig)
                hit.append(ident)
            except OSError:
                pass
    return hit


def wait_gone(idents, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(i) for i in idents):
            return True
        time.sleep(0.05)
    return not any(alive(i) for i in idents)


def heap_rss_kb(pid):
    """Resident kB of the process's brk heap ([heap] in smaps): where glibc's main arena lives."""
    try:
        with open("/proc/%d/smaps" % pid) as f:
            in_heap = False
            for line in f:
                if line.endswith("[heap]\n"):
                    in_heap = True
                elif in_heap and line.startswith("Rss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None
