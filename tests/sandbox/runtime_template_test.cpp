// Workers forked from runtime templates (include/funcd/sandbox/runtime_template.hpp):
// the real daemon, real templates and real Python and Node.js workers, as root. A template-born
// worker must be contained exactly as a started one: its own environment and nothing of
// another function's (not even in its memory), its own /tmp, namespaces and cgroup, its
// own random state, killed and metered at its own memory limit; a template killed from
// outside is replaced, one whose function is gone ends, and `--runtime-templates off`
// starts every worker afresh. The same for Node.js workers, which also see their own pid,
// time zone and module paths, and end at once when they exit. The attack suite (this
// directory) runs against template-born Python and Node.js workers too: templates are on
// by default.
#include <signal.h>

#include <set>

#include "exposition_parser.hpp"
#include "sandbox_support.hpp"

namespace funcd::testing::sandbox {
namespace {

// Everything a worker can tell about itself; `secret` is what its function's environment
// says, `other` another function's secret it must not find, in its environment or memory.
// The handler never builds that secret itself (it would then find its own copy): `other`
// is the secret XOR 0x55, in hex, and the search runs over memory XORed the same way.
const char* kIntrospect = R"(
import random, uuid

FLIP = bytes(b ^ 0x55 for b in range(256))

def memory_holds(needle):
    found = False
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    with open("/proc/self/mem", "rb", 0) as mem:
        for r in regions:
            if len(r) < 2 or not r[1].startswith("r") or (len(r) > 5 and r[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in r[0].split("-"))
            try:
                mem.seek(start)
                if needle in mem.read(end - start).translate(FLIP):
                    found = True
            except (OSError, OverflowError, ValueError):
                pass
    return found

def handler(event, context):
    mine = "/tmp/mine-" + uuid.uuid4().hex
    open(mine, "w").close()
    time.sleep(event.get("sleep", 0))
    other = bytes.fromhex(event.get("other", ""))
    mine_flipped = os.environ.get("SECRET", "").encode().translate(FLIP)
    return {
        "cmdline": open("/proc/self/cmdline", "rb").read().replace(b"\0", b" ").decode(),
        "pid": os.getpid(),
        "pid_ns": os.readlink("/proc/self/ns/pid"),
        "net_ns": os.readlink("/proc/self/ns/net"),
        "mnt_ns": os.readlink("/proc/self/ns/mnt"),
        "cgroup": open("/proc/self/cgroup").read(),
        "uid": os.getuid(),
        "tmp": sorted(os.listdir("/tmp")),
        "mine": os.path.basename(mine),
        "random": random.random(),
        "secret": os.environ.get("SECRET"),
        "other_in_env": bool(other) and any(other in v.encode().translate(FLIP) for v in os.environ.values()),
        "other_in_memory": bool(other) and memory_holds(other),
        # The same search for this worker's own secret, which is in its memory: the search works.
        "own_in_memory": bool(mine_flipped) and memory_holds(mine_flipped),
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "argv": sys.argv,
    }
)";

// The same introspection in JavaScript, for Node.js workers.
const char* kIntrospectJs = R"(const fs = require('node:fs');
const crypto = require('node:crypto');

const flip = (buf) => { for (let i = 0; i < buf.length; i++) buf[i] ^= 0x55; return buf; };

function memoryHolds(needle) {
  if (!needle.length) return false;
  const fd = fs.openSync('/proc/self/mem', 'r');
  try {
    for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 2 || f[1][0] !== 'r' || f[5] === '[vvar]' || f[5] === '[vsyscall]') continue;
      const [start, end] = f[0].split('-').map((x) => parseInt(x, 16));
      for (let at = start; at < end; at += 1 << 24) {
        const buf = Buffer.alloc(Math.min(end - at, (1 << 24) + needle.length));
        try {
          const n = fs.readSync(fd, buf, 0, buf.length, at);
          if (flip(buf.subarray(0, n)).indexOf(needle) >= 0) return true;
        } catch {}
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return false;
}

exports.handler = async (event) => {
  const mine = '/tmp/mine-' + crypto.randomUUID();
  fs.writeFileSync(mine, '');
  await new Promise((ok) => setTimeout(ok, (event.sleep || 0) * 1000));
  if (event.exit !== undefined) process.exit(event.exit);
  const other = Buffer.from(event.other || '', 'hex');
  const own = flip(Buffer.from(process.env.SECRET || ''));
  return {
    cmdline: fs.readFileSync('/proc/self/cmdline', 'utf8').split('\0').join(' '),
    pid: process.pid, ppid: process.ppid, realPid: Number(fs.readlinkSync('/proc/self')),
    pid_ns: fs.readlinkSync('/proc/self/ns/pid'), net_ns: fs.readlinkSync('/proc/self/ns/net'),
    mnt_ns: fs.readlinkSync('/proc/self/ns/mnt'),
    uid: process.getuid(),
    tmp: fs.readdirSync('/tmp').sort(), mine: mine.slice(5),
    random: Math.random(), bytes: crypto.randomBytes(16).toString('hex'),
    secret: process.env.SECRET || null,
    otherInEnv: other.length > 0 && Object.values(process.env).some((v) => flip(Buffer.from(v)).indexOf(other) >= 0),
    otherInMemory: memoryHolds(other),
    // The same search for this worker's own secret, which is in its memory: the search works.
    ownInMemory: memoryHolds(own),
    function: process.env.AWS_LAMBDA_FUNCTION_NAME, timezoneOffset: new Date(0).getTimezoneOffset(),
    argv: process.argv, execArgv: process.execArgv, modulePaths: module.paths,
    vmRandom: require('node:vm').runInNewContext('Math.random()'),
  };
};
)";

std::string flipped_hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        const unsigned x = c ^ 0x55U;
        out += digits[x >> 4];
        out += digits[x & 15];
    }
    return out;
}

