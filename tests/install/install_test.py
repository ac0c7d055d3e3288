#!/usr/bin/env python3
"""funcd's installation, checked as an admin would meet it.

    tests/install/install_test.py --build-dir BUILD   # package this build tree with cpack
    tests/install/install_test.py --deb FILE          # check a .deb made before (scripts/package)

With --build-dir the tree is packaged (`cpack -G DEB`) into a scratch directory and also
installed with `cmake --install --prefix` under DESTDIR, to check that another prefix gets
a unit naming its own paths. Then, on the .deb:
  - its control data: name, version, architecture, file name, Depends naming the Debian
    package of every shared library the binary loads, conffiles, maintainer scripts;
  - its files: the binary, funcd-init, the runtimes, the unit, the environment file, docs;
  - the unit: `systemd-analyze verify` where systemd-analyze exists, and its keys parsed;
  - the postinst in a root without a running systemd (stand-ins record what it calls);
  - `dpkg -x` into a scratch root, then that binary started against a temporary data
    directory with NOTIFY_SOCKET and WATCHDOG_USEC set: READY=1 arrives only once its port
    answers, WATCHDOG=1 keeps coming, it uses the runtimes and funcd-init of the scratch
    root, a python3 function deploys and answers, and SIGTERM brings STOPPING=1 and exit 0.
Nothing is installed into the machine's root. Needs root (the sandbox does); fails without.
Ends with the line 'N passed, N failed'.
"""
import argparse
import glob
import http.client
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile

TOKEN = "install-test-token"
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+")

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}" + (f": {detail}" if detail else ""))
    return ok


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def build_deb(build_dir, scratch):
    out = os.path.join(scratch, "pkg")
    started = time.monotonic()
    # zstd instead of the release package's xz: compressing a sanitizer build's binary (a few
    # hundred MB) with xz or gzip takes minutes on a loaded machine, zstd about a second.
    r = subprocess.run(["cpack", "-G", "DEB", "--config", os.path.join(build_dir, "CPackConfig.cmake"), "-B", out,
                        "-D", "CPACK_DEBIAN_COMPRESSION_TYPE=zstd"], text=True, capture_output=True)
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-4000:])
        raise SystemExit("cpack failed")
    debs = glob.glob(os.path.join(out, "*.deb"))
    print(f"info cpack made {[os.path.basename(d) for d in debs]} in {time.monotonic() - started:.1f} s")
    if len(debs) != 1:
        raise SystemExit(f"cpack made {debs}, expected one .deb")
    return debs[0]


def check_control(deb, scratch):
    fields = {}
    for name in ["Package", "Version", "Architecture", "Depends", "Recommends", "Section", "Maintainer", "Description"]:
        fields[name] = run(["dpkg-deb", "-f", deb, name]).strip()
    check(fields["Package"] == "funcd", "Package: funcd", fields["Package"])
    check(VERSION_RE.match(fields["Version"]) is not None, "Version", fields["Version"])
    arch = run(["dpkg", "--print-architecture"]).strip()
    check(fields["Architecture"] == arch, f"Architecture: {arch}", fields["Architecture"])
    check(os.path.basename(deb) == f"funcd_{fields['Version']}_{arch}.deb", "file name funcd_<version>_<arch>.deb",
          os.path.basename(deb))
    check(bool(fields["Maintainer"]) and bool(fields["Description"]), "Maintainer and Description")
    check("python3" in fields["Recommends"], "Recommends python3", fields["Recommends"])

    ctrl = os.path.join(scratch, "control")
    run(["dpkg-deb", "-e", deb, ctrl])
    with open(os.path.join(ctrl, "conffiles")) as f:
        conffiles = f.read().split()
    check(conffiles == ["/etc/default/funcd"], "conffiles: /etc/default/funcd", str(conffiles))
    for script in ["postinst", "prerm", "postrm"]:
        path = os.path.join(ctrl, script)
        ok = os.path.isfile(path) and os.access(path, os.X_OK)
        check(ok, f"maintainer script {script} present and executable")
        if ok:
            r = subprocess.run(["sh", "-n", path], capture_output=True, text=True)
            check(r.returncode == 0, f"{script} is valid sh", r.stderr)
    with open(os.path.join(ctrl, "postrm")) as f:
        postrm = f.read()
    check(re.search(r"purge\)[\s\S]*rm -rf /var/lib/funcd", postrm) is not None, "postrm purge removes /var/lib/funcd")
    check(re.search(r"remove\)(?:(?!;;)[\s\S])*rm -rf /var/lib", postrm) is None, "postrm remove keeps /var/lib/funcd")
    return fields, ctrl


