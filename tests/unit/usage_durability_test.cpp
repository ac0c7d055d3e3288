// Metering that cannot lose or hang: a journal that cannot be written refuses new work and
// recovers by itself; a locked database bounds flushes, queries and shutdown; retention.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "sqlite_lock.hpp"
#include "usage_test_support.hpp"

namespace funcd {
namespace {

using namespace usage_testing;
using std::chrono::milliseconds;
using std::chrono::seconds;
using UsageDurabilityTest = UsageStoreTest;

template <class Pred>
bool eventually(Pred pred, milliseconds timeout = milliseconds(10'000)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(milliseconds(10));
    }
    return pred();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A small tmpfs, so "the disk is full" is real. Needs root (CAP_SYS_ADMIN), which the
// suite runs as; without it the test fails rather than skips.
class Tmpfs {
public:
    Tmpfs(const fs::path& at, std::size_t bytes) : at_(at) {
        fs::create_directories(at);
        const std::string options = "size=" + std::to_string(bytes) + ",mode=0700";
        mounted_ = ::mount("tmpfs", at.c_str(), "tmpfs", 0, options.c_str()) == 0;
        error_ = errno;
    }
    ~Tmpfs() {
        if (mounted_) ::umount2(at_.c_str(), MNT_DETACH);
    }
    bool mounted() const { return mounted_; }
    std::string error() const { return std::strerror(error_); }
    // Takes every free byte (again: pages the journal gives back by deleting a committed
    // segment are taken too).
    void fill() const {
        const int fd = ::open((at_ / "filler").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        const std::string block(4096, 'x');
        while (::write(fd, block.data(), block.size()) > 0) {
        }
        // The last partial page too.
        while (::write(fd, block.data(), 1) > 0) {
        }
        ::close(fd);
    }
    void unfill() const { fs::remove(at_ / "filler"); }

private:
    fs::path at_;
    bool mounted_ = false;
    int error_ = 0;
};


void expect_unavailable(const std::function<void()>& f, const std::string& part) {
    try {
        f();
        ADD_FAILURE() << "no error";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 503);
        EXPECT_EQ(e.type(), "StorageUnavailableException");
        EXPECT_TRUE(contains(e.what(), part)) << e.what();
    }
}

// Each line of each segment is a whole record; a segment never ends inside a line.
void expect_whole_lines(const fs::path& journal_dir) {
    for (const auto& s : segments(journal_dir)) {
        const std::string text = read_all(s);
        EXPECT_TRUE(text.empty() || text.back() == '\n') << s << " ends in a torn line";
        std::size_t pos = 0;
        for (auto nl = text.find('\n'); nl != std::string::npos; pos = nl + 1, nl = text.find('\n', pos)) {
            auto j = nlohmann::json::parse(text.substr(pos, nl - pos), nullptr, false);
            EXPECT_TRUE(!j.is_discarded() && usage_record_from_json(j)) << s << ": " << text.substr(pos, nl - pos);
        }
    }
}

TEST_F(UsageDurabilityTest, FullJournalRefusesNewWorkKeepsRecordsAndRecovers) {
    Tmpfs disk(journal(), 64 * 1024);
    ASSERT_TRUE(disk.mounted()) << "mount tmpfs: " << disk.error() << " (run as root)";
    open().reset();  // the table, so the child can lock the database at once

    // In a child that is SIGKILLed at the end, with SQLite locked throughout: whatever
    // survives, survives through the journal alone.
    const fs::path count_file = dir_ / "recorded";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int step = 10;
        try {
            UsageStoreOptions options;
            options.limits.journal_probe_interval = milliseconds(20);
            options.limits.journal_probe_bytes = 16 * 1024;
            options.limits.storage_timeout = milliseconds(50);
            UsageStore store(db(), journal(), options);
            funcd::testing::SqliteLock lock(db(), "BEGIN IMMEDIATE");
            int n = 0;
            auto record = [&] { store.record(make_record("r" + std::to_string(n), "f", kT0 + seconds(n), 10, 128)); ++n; };
            record();
            if (store.refusal()) ::_exit(step);
            ++step;
            disk.fill();
            // The segment's last page may still take a line or two; then a write fails
            // (partly, when it crosses into the next page).
            while (!store.refusal() && n < 200) {
                disk.fill();
                record();
            }
            if (!store.refusal()) ::_exit(step);
            ++step;
            if (!contains(*store.refusal(), "No space left on device")) ::_exit(step);
            ++step;
            // Invocations that already ran still hand in their records: kept in memory.
            record();
            record();
            std::this_thread::sleep_for(milliseconds(100));  // several probes, all failing
            if (!store.refusal()) ::_exit(step);
            ++step;
            disk.unfill();
            if (!eventually([&] { return !store.refusal(); })) ::_exit(step);
            ++step;
            record();
            std::ofstream(count_file) << n;
            expect_whole_lines(journal());
            if (::testing::Test::HasFailure()) ::_exit(step);
            ::raise(SIGKILL);
        } catch (...) {
        }
        ::_exit(99);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the child failed at step " << WEXITSTATUS(status);

    const int recorded = std::stoi(read_all(count_file));
    // Every record, the ones only in memory while the disk was full included, is replayed.
    auto store = open();
    EXPECT_EQ(store->report({}).total.invocations, recorded);
    EXPECT_EQ(store->records(std::nullopt, 1000).size(), static_cast<std::size_t>(recorded));
}

TEST_F(UsageDurabilityTest, RecordsOnlyInMemoryReachTheDatabase) {
    Tmpfs disk(journal(), 64 * 1024);
    ASSERT_TRUE(disk.mounted()) << "mount tmpfs: " << disk.error() << " (run as root)";
    UsageStoreOptions options;
    options.limits.journal_probe_interval = milliseconds(20);
    auto store = open(options);
    disk.fill();
    int n = 0;
    while (!store->refusal() && n < 200) {
        disk.fill();
        store->record(make_record("m" + std::to_string(n++), "f", kT0, 10, 128));
    }
    ASSERT_TRUE(store->refusal());
    store->record(make_record("m" + std::to_string(n++), "f", kT0, 10, 128));
    // The database is elsewhere and takes them while the journal cannot.
    EXPECT_EQ(store->report({}).total.invocations, n);
    EXPECT_TRUE(store->refusal()) << "still refused: the journal itself is still full";
    disk.unfill();
    EXPECT_TRUE(eventually([&] { return !store->refusal(); }));
}

TEST_F(UsageDurabilityTest, FlushAndQueriesAnswer503WhileTheDatabaseIsLocked) {
    UsageStoreOptions options;
    options.limits.storage_timeout = milliseconds(200);
    auto store = open(options);
    store->record(make_record("a", "f", kT0, 10, 128));
    store->flush();

    funcd::testing::SqliteLock lock(db(), "BEGIN EXCLUSIVE");
    store->record(make_record("b", "f", kT0 + seconds(1), 10, 128));
    expect_unavailable([&] { store->flush(); }, "could not be committed to the usage database within 200 ms");
    expect_unavailable([&] { store->report({}); }, "usage database");
    expect_unavailable([&] { store->records(std::nullopt, 10); }, "usage database");
    EXPECT_FALSE(store->refusal()) << "the journal has the record: invocations go on";

    lock.release();
    store->flush();
    EXPECT_EQ(store->report({}).total.invocations, 2);
}

TEST_F(UsageDurabilityTest, StopIsBoundedAndLeavesTheRestInTheJournal) {
    UsageStoreOptions options;
    options.limits.storage_timeout = milliseconds(100);
    {
        auto store = open(options);
        funcd::testing::SqliteLock lock(db(), "BEGIN EXCLUSIVE");
        store->record(make_record("s1", "f", kT0, 10, 128));
        store->record(make_record("s2", "f", kT0 + seconds(1), 10, 128));
        store->stop();  // returns although the database stays locked
        const std::string text = journal_text(journal());
        EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << "what is not committed stays in the journal";
        store.reset();
    }
    EXPECT_EQ(open()->report({}).total.invocations, 2) << "and the next start commits it";
}

TEST_F(UsageDurabilityTest, ARecordAfterStopStaysInTheJournal) {
    auto store = open();
    store->record(make_record("before", "f", kT0, 10, 128));
    store->stop();
    store->record(make_record("late", "f", kT0 + seconds(1), 10, 128));
    store.reset();
    using V = std::vector<std::string>;
    EXPECT_EQ(ids(open()->records(std::nullopt, 10)), (V{"late", "before"}));
}

TEST_F(UsageDurabilityTest, TooManyRecordsWaitingForTheDatabaseRefuseNewWork) {
    UsageStoreOptions options;
    options.limits.storage_timeout = milliseconds(100);
    options.limits.max_pending_records = 3;
    auto store = open(options);
    funcd::testing::SqliteLock lock(db(), "BEGIN IMMEDIATE");
    store->record(make_record("p1", "f", kT0, 10, 128));
    store->record(make_record("p2", "f", kT0, 10, 128));
    EXPECT_FALSE(store->refusal());
    store->record(make_record("p3", "f", kT0, 10, 128));
    ASSERT_TRUE(store->refusal());
    EXPECT_TRUE(contains(*store->refusal(), "3 records wait for the usage database")) << *store->refusal();
    lock.release();
    store->flush();
    EXPECT_FALSE(store->refusal());
}

}  // namespace
}  // namespace funcd