std::vector<pid_t> templates_of(const Daemon& d) { return funcd::testing::templates_of(d.pid()); }

class RuntimeTemplates : public SandboxAttack {
protected:
    static HttpResult deploy_python(Daemon& d, const std::string& name, json settings = json::object()) {
        return deploy_attack(d, name, kIntrospect, std::move(settings));
    }
    static HttpResult deploy_node(Daemon& d, const std::string& name, json settings = json::object()) {
        settings["runtime"] = "nodejs20.x";
        settings["handler"] = "index.handler";
        if (!settings.contains("timeout_s")) settings["timeout_s"] = 20;
        return d.deploy(name, settings, make_zip({{"index.js", {kIntrospectJs, 0644}}}));
    }
};

// Invokes `name` `n` times at once (each holding its worker for `sleep` s), so that each
// lands on a worker of its own; returns the answers.
std::vector<json> invoke_at_once(Daemon& d, const std::string& name, int n, const json& event) {
    std::vector<json> out(static_cast<std::size_t>(n));
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
            auto r = d.invoke(name, event.dump());
            out[static_cast<std::size_t>(i)] = r.status == 200 ? r.json() : json{{"status", r.status}, {"body", r.body}};
        });
    for (auto& t : threads) t.join();
    return out;
}

TEST_F(RuntimeTemplates, PythonWorkersAreForkedFromTheTemplateAndEachIsItsOwn) {
    auto d = start();
    const std::string secret_a = "secret-a-" + std::to_string(::getpid()) + "-7f3c9e";
    const std::string secret_b = "secret-b-" + std::to_string(::getpid()) + "-1d8a42";
    ASSERT_EQ(deploy_python(*d, "fa", {{"env", {{"SECRET", secret_a}}}}).status, 201);
    ASSERT_EQ(deploy_python(*d, "fb", {{"env", {{"SECRET", secret_b}}}}).status, 201);

    // fb's workers first: the template has forked them before it forks fa's.
    auto b = invoke_at_once(*d, "fb", 2, {{"sleep", 0.3}});
    auto a = invoke_at_once(*d, "fa", 3, {{"sleep", 0.5}, {"other", flipped_hex(secret_b)}});
    for (const json& w : b) ASSERT_TRUE(w.contains("pid")) << w.dump();
    for (const json& w : a) ASSERT_TRUE(w.contains("pid")) << w.dump();

    const auto templates = templates_of(*d);
    ASSERT_EQ(templates.size(), 1u) << "one template for python3, whatever the number of functions";
    std::set<std::string> pid_ns, net_ns, mnt_ns, cgroups;
    std::set<double> randoms;
    for (const json& w : a) {
        EXPECT_NE(w["cmdline"].get<std::string>().find("funcd_template.py"), std::string::npos) << w.dump();
        EXPECT_EQ(w["pid"], 2) << "the runtime is funcd-init's child in a PID namespace of its own";
        EXPECT_EQ(w["secret"], secret_a);
        EXPECT_EQ(w["function"], "fa");
        EXPECT_EQ(w["task_root"], "/var/task");
        EXPECT_EQ(w["argv"], json::array({"/var/runtime/python/bootstrap.py"}));
        EXPECT_EQ(w["uid"], 993);
        EXPECT_FALSE(w["other_in_env"].get<bool>()) << w.dump();
        EXPECT_FALSE(w["other_in_memory"].get<bool>()) << "fb's secret is in a worker of fa: " << w.dump();
        EXPECT_TRUE(w["own_in_memory"].get<bool>()) << "the memory search cannot find even its own secret";
        // Its /tmp holds only what it wrote.
        EXPECT_EQ(w["tmp"], json::array({w["mine"]})) << w.dump();
        pid_ns.insert(w["pid_ns"].get<std::string>());
        net_ns.insert(w["net_ns"].get<std::string>());
        mnt_ns.insert(w["mnt_ns"].get<std::string>());
        cgroups.insert(w["cgroup"].get<std::string>());
        randoms.insert(w["random"].get<double>());
    }
    EXPECT_EQ(pid_ns.size(), 3u);
    EXPECT_EQ(net_ns.size(), 3u);
    EXPECT_EQ(mnt_ns.size(), 3u);
    EXPECT_EQ(randoms.size(), 3u) << "siblings forked from one template drew the same random numbers";
    for (const json& w : b) EXPECT_EQ(w["secret"], secret_b);

    // The template itself holds no function's environment.
    const std::string environ = read_proc_file(templates[0], "environ");
    EXPECT_EQ(environ.find(secret_a), std::string::npos);
    EXPECT_EQ(environ.find("SECRET"), std::string::npos);
    expect_still_serving(*d);
}