def check_depends(depends, root):
    """Every shared library the binary links (its NEEDED entries) comes from a package the
    .deb depends on (by name, or by a name that package provides)."""
    names = {re.split(r"[\s(]", d.strip())[0] for alt in depends.split(",") for d in alt.split("|") if d.strip()}
    binary = os.path.join(root, "usr/bin/funcd")
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", binary]))
    resolved = {}
    for line in run(["ldd", binary]).splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s*(/\S+)", line)
        if m:
            resolved[m.group(1)] = m.group(2)
    check(len(needed) >= 5, "readelf lists the binary's shared libraries", str(needed))
    for soname in needed:
        lib = resolved.get(soname, "")
        owner = None
        for candidate in (lib, lib.replace("/usr/lib/", "/lib/", 1), lib.replace("/lib/", "/usr/lib/", 1)):
            r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True) if lib else None
            if r is not None and r.returncode == 0:
                owner = r.stdout.split(":")[0].strip()
                break
        provides = set()
        if owner:
            text = run(["dpkg-query", "-W", "-f=${Provides}", owner])
            provides = {re.split(r"[\s(]", p.strip())[0] for p in text.split(",") if p.strip()}
        check(owner is not None and (owner in names or provides & names), f"Depends names {owner} for {soname}",
              f"Depends: {depends}")


def check_contents(deb):
    listing = run(["dpkg-deb", "-c", deb])
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines() if line.strip()}
    paths = {p[:-1] if p.endswith("/") and len(p) > 1 else p for p in paths}
    for want in ["/usr/bin/funcd", "/usr/libexec/funcd/funcd-init", "/usr/libexec/funcd/funcd-template.so",
                 "/usr/share/funcd/runtime/python/bootstrap.py", "/usr/share/funcd/runtime/python/funcd_template.py",
                 "/usr/share/funcd/runtime/python/funcd_runtime.py", "/usr/share/funcd/runtime/nodejs/bootstrap.js",
                 "/usr/share/funcd/runtime/nodejs/template.js",
                 "/usr/lib/systemd/system/funcd.service", "/etc/default/funcd", "/usr/share/doc/funcd/README.md",
                 "/usr/share/doc/funcd/operations.md", "/usr/share/doc/funcd/copyright"]:
        check(want in paths, f"the .deb holds {want}")
    stray = [p for p in paths if not (p.startswith("/usr/") or p.startswith("/etc/") or p in ("/", "/usr", "/etc"))]
    check(not stray, "every file is under /usr or /etc", str(stray[:10]))
    check(not any("__pycache__" in p for p in paths), "no compiled bytecode is shipped")
    check(not any("/usr/local" in p for p in paths), "nothing under /usr/local")


def parse_unit(path):
    keys = {}
    section = None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#") or line.startswith(";"):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            k, _, v = line.partition("=")
            keys.setdefault((section, k.strip()), []).append(v.strip())
    return keys


