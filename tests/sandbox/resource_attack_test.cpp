// Resource exhaustion and process escapes: a function tries to take more processes,
// memory, time or disk than its settings give it, or to leave processes running after its
// invocation. Each attack must fail, leave nothing behind, and leave the daemon serving.
#include <cerrno>

#include "sandbox_support.hpp"

namespace funcd::testing::sandbox {
namespace {

// Forks children that hold on to their pid until fork fails (or `cap` is reached).
const char* kForkBomb = R"(
def handler(event, context):
    forked, last, failures = 0, None, 0
    deadline = time.monotonic() + event["seconds"]
    while forked < event["cap"] and time.monotonic() < deadline:
        try:
            pid = os.fork()
        except OSError as e:
            last, failures = e.errno, failures + 1
            if failures >= 50:
                break
            continue
        if pid == 0:
            try:
                mark(event["mark"])
                time.sleep(60)
            finally:
                os._exit(0)
        forked += 1
    return {"forked": forked, "errno": last}
)";

TEST_F(SandboxAttack, ForkBombIsCappedByThePidsLimitAndLeavesNothing) {
    auto d = start();
    const std::string comm = unique_mark("fbomb");
    MarkedProcessReaper reaper{comm};
    // Memory is generous so that the pids limit, not the memory limit, is what stops it: each
    // forked Python child dirties about 0.8 MiB of its parent's pages, so 1024 of them need
    // about 1 GiB, and a 1024 MB limit had the kernel reclaiming until the bomb ran out of time
    // at 863 children. Time too: on a loaded 2-core machine (the rest of the suite running)
    // 1024 forks took over 5 s, and a bomb that runs out of time proves nothing about the limit.
    auto dep = deploy_attack(*d, "forkbomb", kForkBomb, {{"memory_mb", 3072}, {"timeout_s", 30}, {"keep_alive_s", 1}});
    ASSERT_EQ(dep.status, 201) << dep.body;

    auto r = d->invoke("forkbomb", json{{"mark", comm}, {"cap", 1100}, {"seconds", 25}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    RecordProperty("observed", r.body);
    json body = r.json();
    if (r.header("x-funcd-function-error") == "Unhandled") {
        EXPECT_EQ(body["errorType"], "Sandbox.Timedout") << r.body;
    } else {
        ASSERT_TRUE(body["forked"].is_number()) << r.body;
        EXPECT_LT(body["forked"].get<int>(), 1100) << "pids.max 1024 did not stop the fork bomb: " << r.body;
        EXPECT_EQ(body["errno"], EAGAIN) << r.body;
    }

    // keep_alive_s 1: the idle worker is ended, and every process it forked with it.
    EXPECT_TRUE(eventually([&] { return nothing_left_but_baseline(*d) && live_pids_with_comm(comm).empty(); },
                           std::chrono::milliseconds(10000)))
        << "left behind: " << leftover_report(*d) << "; marked alive: " << live_pids_with_comm(comm).size();
    expect_still_serving(*d);
}

const char* kMemoryHog = R"(
def handler(event, context):
    chunks = []
    for _ in range(event["chunks"]):
        chunks.append(b"\x01" * (10 << 20))  # filled, so every page is really used
    return {"allocated_mb": 10 * len(chunks)}
)";

TEST_F(SandboxAttack, MemoryHogIsStoppedAtMemoryMb) {
    auto d = start();
    auto dep = deploy_attack(*d, "hog", kMemoryHog, {{"memory_mb", 128}, {"timeout_s", 10}});
    ASSERT_EQ(dep.status, 201) << dep.body;

    auto r = d->invoke("hog", R"({"chunks": 30})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled") << "300 MB fit in a 128 MB function: " << r.body;
    json body = r.json();
    // Either the kernel's OOM killer ended the worker (reported as Runtime.OutOfMemory), or
    // an allocation failed and Python raised MemoryError itself. Nothing else is acceptable.
    const std::string type = body.value("errorType", "");
    EXPECT_TRUE(type == "Runtime.OutOfMemory" || type == "MemoryError") << r.body;

    // The process never grew past the limit.
    auto records = d->api("GET", "/v1/usage/records?function=hog&limit=1");
    ASSERT_EQ(records.status, 200) << records.body;
    auto list = records.json()["records"];
    ASSERT_EQ(list.size(), 1u) << records.body;
    RecordProperty("observed", r.body + " " + list[0].dump());
    ASSERT_TRUE(list[0]["max_memory_used_mb"].is_number()) << records.body;
    EXPECT_LE(list[0]["max_memory_used_mb"].get<int>(), 128 + 8) << records.body;

    expect_still_serving(*d);
}

TEST_F(SandboxAttack, BusyLoopAndStubbornProcessesEndAtTheTimeout) {
    auto d = start();
    ASSERT_EQ(deploy_attack(*d, "spin", "def handler(event, context):\n    while True:\n        pass\n",
                            {{"timeout_s", 1}})
                  .status,
              201);
    auto start_time = std::chrono::steady_clock::now();
    auto r = d->invoke("spin");
    auto elapsed = std::chrono::steady_clock::now() - start_time;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled");
    EXPECT_EQ(r.json()["errorType"], "Sandbox.Timedout") << r.body;
    EXPECT_LT(elapsed, std::chrono::milliseconds(3500));
    EXPECT_TRUE(eventually([&] { return nothing_left_but_baseline(*d); })) << leftover_report(*d);

    // The main process ignores SIGTERM; a child stops itself (a stopped process does not act
    // on SIGTERM either); then it sleeps past the timeout.
    const std::string comm = unique_mark("stopd");
    MarkedProcessReaper reaper{comm};
    ASSERT_EQ(deploy_attack(*d, "stubborn", R"(
def handler(event, context):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        try:
            mark(event["mark"])
            os.kill(os.getpid(), signal.SIGSTOP)
            time.sleep(1000)
        finally:
            os._exit(0)
    time.sleep(30)
    return "outlived the timeout"
)",
                            {{"timeout_s", 1}})
                  .status,
              201);
    start_time = std::chrono::steady_clock::now();
    r = d->invoke("stubborn", json{{"mark", comm}}.dump());
    elapsed = std::chrono::steady_clock::now() - start_time;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-funcd-function-error"), "Unhandled");
    EXPECT_EQ(r.json()["errorType"], "Sandbox.Timedout") << r.body;
    EXPECT_LT(elapsed, std::chrono::milliseconds(3500));
    EXPECT_TRUE(eventually([&] { return nothing_left_but_baseline(*d) && live_pids_with_comm(comm).empty(); }))
        << "left behind: " << leftover_report(*d) << "; marked alive: " << live_pids_with_comm(comm).size();
    expect_still_serving(*d);
}

// Writes 64 MB files into /tmp until a write fails (or `cap` bytes are written), then
// removes them.
const char* kFillTmp = R"(
def handler(event, context):
    d = "/tmp/funcd-fill-" + event["mark"]
    os.makedirs(d, exist_ok=True)
    chunk = b"\x00" * (8 << 20)
    total, err, i = 0, None, 0
    try:
        while total < event["cap"] and err is None:
            fd = os.open(f"{d}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            i += 1
            try:
                written = 0
                while written < (64 << 20) and total < event["cap"]:
                    try:
                        n = os.write(fd, chunk)
                    except OSError as e:
                        err = e.errno
                        break
                    written += n
                    total += n
            finally:
                os.close(fd)
    finally:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)
    return {"bytes": total, "errno": err, "files": i}
)";