TEST_F(RuntimeTemplates, NodeWorkersAreForkedFromTheTemplateAndEachIsItsOwn) {
    auto d = start();
    const std::string secret_a = "secret-na-" + std::to_string(::getpid()) + "-93b1c7";
    const std::string secret_b = "secret-nb-" + std::to_string(::getpid()) + "-2e6f05";
    ASSERT_EQ(deploy_node(*d, "na", {{"env", {{"SECRET", secret_a}, {"TZ", "Asia/Tokyo"}}}}).status, 201);
    ASSERT_EQ(deploy_node(*d, "nb", {{"env", {{"SECRET", secret_b}}}}).status, 201);

    auto b = invoke_at_once(*d, "nb", 2, {{"sleep", 0.5}});
    auto a = invoke_at_once(*d, "na", 3, {{"sleep", 1.0}, {"other", flipped_hex(secret_b)}});
    for (const json& w : b) ASSERT_TRUE(w.contains("pid")) << w.dump();
    for (const json& w : a) ASSERT_TRUE(w.contains("pid")) << w.dump();

    const auto templates = templates_of(*d);
    ASSERT_EQ(templates.size(), 2u) << "python3's (the benign function) and node's at 128 MB";
    std::set<std::string> pid_ns, net_ns, mnt_ns, bytes;
    std::set<double> randoms, vm_randoms;
    for (const json& w : a) {
        EXPECT_NE(w["cmdline"].get<std::string>().find("template.js"), std::string::npos) << w.dump();
        EXPECT_EQ(w["pid"], 2) << "process.pid is the runtime's own, not the template's: " << w.dump();
        EXPECT_EQ(w["realPid"], 2);
        EXPECT_EQ(w["ppid"], 1) << "funcd-init is its parent";
        EXPECT_EQ(w["secret"], secret_a);
        EXPECT_EQ(w["function"], "na");
        EXPECT_EQ(w["timezoneOffset"], -540) << "the function's TZ is applied";
        EXPECT_EQ(w["argv"], json::array({"/usr/bin/node", "/var/runtime/nodejs/bootstrap.js"})) << w.dump();
        for (const json& flag : w["execArgv"]) EXPECT_NE(flag, "--single-threaded") << w.dump();
        EXPECT_NE(w["modulePaths"].dump().find("/var/task/node_modules"), std::string::npos) << w.dump();
        EXPECT_EQ(w["uid"], 993);
        EXPECT_FALSE(w["otherInEnv"].get<bool>()) << w.dump();
        EXPECT_FALSE(w["otherInMemory"].get<bool>()) << "nb's secret is in a worker of na: " << w.dump();
        EXPECT_TRUE(w["ownInMemory"].get<bool>()) << "the memory search cannot find even its own secret";
        EXPECT_EQ(w["tmp"], json::array({w["mine"]})) << w.dump();
        pid_ns.insert(w["pid_ns"].get<std::string>());
        net_ns.insert(w["net_ns"].get<std::string>());
        mnt_ns.insert(w["mnt_ns"].get<std::string>());
        randoms.insert(w["random"].get<double>());
        vm_randoms.insert(w["vmRandom"].get<double>());
        bytes.insert(w["bytes"].get<std::string>());
    }
    EXPECT_EQ(pid_ns.size(), 3u);
    EXPECT_EQ(net_ns.size(), 3u);
    EXPECT_EQ(mnt_ns.size(), 3u);
    EXPECT_EQ(randoms.size(), 3u) << "siblings forked from one template drew the same Math.random()";
    EXPECT_EQ(vm_randoms.size(), 3u) << "siblings' node:vm contexts drew the same Math.random()";
    EXPECT_EQ(bytes.size(), 3u) << "siblings drew the same crypto.randomBytes()";
    for (const json& w : b) {
        EXPECT_EQ(w["secret"], secret_b);
        EXPECT_EQ(w["timezoneOffset"], 0);
    }

    // The templates hold no function's environment.
    for (pid_t t : templates) {
        const std::string environ = read_proc_file(t, "environ");
        EXPECT_EQ(environ.find("SECRET"), std::string::npos);
        EXPECT_EQ(environ.find("Asia/Tokyo"), std::string::npos);
    }
    // Another heap size is another template.
    ASSERT_EQ(deploy_node(*d, "big", {{"memory_mb", 512}}).status, 201);
    auto big = d->invoke("big");
    ASSERT_EQ(big.status, 200) << big.body;
    EXPECT_NE(big.json()["cmdline"].get<std::string>().find("--max-old-space-size=361"), std::string::npos) << big.body;
    EXPECT_EQ(templates_of(*d).size(), 3u);
    // /metrics counts them, by runtime.
    const auto metrics = parse_exposition(d->api("GET", "/metrics").body, false);
    EXPECT_EQ(metrics.value("funcd_runtime_templates", {{"runtime", "python"}}), 1);
    EXPECT_EQ(metrics.value("funcd_runtime_templates", {{"runtime", "node"}}), 2);
    expect_still_serving(*d);
}