def check_unit(root):
    unit = os.path.join(root, "usr/lib/systemd/system/funcd.service")
    keys = parse_unit(unit)

    def one(section, key):
        v = keys.get((section, key))
        return v[-1] if v else None

    expect = {
        ("Service", "Type"): "notify",
        ("Service", "NotifyAccess"): "main",
        ("Service", "Restart"): "on-failure",
        ("Service", "StateDirectory"): "funcd",
        ("Service", "StateDirectoryMode"): "0700",
        ("Service", "EnvironmentFile"): "-/etc/default/funcd",
        ("Service", "KillMode"): "mixed",
        ("Service", "NoNewPrivileges"): "yes",
        ("Service", "ProtectSystem"): "full",
        ("Service", "PrivateTmp"): "yes",
        ("Install", "WantedBy"): "multi-user.target",
    }
    for (section, key), value in expect.items():
        check(one(section, key) == value, f"unit [{section}] {key}={value}", str(one(section, key)))
    check((one("Service", "ExecStart") or "").startswith("/usr/bin/funcd serve"), "unit ExecStart runs /usr/bin/funcd serve",
          str(one("Service", "ExecStart")))
    check("FUNCD_DATA_DIR=/var/lib/funcd" in keys.get(("Service", "Environment"), []),
          "unit sets FUNCD_DATA_DIR=/var/lib/funcd")
    watchdog = one("Service", "WatchdogSec") or ""
    m = re.fullmatch(r"(\d+)s?", watchdog)
    check(m is not None and int(m.group(1)) > 0, "unit WatchdogSec set", watchdog)
    stop = re.fullmatch(r"(\d+)s?", one("Service", "TimeoutStopSec") or "")
    # The daemon gives in-flight invocations 30 s, then its workers 5 s to exit.
    check(stop is not None and int(stop.group(1)) > 35, "unit TimeoutStopSec outlasts the daemon's own shutdown")
    for off in ["ProtectKernelTunables", "ProtectControlGroups", "ProtectKernelLogs", "ProtectHostname",
                "RestrictNamespaces", "MemoryDenyWriteExecute", "PrivateUsers", "DynamicUser", "User"]:
        check(one("Service", off) in (None, "no", "root"), f"unit leaves {off} off (the sandbox needs it)")

    analyze = shutil.which("systemd-analyze")
    if analyze:
        # verify checks that ExecStart's program exists: a copy of the unit names the
        # extracted one (in a directory of its own, since the file name is the unit name).
        copy_dir = os.path.join(os.path.dirname(root), "unit")
        os.makedirs(copy_dir, exist_ok=True)
        copy = os.path.join(copy_dir, "funcd.service")
        with open(unit) as src, open(copy, "w") as dst:
            dst.write(src.read().replace("ExecStart=/usr/bin/funcd", f"ExecStart={root}/usr/bin/funcd"))
        r = subprocess.run([analyze, "verify", copy], capture_output=True, text=True)
        # It exits 0 on unknown keys and bad values, and names the unit's file when it complains.
        check(r.returncode == 0 and "funcd.service" not in r.stdout + r.stderr, "systemd-analyze verify funcd.service",
              r.stdout + r.stderr)
        r = subprocess.run([analyze, "security", "--offline=true", "--no-pager", copy], capture_output=True, text=True)
        score = [line for line in (r.stdout + r.stderr).splitlines() if "Overall exposure level" in line]
        print(f"info systemd-analyze security --offline: {score[0].strip() if score else (r.stdout + r.stderr)[-300:]}")
    else:
        print("info systemd-analyze is not on this machine: the unit's keys were checked by parsing it only")


def check_environment_file(root):
    with open(os.path.join(root, "etc/default/funcd")) as f:
        text = f.read()
    live = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    check(not live, "every setting in /etc/default/funcd is commented out", str(live))
    for name in ["FUNCD_LISTEN", "FUNCD_DATA_DIR", "FUNCD_API_TOKEN", "FUNCD_AWS_ACCESS_KEY_ID",
                 "FUNCD_AWS_SECRET_ACCESS_KEY", "FUNCD_REGION", "FUNCD_LOG_FORMAT", "FUNCD_ARGS"]:
        check(re.search(rf"^#{name}=", text, re.M) is not None, f"/etc/default/funcd documents {name}")


