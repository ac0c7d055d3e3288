// A Node.js worker runs under exactly the sandbox a Python one does: V8's JIT (executable
// memory) and Node's threads work without anything of the sandbox opened for them, and what
// the sandbox takes away stays away from JavaScript (and from a child process it spawns).
// The worker is forked from a runtime template (templates are on by default), and once
// with templates off, started plainly.
#include "sandbox_support.hpp"

namespace funcd::testing::sandbox {
namespace {

const char* kNodeProbe = R"(const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const errno = (fn) => { try { fn(); return null; } catch (e) { return e.code; } };
const status = (key) => (fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp('^' + key + ':\\s*(.*)$', 'm')) || [])[1];

// Hot enough for V8's optimising compilers: its code lives in memory it maps executable.
function hot(n) { let s = 0; for (let i = 0; i < n; i++) s = (s + i * i) % 1000003; return s; }

exports.handler = async (event) => {
  let sum = 0;
  for (let round = 0; round < 200; round++) sum += hot(20000);
  // Work on libuv's thread pool (fs, crypto): threads of the worker.
  await Promise.all([1, 2, 3, 4].map(() => new Promise((ok) => require('node:crypto').pbkdf2('p', 's', 1000, 32, 'sha256', ok))));
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n');
  return {
    sum, cmdline: fs.readFileSync('/proc/self/cmdline', 'utf8'),
    seccomp: status('Seccomp'), noNewPrivs: status('NoNewPrivs'), capEff: status('CapEff'), threads: Number(status('Threads')),
    uid: process.getuid(),
    // Executable mappings backed by no file (and not [vdso]): what a JIT writes code into.
    anonymousExecutable: maps.map((l) => l.trim().split(/\s+/)).filter((f) => f.length === 5 && f[1][2] === 'x').length,
    shadow: errno(() => fs.readFileSync('/etc/shadow')),
    database: errno(() => fs.readFileSync(event.database)),
    writeTask: errno(() => fs.writeFileSync('/var/task/x', 'x')),
    writeRuntime: errno(() => fs.writeFileSync('/var/runtime/nodejs/bootstrap.js', 'x')),
    daemonProc: errno(() => fs.readFileSync('/proc/' + event.daemon_pid + '/cmdline')),
    childUid: execFileSync('/usr/bin/id', ['-u']).toString().trim(),
    childSeccomp: execFileSync('/bin/sh', ['-c', 'grep ^Seccomp: /proc/self/status']).toString().trim(),
    // The sockets the runtime holds (the Runtime API's connection among them) that a process
    // the handler starts holds too.
    leakedSockets: ((mine) => execFileSync('/bin/sh', ['-c', 'for f in /proc/$$/fd/*; do readlink $f; done; exit 0']).toString()
      .split('\n').filter((l) => mine.includes(l)))(fs.readdirSync('/proc/self/fd').filter((fd) => Number(fd) > 2)
      .map((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd); } catch { return ''; } })
      .filter((l) => l.startsWith('socket:'))),
    ownSockets: fs.readdirSync('/proc/self/fd').filter((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd).startsWith('socket:'); } catch { return false; } }).length,
  };
};
)";

class NodeSandbox : public SandboxAttack, public ::testing::WithParamInterface<bool> {};

TEST_P(NodeSandbox, NodeWorkerJitsAndThreadsUnderTheSameSandbox) {
    const bool templates = GetParam();
    auto d = start({"--runtime-templates", templates ? "on" : "off"});
    auto dep = d->deploy("node-probe", {{"runtime", "nodejs20.x"}, {"handler", "index.handler"}, {"timeout_s", 20}},
                         make_zip({{"index.js", {kNodeProbe, 0644}}}));
    ASSERT_EQ(dep.status, 201) << dep.body;
    auto r = d->invoke("node-probe",
                       json{{"daemon_pid", d->pid()}, {"database", (d->data_dir() / "funcd.db").string()}}.dump());
    json body = ok_result(r);
    ASSERT_TRUE(body.contains("seccomp")) << r.body;

    EXPECT_EQ(body["cmdline"].get<std::string>().find("template.js") != std::string::npos, templates) << r.body;
    EXPECT_EQ(body["seccomp"], "2") << "the worker's filter is installed";
    EXPECT_EQ(body["noNewPrivs"], "1");
    EXPECT_EQ(body["capEff"], "0000000000000000");
    EXPECT_EQ(body["uid"], 993);
    // libuv's four (and, started plainly, V8's platform threads).
    EXPECT_GT(body["threads"].get<int>(), 4) << "libuv's threads run";
    EXPECT_GT(body["anonymousExecutable"].get<int>(), 0) << "V8's generated code is in anonymous executable memory";
    EXPECT_EQ(body["shadow"], "ENOENT") << "the host's /etc is not the worker's";
    EXPECT_EQ(body["database"], "ENOENT") << "the daemon's data directory is not in the worker's root";
    EXPECT_TRUE(body["writeTask"] == "EROFS" || body["writeTask"] == "EACCES") << body["writeTask"];
    EXPECT_TRUE(body["writeRuntime"] == "EROFS" || body["writeRuntime"] == "EACCES") << body["writeRuntime"];
    EXPECT_EQ(body["daemonProc"], "ENOENT") << "the daemon is not in the worker's PID namespace";
    EXPECT_EQ(body["childUid"], "993");
    EXPECT_EQ(body["childSeccomp"], "Seccomp:\t2") << "a process the handler starts inherits the filter";
    EXPECT_GT(body["ownSockets"], 0) << "the runtime's connection to the Runtime API is a socket";
    // Started plainly, node's start marks the descriptors it was given close-on-exec (the
    // connection has a low number for that); forked from a template, the native half does.
    EXPECT_EQ(body["leakedSockets"], json::array()) << "a process the handler starts holds the runtime's sockets";
    expect_still_serving(*d);
}

INSTANTIATE_TEST_SUITE_P(Templates, NodeSandbox, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Forked" : "Started"; });

}  // namespace
}  // namespace funcd::testing::sandbox
