"""The processes under test: funcd daemons and the nginx baseline, each in its own
temporary directory, stopped by procs.stop_all() whatever happens."""
import base64
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
import zipfile

from . import procs

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(BENCH_DIR)
BUILD = os.path.join(ROOT, "build", "release")
FUNCD = os.path.join(BUILD, "src", "funcd")
NOOP_BOOTSTRAP = os.path.join(BUILD, "examples", "noop-provided", "noop-bootstrap")
SPAWN_FLOOR = os.path.join(BUILD, "bench", "spawn-floor")
METRICS_COST = os.path.join(BUILD, "bench", "metrics-cost")
PYTHON_BOOTSTRAP = os.path.join(ROOT, "runtime", "python", "bootstrap.py")
TOKEN = "bench-token"

PYTHON_NOOP = b"def handler(event, context):\n    return {}\n"
NODE = "/usr/bin/node"  # what funcd runs nodejs functions with by default (--node)
NODE_NOOP = b"exports.handler = async () => ({});\n"


class StartError(RuntimeError):
    """A service did not come up; .log holds what it said."""

    def __init__(self, message, log=""):
        super().__init__(message)
        self.log = log


def snapshot_binaries(directory):
    """Copies the binaries under test, so a rebuild during the run cannot change them
    between sections (or be caught half-written)."""
    global FUNCD, NOOP_BOOTSTRAP, SPAWN_FLOOR
    os.makedirs(directory, exist_ok=True)
    copies = []
    for path in (FUNCD, NOOP_BOOTSTRAP, SPAWN_FLOOR):
        dest = os.path.join(directory, os.path.basename(path))
        shutil.copy2(path, dest)
        copies.append(dest)
    FUNCD, NOOP_BOOTSTRAP, SPAWN_FLOOR = copies


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, data)
    return buf.getvalue()


def provided_noop_zip():
    with open(NOOP_BOOTSTRAP, "rb") as f:
        return zip_of({"bootstrap": (f.read(), 0o755)})


def python_noop_zip():
    return zip_of({"app.py": (PYTHON_NOOP, 0o644)})


def node_noop_zip():
    return zip_of({"index.js": (NODE_NOOP, 0o644)})