TEST_F(RuntimeTemplates, ANodeWorkerThatExitsEndsAtOnceAndOneThatSetsNodeOptionsStartsPlainly) {
    auto d = start();
    ASSERT_EQ(deploy_node(*d, "quits").status, 201);
    auto first = d->invoke("quits");
    ASSERT_EQ(first.status, 200) << first.body << d->log();
    // process.exit in a forked runtime does not wait for the template's threads.
    const auto asked = std::chrono::steady_clock::now();
    auto r = d->invoke("quits", R"({"exit": 3})");
    const auto took = std::chrono::steady_clock::now() - asked;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json().value("errorType", ""), "Runtime.ExitError") << r.body;
    EXPECT_NE(r.body.find("exit status 3"), std::string::npos) << r.body;
    EXPECT_LT(took, std::chrono::seconds(5)) << "the exit waited for its timeout";
    auto again = d->invoke("quits");
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_NE(again.json()["cmdline"].get<std::string>().find("template.js"), std::string::npos) << again.body;

    // NODE_OPTIONS is read only as node starts: such a function is not forked.
    ASSERT_EQ(deploy_node(*d, "opts", {{"env", {{"NODE_OPTIONS", "--no-warnings"}}}}).status, 201);
    auto plain = d->invoke("opts");
    ASSERT_EQ(plain.status, 200) << plain.body;
    EXPECT_NE(plain.json()["cmdline"].get<std::string>().find("bootstrap.js"), std::string::npos) << plain.body;
    EXPECT_EQ(plain.json()["cmdline"].get<std::string>().find("template.js"), std::string::npos) << plain.body;
    EXPECT_NE(d->log().find("NODE_OPTIONS is read by Node.js only as it starts"), std::string::npos);
    expect_still_serving(*d);
}