def check_postinst_without_systemd(ctrl, scratch):
    """A chroot or image build: no /run/systemd/system. The postinst may record enablement
    (deb-systemd-helper) but must start nothing. Stand-ins on PATH record the calls."""
    if os.path.isdir("/run/systemd/system"):
        print("info systemd runs on this machine: the postinst's no-systemd path is not exercised here")
        return
    bindir = os.path.join(scratch, "stand-ins")
    os.makedirs(bindir)
    calls = os.path.join(scratch, "calls")
    for tool in ["deb-systemd-helper", "deb-systemd-invoke", "systemctl"]:
        with open(os.path.join(bindir, tool), "w") as f:
            f.write(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\n'
                    f'case "$*" in *was-enabled*) exit 0 ;; esac\nexit 0\n')
        os.chmod(os.path.join(bindir, tool), 0o755)
    env = dict(os.environ, PATH=bindir + ":/usr/bin:/bin")
    env.pop("DPKG_ROOT", None)
    r = subprocess.run([os.path.join(ctrl, "postinst"), "configure", ""], env=env, capture_output=True, text=True)
    recorded = open(calls).read() if os.path.exists(calls) else ""
    check(r.returncode == 0, "postinst configure succeeds without systemd", r.stderr)
    check("deb-systemd-helper enable funcd.service" in recorded, "postinst enables funcd.service", recorded)
    check("deb-systemd-invoke" not in recorded and "systemctl" not in recorded,
          "postinst starts nothing when systemd does not run", recorded)