NOOPS = {
    "provided": (provided_noop_zip, "bootstrap"),
    "python3": (python_noop_zip, "app.handler"),
    "nodejs": (node_noop_zip, "index.handler"),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`funcd serve` on 127.0.0.1 with an ephemeral port and a temporary data dir."""

    def __init__(self, label, *args, log_dir=None):
        self.label = label
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix="funcd-bench-")
        self.log_dir = log_dir
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.proc = None
        self.port = None
        self.conn = None

    def __repr__(self):
        return "funcd(%s)" % self.label

    def start(self, timeout=20):
        env = dict(os.environ, FUNCD_API_TOKEN=TOKEN)
        env.pop("FUNCD_LISTEN", None)
        env.pop("FUNCD_DATA_DIR", None)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [FUNCD, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.dir, "--log-level", "info", *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, preexec_fn=procs.die_with_parent)
        procs.register(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"listening on [0-9.]+:(\d+)", self.log_text())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        if self.port is None:
            log = self.log_text()
            self.stop()
            raise StartError("funcd %s did not start (args %s)" % (self.label, " ".join(self.args)), log)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return self

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid

    def request(self, method, path, body=b"", ctype="application/json"):
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body,
                                  headers={"Authorization": "Bearer " + TOKEN, "Content-Type": ctype})
                r = self.conn.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                if attempt:
                    raise

    def deploy(self, name, runtime, zip_bytes, handler, **settings):
        body = dict(runtime=runtime, handler=handler, code={"zip_base64": base64.b64encode(zip_bytes).decode()},
                    **settings)
        status, _, text = self.request("PUT", "/v1/functions/" + name, json.dumps(body).encode())
        if status not in (200, 201):
            raise RuntimeError("deploy %s: %d %s" % (name, status, text[:300]))

    def deploy_noop(self, name, runtime, **settings):
        make_zip, handler = NOOPS[runtime]
        self.deploy(name, runtime, make_zip(), handler, **settings)

    def invoke(self, name, body=b"{}"):
        return self.request("POST", "/v1/functions/%s/invoke" % name, body)

    def instances(self, name):
        status, _, text = self.request("GET", "/v1/functions/" + name)
        if status != 200:
            raise RuntimeError("GET /v1/functions/%s: %d %s" % (name, status, text[:300]))
        inst = json.loads(text)["instances"]
        return inst["idle"], inst["busy"]

    def rss_kb(self):
        return procs.status_kb(self.pid, "VmRSS")

    def memory_budget_mb(self):
        """(used, limit) of the memory budget in MB, from /metrics: what admission counts."""
        status, _, text = self.request("GET", "/metrics")
        if status != 200:
            raise RuntimeError("GET /metrics: %d %s" % (status, text[:300]))
        found = {}
        for line in text.decode().splitlines():
            m = re.match(r'funcd_memory_budget_bytes\{state="(used|limit)"\} ([0-9.e+]+)$', line)
            if m:
                found[m.group(1)] = float(m.group(2)) / (1 << 20)
        return found.get("used"), found.get("limit")

    def memory_admission(self):
        """The admission the daemon's start-up log names: "observed" or "declared"."""
        m = re.search(r"memory_admission=(\w+)", self.log_text())
        return m.group(1) if m else None

    def workers(self, table=None):
        """{direct child of the daemon: every process of that worker}."""
        return procs.descendants(self.pid, table)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        procs.unregister(self)
        if self.conn:
            self.conn.close()
        leftovers = []
        if self.proc and self.proc.poll() is None:
            below = [procs.identity(p) for tree in self.workers().values() for p in tree]
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)  # it gives invocations in flight up to 30 s
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            # Workers die with the daemon (PDEATHSIG); anything still here is a leak.
            if not procs.wait_gone([i for i in below if i], 5):
                leftovers = procs.kill_idents([i for i in below if i])
        if leftovers:
            print("bench: %s left %d processes behind after stopping; killed them" % (self, len(leftovers)),
                  flush=True)
        if self.log_dir and os.path.exists(self.log_path):
            shutil.copy(self.log_path, os.path.join(self.log_dir, "funcd-%s.log" % self.label))
            # The functions' own logs (START/END/REPORT, runtime errors) next to it.
            logs = os.path.join(self.dir, "logs")
            if os.path.isdir(logs):
                shutil.copytree(logs, os.path.join(self.log_dir, "funcd-%s-logs" % self.label), dirs_exist_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        return leftovers


class Nginx:
    """nginx `return 200` on loopback from Debian's package, with its own config, pid and
    logs in a temporary directory: not the system service."""

    def __init__(self, log_dir=None, workers="auto"):
        self.dir = tempfile.mkdtemp(prefix="funcd-bench-nginx-")
        self.log_dir = log_dir
        self.workers = workers
        self.proc = None
        self.port = None

    def __repr__(self):
        return "nginx"

    def start(self, timeout=10):
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = free_port()
        with open(os.path.join(BENCH_DIR, "nginx.conf.in")) as f:
            conf = string.Template(f.read()).substitute(dir=self.dir, port=self.port, workers=self.workers)
        conf_path = os.path.join(self.dir, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        err = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen([binary, "-p", self.dir, "-c", conf_path, "-e", os.path.join(self.dir, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=err, preexec_fn=procs.die_with_parent)
        err.close()
        procs.register(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("POST", "/", body=b"{}")
                if c.getresponse().status == 200:
                    c.close()
                    return self
            except OSError:
                time.sleep(0.05)
        log = ""
        for name in ("stderr.log", "error.log"):
            try:
                log += open(os.path.join(self.dir, name)).read()
            except OSError:
                pass
        self.stop()
        raise StartError("nginx did not start", log)

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        procs.unregister(self)
        if self.proc and self.proc.poll() is None:
            below = [procs.identity(p) for tree in procs.descendants(self.proc.pid).values() for p in tree]
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            procs.wait_gone([i for i in below if i], 5)
            procs.kill_idents([i for i in below if i])
        if self.log_dir:
            for name in ("error.log", "stderr.log"):
                p = os.path.join(self.dir, name)
                if os.path.exists(p) and os.path.getsize(p):
                    shutil.copy(p, os.path.join(self.log_dir, "nginx-" + name))
        shutil.rmtree(self.dir, ignore_errors=True)


class Postgres:
    """Debian's PostgreSQL 15 on loopback: initdb into a temporary directory with
    wal_level = logical, started with pg_ctl on a free port (as the postgres user when run
    as root: initdb refuses root). SQL goes through psql over its unix socket."""

    BIN = "/usr/lib/postgresql/15/bin"

    def __init__(self, log_dir=None):
        self.dir = tempfile.mkdtemp(prefix="funcd-bench-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log_dir = log_dir
        self.port = None
        self.running = False

    def __repr__(self):
        return "postgres"

    def _as_postgres(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ["/usr/sbin/runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)

    def start(self):
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres([os.path.join(self.BIN, "initdb"), "-D", self.data, "-U", "postgres", "-A", "trust"])
        self.port = free_port()
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            # fsync off: the disk's flush of each commit (milliseconds, and over a hundred at
            # the p99 on this VM's disk) is the server's cost, not funcd's, and would swamp
            # commit-to-invoke.
            f.write("\nwal_level = logical\nmax_replication_slots = 10\nmax_wal_senders = 10\nfsync = off\n"
                    "listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"
                    % (self.port, self.dir))
        procs.register(self)
        self._as_postgres([os.path.join(self.BIN, "pg_ctl"), "-D", self.data, "-l",
                           os.path.join(self.dir, "server.log"), "-w", "-t", "60", "start"])
        self.running = True
        return self

    def conninfo(self):
        return "host=127.0.0.1 port=%d user=postgres dbname=postgres" % self.port

    def sql(self, text):
        """Runs `text` (statements separated by ;) and returns psql's unaligned rows."""
        r = self._as_postgres(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p",
                               str(self.port), "-U", "postgres", "-d", "postgres", "-c", text])
        return r.stdout

    def stop(self):
        procs.unregister(self)
        if self.running:
            try:
                self._as_postgres([os.path.join(self.BIN, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w",
                                   "stop"])
            except subprocess.CalledProcessError:
                pass
            self.running = False
        if self.log_dir and os.path.exists(os.path.join(self.dir, "server.log")):
            shutil.copy(os.path.join(self.dir, "server.log"), os.path.join(self.log_dir, "postgres.log"))
        shutil.rmtree(self.dir, ignore_errors=True)