TEST_F(RuntimeTemplates, ANodeMemoryHogIsKilledAtItsOwnLimitAndMeteredWithItsOwnPeak) {
    auto d = start();
    // Buffers live outside V8's heap: only the cgroup's limit stops them.
    const char* hog = R"(exports.handler = async (event) => {
  const chunks = [];
  for (let i = 0; i < event.chunks; i++) chunks.push(Buffer.alloc(10 << 20, 1));
  return { allocatedMb: 10 * chunks.length, cmdline: require('node:fs').readFileSync('/proc/self/cmdline', 'utf8') };
};
)";
    for (const auto& [name, mb] : {std::pair{"nhog", 128}, std::pair{"ngrow", 256}}) {
        auto dep = d->deploy(name, {{"runtime", "nodejs20.x"}, {"handler", "index.handler"}, {"memory_mb", mb},
                                    {"timeout_s", 10}},
                             make_zip({{"index.js", {hog, 0644}}}));
        ASSERT_EQ(dep.status, 201) << dep.body;
    }
    auto ok = d->invoke("ngrow", R"({"chunks": 8})");
    ASSERT_EQ(ok.status, 200) << ok.body;
    ASSERT_EQ(ok.json()["allocatedMb"], 80) << ok.body;
    EXPECT_NE(ok.json()["cmdline"].get<std::string>().find("template.js"), std::string::npos) << ok.body;
    auto grown = usage_record(*d, "ngrow", ok.header("x-funcd-request-id"));
    ASSERT_TRUE(grown["max_memory_used_mb"].is_number()) << grown.dump();
    EXPECT_GE(grown["max_memory_used_mb"].get<int>(), 80) << grown.dump();
    EXPECT_LE(grown["max_memory_used_mb"].get<int>(), 256) << grown.dump();

    auto r = d->invoke("nhog", R"({"chunks": 30})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled") << "300 MB fit in a 128 MB function: " << r.body;
    EXPECT_EQ(r.json().value("errorType", ""), "Runtime.OutOfMemory") << r.body;
    auto rec = usage_record(*d, "nhog", r.header("x-funcd-request-id"));
    ASSERT_TRUE(rec["max_memory_used_mb"].is_number()) << rec.dump();
    EXPECT_LE(rec["max_memory_used_mb"].get<int>(), 128 + 8) << rec.dump();
    EXPECT_GE(rec["max_memory_used_mb"].get<int>(), 100) << rec.dump();
    // The kernel killed the worker, not a template.
    EXPECT_EQ(templates_of(*d).size(), 3u) << "python3's, and node's at 128 and at 256 MB";
    expect_still_serving(*d);
}