class Manager:
    """The service manager's notification socket, in the abstract namespace."""

    def __init__(self):
        self.name = "@funcd-install-test-" + os.urandom(6).hex()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.messages = []

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        self.messages.append(data)
        return data

    def wait_for(self, prefix, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.receive(max(0.05, end - time.monotonic()))
            if m is not None and m.startswith(prefix):
                return m
        return None


def request(port, method, target, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, target, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def python_zip(source):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", source)
    return buf.getvalue()


def check_extracted_daemon(deb, scratch):
    root = os.path.join(scratch, "root")
    run(["dpkg", "-x", deb, root])
    check_unit(root)
    check_environment_file(root)
    check_depends(run(["dpkg-deb", "-f", deb, "Depends"]).strip(), root)

    data = os.path.join(scratch, "data")
    log_path = os.path.join(scratch, "daemon.log")
    manager = Manager()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCD_")}
    env.update(NOTIFY_SOCKET=manager.name, WATCHDOG_USEC="400000", FUNCD_API_TOKEN=TOKEN)
    binary = os.path.join(root, "usr/bin/funcd")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([binary, "serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--log-level", "debug"],
                                cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = manager.wait_for("READY=1", 120)
        log_text = open(log_path).read()
        if not check(ready is not None, "READY=1 arrives", log_text[-3000:]):
            return
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", log_text)
        if not check(m is not None, "the daemon logged its port before READY=1", log_text[-2000:]):
            return
        port = int(m.group(1))
        # The moment READY=1 is heard, the port answers.
        status, _ = request(port, "GET", "/healthz", timeout=5)
        check(status == 200, "GET /healthz answers as soon as READY=1 is heard", str(status))
        check(f"MAINPID={proc.pid}" in ready, "READY=1 carries MAINPID", ready)
        check(not any(msg.startswith("READY=1") for msg in manager.messages[:-1]), "no READY=1 before that one")

        check(f"runtime_dir={root}/usr/share/funcd/runtime" in log_text, "it uses the runtimes of its own tree",
              "\n".join(line for line in log_text.splitlines() if "runtime_dir" in line))
        check(f"PID 1 of every sandbox is {root}/usr/libexec/funcd/funcd-init" in log_text,
              "it uses the funcd-init of its own tree",
              "\n".join(line for line in log_text.splitlines() if "funcd-init" in line))

        auth = {"Authorization": f"Bearer {TOKEN}"}
        code = python_zip("def handler(event, context):\n    return {'message': 'hello, ' + event['name']}\n")
        status, body = request(port, "PUT", "/v1/functions/hello?runtime=python3&handler=app.handler", code,
                               dict(auth, **{"Content-Type": "application/zip"}))
        check(status == 201, "deploy a python3 function", f"{status} {body[:300]!r}")
        status, body = request(port, "POST", "/v1/functions/hello/invoke", b'{"name": "deb"}', auth)
        check(status == 200 and b'"hello, deb"' in body, "invoke it", f"{status} {body[:300]!r}")

        pings_before = sum(1 for msg in manager.messages if msg == "WATCHDOG=1")
        end = time.monotonic() + 3
        while time.monotonic() < end:
            manager.receive(0.2)
        pings = sum(1 for msg in manager.messages if msg == "WATCHDOG=1")
        check(pings - pings_before >= 3, "WATCHDOG=1 keeps coming (WATCHDOG_USEC=400000: every 200 ms)",
              f"{pings - pings_before} in 3 s")
    finally:
        proc.send_signal(signal.SIGTERM)
        stopping = manager.wait_for("STOPPING=1", 40)
        try:
            code = proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    check(stopping is not None, "SIGTERM brings STOPPING=1")
    check(code == 0, "the daemon exits 0 on SIGTERM", f"exit {code}; log: {open(log_path).read()[-2000:]}")


def check_cmake_install(build_dir, scratch):
    """`cmake --install --prefix /opt/funcd`: the unit and the environment file follow."""
    dest = os.path.join(scratch, "dest")
    env = dict(os.environ, DESTDIR=dest)
    subprocess.run(["cmake", "--install", build_dir, "--prefix", "/opt/funcd"], env=env, check=True,
                   capture_output=True, text=True)
    base = os.path.join(dest, "opt/funcd")
    for rel in ["bin/funcd", "libexec/funcd/funcd-init", "libexec/funcd/funcd-template.so",
                "share/funcd/runtime/python/bootstrap.py",
                "lib/systemd/system/funcd.service", "etc/default/funcd", "share/doc/funcd/operations.md"]:
        check(os.path.exists(os.path.join(base, rel)), f"cmake --install --prefix /opt/funcd puts {rel}")
    keys = parse_unit(os.path.join(base, "lib/systemd/system/funcd.service"))
    check(keys.get(("Service", "ExecStart"), [""])[-1].startswith("/opt/funcd/bin/funcd serve"),
          "its unit runs /opt/funcd/bin/funcd", str(keys.get(("Service", "ExecStart"))))
    check(keys.get(("Service", "EnvironmentFile"), [""])[-1] == "-/opt/funcd/etc/default/funcd",
          "its unit reads /opt/funcd/etc/default/funcd", str(keys.get(("Service", "EnvironmentFile"))))
    check(not os.path.exists(os.path.join(dest, "etc")) and not os.path.exists(os.path.join(dest, "usr")),
          "nothing of it lands outside the prefix")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--build-dir", help="a configured and built tree to package with cpack")
    src.add_argument("--deb", help="a .deb made before")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    if os.geteuid() != 0:
        check(False, "running as root (the sandbox of the extracted daemon needs it)")
        print(f"{passed} passed, {failed} failed")
        return 1
    for tool in ["dpkg-deb", "dpkg", "ldd", "readelf"] + (["cpack", "dpkg-shlibdeps"] if args.build_dir else []):
        if not check(shutil.which(tool) is not None, f"{tool} is installed"):
            print(f"{passed} passed, {failed} failed")
            return 1

    scratch = tempfile.mkdtemp(prefix="funcd-install-test-")
    started = time.monotonic()
    try:
        deb = os.path.abspath(args.deb) if args.deb else build_deb(os.path.abspath(args.build_dir), scratch)
        stage = time.monotonic()
        fields, ctrl = check_control(deb, scratch)
        check_contents(deb)
        check_postinst_without_systemd(ctrl, scratch)
        print(f"info the .deb's control data and files checked in {time.monotonic() - stage:.1f} s")
        stage = time.monotonic()
        check_extracted_daemon(deb, scratch)
        print(f"info the extracted daemon checked in {time.monotonic() - stage:.1f} s")
        if args.build_dir:
            check_cmake_install(os.path.abspath(args.build_dir), scratch)
    finally:
        if args.keep:
            print(f"info scratch directory kept: {scratch}")
        else:
            subprocess.run(["rm", "-rf", scratch])
    print(f"info took {time.monotonic() - started:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