TEST_F(SandboxAttack, FillingTmpStopsAtEphemeralStorageMb) {
    auto d = start();
    // tmpfs pages are charged to the worker's memory cgroup, so memory is set above the
    // /tmp size: the storage limit is what this attack must hit, not the memory limit.
    auto dep = deploy_attack(*d, "filltmp", kFillTmp,
                             {{"memory_mb", 1024}, {"ephemeral_storage_mb", 512}, {"timeout_s", 10}});
    ASSERT_EQ(dep.status, 201) << dep.body;
    EXPECT_EQ(dep.json().value("ephemeral_storage_mb", 0), 512) << dep.body;

    auto start_time = std::chrono::steady_clock::now();
    auto r = d->invoke("filltmp", json{{"mark", unique_mark("t")}, {"cap", 600ll << 20}}.dump());
    json body = ok_result(r);
    EXPECT_LT(std::chrono::steady_clock::now() - start_time, std::chrono::seconds(10));
    ASSERT_TRUE(body["bytes"].is_number()) << r.body;
    const auto bytes = body["bytes"].get<long long>();
    EXPECT_LE(bytes, 512ll << 20) << "/tmp took more than ephemeral_storage_mb: " << r.body;
    EXPECT_GE(bytes, 448ll << 20) << "/tmp is much smaller than ephemeral_storage_mb: " << r.body;
    EXPECT_TRUE(body["errno"] == ENOSPC || body["errno"] == EFBIG) << r.body;

    expect_still_serving(*d);
}

// Leaves a process behind: a grandchild in its own session (so a process-group kill misses
// it), ignoring SIGTERM and SIGHUP, sleeping far longer than any test.
const char* kLeaveBehind = R"(
def handler(event, context):
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                mark(event["mark"])
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                time.sleep(1000)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return "left one behind"
)";

TEST_F(SandboxAttack, BackgroundProcessDoesNotOutliveItsWorker) {
    auto d = start();

    // Ended by deleting the function.
    const std::string deleted = unique_mark("bgdel");
    MarkedProcessReaper reap_deleted{deleted};
    ASSERT_EQ(deploy_attack(*d, "lingerdel", kLeaveBehind).status, 201);
    auto r = d->invoke("lingerdel", json{{"mark", deleted}}.dump());
    EXPECT_EQ(r.body, "\"left one behind\"");
    ASSERT_TRUE(eventually([&] { return !live_pids_with_comm(deleted).empty(); }))
        << "the background process never started: " << r.body;
    EXPECT_EQ(d->api("DELETE", "/v1/functions/lingerdel").status, 204);
    EXPECT_TRUE(eventually([&] { return live_pids_with_comm(deleted).empty() && nothing_left_but_baseline(*d); }))
        << "still running after delete: " << live_pids_with_comm(deleted).size() << " marked; under the daemon: "
        << leftover_report(*d);

    // Ended by keep_alive_s expiring.
    const std::string expired = unique_mark("bgexp");
    MarkedProcessReaper reap_expired{expired};
    ASSERT_EQ(deploy_attack(*d, "lingerexp", kLeaveBehind, {{"keep_alive_s", 1}}).status, 201);
    r = d->invoke("lingerexp", json{{"mark", expired}}.dump());
    EXPECT_EQ(r.body, "\"left one behind\"");
    ASSERT_TRUE(eventually([&] { return !live_pids_with_comm(expired).empty(); }))
        << "the background process never started: " << r.body;
    EXPECT_TRUE(eventually([&] { return live_pids_with_comm(expired).empty() && nothing_left_but_baseline(*d); },
                           std::chrono::milliseconds(6000)))
        << "still running after keep-alive: " << live_pids_with_comm(expired).size()
        << " marked; under the daemon: " << leftover_report(*d);

    expect_still_serving(*d);
}

}  // namespace
}  // namespace funcd::testing::sandbox