TEST_F(RuntimeTemplates, AMemoryHogIsKilledAtItsOwnLimitAndMeteredWithItsOwnPeak) {
    auto d = start();
    const char* hog = R"(
def handler(event, context):
    chunks = []
    for _ in range(event["chunks"]):
        chunks.append(b"\x01" * (10 << 20))
    return {"allocated_mb": 10 * len(chunks), "cmdline": open("/proc/self/cmdline", "rb").read().decode(errors="replace")}
)";
    ASSERT_EQ(deploy_attack(*d, "hog", hog, {{"memory_mb", 128}, {"timeout_s", 10}}).status, 201);
    ASSERT_EQ(deploy_attack(*d, "grow", hog, {{"memory_mb", 256}, {"timeout_s", 10}}).status, 201);

    auto ok = d->invoke("grow", R"({"chunks": 8})");
    ASSERT_EQ(ok.status, 200) << ok.body;
    ASSERT_EQ(ok.json()["allocated_mb"], 80) << ok.body;
    EXPECT_NE(ok.json()["cmdline"].get<std::string>().find("funcd_template.py"), std::string::npos) << ok.body;
    auto grown = usage_record(*d, "grow", ok.header("x-funcd-request-id"));
    ASSERT_TRUE(grown["max_memory_used_mb"].is_number()) << grown.dump();
    // Its own 80 MB, counted in its own cgroup (the template's pages it shares are not).
    EXPECT_GE(grown["max_memory_used_mb"].get<int>(), 80) << grown.dump();
    EXPECT_LE(grown["max_memory_used_mb"].get<int>(), 256) << grown.dump();

    auto r = d->invoke("hog", R"({"chunks": 30})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled") << "300 MB fit in a 128 MB function: " << r.body;
    const std::string type = r.json().value("errorType", "");
    EXPECT_TRUE(type == "Runtime.OutOfMemory" || type == "MemoryError") << r.body;
    auto rec = usage_record(*d, "hog", r.header("x-funcd-request-id"));
    ASSERT_TRUE(rec["max_memory_used_mb"].is_number()) << rec.dump();
    EXPECT_LE(rec["max_memory_used_mb"].get<int>(), 128 + 8) << rec.dump();
    EXPECT_GE(rec["max_memory_used_mb"].get<int>(), 100) << rec.dump();

    // The template was not what the kernel killed.
    EXPECT_EQ(templates_of(*d).size(), 1u);
    expect_still_serving(*d);
}

TEST_F(RuntimeTemplates, ATemplateKilledFromOutsideIsReplacedAndWarmWorkersLiveOn) {
    auto d = start();
    ASSERT_EQ(deploy_python(*d, "first").status, 201);
    auto before = d->invoke("first");
    ASSERT_EQ(before.status, 200) << before.body;
    const auto templates = templates_of(*d);
    ASSERT_EQ(templates.size(), 1u);
    const pid_t old = templates[0];
    ASSERT_EQ(::kill(old, SIGKILL), 0);
    ASSERT_TRUE(eventually([&] { return read_proc_file(old, "cmdline").empty(); }));

    // The warm worker forked from it is the daemon's child and lives on.
    auto warm = d->invoke("first");
    ASSERT_EQ(warm.status, 200) << warm.body;
    EXPECT_EQ(warm.json()["pid_ns"], before.json()["pid_ns"]) << "the warm worker was replaced";

    // The next cold start gets a new template.
    ASSERT_EQ(deploy_python(*d, "second").status, 201);
    auto cold = d->invoke("second");
    ASSERT_EQ(cold.status, 200) << cold.body;
    EXPECT_NE(cold.json()["cmdline"].get<std::string>().find("funcd_template.py"), std::string::npos) << cold.body;
    const auto now = templates_of(*d);
    ASSERT_EQ(now.size(), 1u);
    EXPECT_NE(now[0], old);
    EXPECT_NE(d->log().find("is not usable"), std::string::npos) << "the replacement was not logged";
    expect_still_serving(*d);
}

TEST_F(RuntimeTemplates, TheTemplateEndsWithTheLastPythonFunction) {
    auto d = std::make_unique<Daemon>();
    ASSERT_EQ(deploy_python(*d, "only").status, 201);
    ASSERT_EQ(d->invoke("only").status, 200);
    ASSERT_EQ(templates_of(*d).size(), 1u);
    ASSERT_EQ(d->api("DELETE", "/v1/functions/only").status / 100, 2);
    EXPECT_TRUE(eventually([&] { return templates_of(*d).empty(); }, std::chrono::milliseconds(10000)))
        << "a template outlived every function of its runtime";
}

TEST_F(RuntimeTemplates, WithTemplatesOffEveryWorkerStartsItsOwnInterpreter) {
    auto d = start({"--runtime-templates", "off"});
    const std::string secret = "secret-off-5b7e";
    ASSERT_EQ(deploy_python(*d, "plain", {{"env", {{"SECRET", secret}}}}).status, 201);
    auto w = invoke_at_once(*d, "plain", 2, {{"sleep", 0.3}});
    for (const json& x : w) {
        ASSERT_TRUE(x.contains("cmdline")) << x.dump();
        EXPECT_NE(x["cmdline"].get<std::string>().find("bootstrap.py"), std::string::npos) << x.dump();
        EXPECT_EQ(x["cmdline"].get<std::string>().find("funcd_template.py"), std::string::npos) << x.dump();
        EXPECT_EQ(x["secret"], secret);
    }
    EXPECT_NE(w[0]["random"], w[1]["random"]);
    EXPECT_TRUE(templates_of(*d).empty());
    expect_still_serving(*d);
}

TEST_F(RuntimeTemplates, PreloadedModulesAreLoadedBeforeTheFunctionStarts) {
    auto d = start({"--preload-modules", "xml.dom.minidom,decimal"});
    const char* probe = R"(
import sys
LOADED_AT_IMPORT = {m: m in sys.modules for m in ("xml.dom.minidom", "decimal", "fractions")}

def handler(event, context):
    return {"loaded": LOADED_AT_IMPORT, "cmdline": open("/proc/self/cmdline", "rb").read().decode(errors="replace")}
)";
    auto ok = deploy_attack(*d, "pre", probe, {{"preload", {"xml.dom.minidom", "decimal"}}});
    ASSERT_EQ(ok.status, 201) << ok.body;
    EXPECT_EQ(ok.json()["preload"], json::array({"xml.dom.minidom", "decimal"}));
    ASSERT_EQ(deploy_attack(*d, "plain", probe).status, 201);

    auto pre = d->invoke("pre");
    ASSERT_EQ(pre.status, 200) << pre.body;
    EXPECT_TRUE(pre.json()["loaded"]["xml.dom.minidom"].get<bool>()) << pre.body;
    EXPECT_TRUE(pre.json()["loaded"]["decimal"].get<bool>()) << pre.body;
    EXPECT_FALSE(pre.json()["loaded"]["fractions"].get<bool>()) << pre.body;
    EXPECT_NE(pre.json()["cmdline"].get<std::string>().find("xml.dom.minidom"), std::string::npos) << pre.body;
    auto plain = d->invoke("plain");
    ASSERT_EQ(plain.status, 200) << plain.body;
    EXPECT_FALSE(plain.json()["loaded"]["xml.dom.minidom"].get<bool>()) << plain.body;
    EXPECT_EQ(templates_of(*d).size(), 2u) << "the preloading template is one of its own";

    // A module the daemon was not started to allow is refused, naming it.
    auto refused = deploy_attack(*d, "greedy", probe, {{"preload", {"decimal", "antigravity"}}});
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_NE(refused.body.find("antigravity"), std::string::npos) << refused.body;
    EXPECT_NE(refused.body.find("--preload-modules"), std::string::npos) << refused.body;
    expect_still_serving(*d);
}

TEST_F(RuntimeTemplates, ATemplateThatCannotStartLeavesWorkersToStartPlainly) {
    // A module the host's Python does not have: the template dies importing it.
    auto d = start({"--preload-modules", "funcd_no_such_module"});
    auto dep = deploy_python(*d, "missing", {{"preload", {"funcd_no_such_module"}}});
    ASSERT_EQ(dep.status, 201) << dep.body;
    auto r = d->invoke("missing");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.json()["cmdline"].get<std::string>().find("bootstrap.py"), std::string::npos) << r.body;
    EXPECT_NE(d->log().find("starts without its template"), std::string::npos);
    expect_still_serving(*d);
}

}  // namespace
}  // namespace funcd::testing::sandbox
