// Metering against storage trouble, through the real daemon: a locked database makes the
// usage API answer 503 within the storage timeout; a journal that cannot be written makes
// invocations answer 503 until it can, and no record of an answered invocation is lost.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using namespace std::chrono_literals;

std::string noop_zip() { return make_zip({{"bootstrap", {read_file(FUNCD_NOOP_BOOTSTRAP), 0755}}}); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(UsageDurability, UsageQueriesAnswer503QuicklyWhileTheDatabaseIsLocked) {
    Daemon d({"--limit", "metering.storage_timeout_ms=300"});
    ASSERT_EQ(d.deploy("noop", {{"runtime", "provided"}}, noop_zip()).status, 201);
    ASSERT_EQ(d.invoke("noop").status, 200);
    ASSERT_EQ(d.api("GET", "/v1/usage").status, 200);

    // Another process (this one) holds the database's write lock.
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open((d.data_dir() / "funcd.db").c_str(), &other), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);

    // Invocations go on: their records are in the journal.
    ASSERT_EQ(d.invoke("noop").status, 200);
    for (const char* target : {"/v1/usage", "/v1/usage/records"}) {
        const auto start = std::chrono::steady_clock::now();
        auto r = d.api("GET", target);
        const auto took = std::chrono::steady_clock::now() - start;
        EXPECT_EQ(r.status, 503) << target << ": " << r.body;
        EXPECT_EQ(r.json()["error"]["type"], "StorageUnavailableException") << r.body;
        EXPECT_TRUE(contains(r.json()["error"]["message"], "usage database")) << r.body;
        // The bound is the storage timeout (300 ms) plus scheduling on a loaded machine;
        // without it the query waited as long as the lock was held.
        EXPECT_LT(took, 5s) << target;
    }

    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    auto usage = d.api("GET", "/v1/usage?function=noop");
    ASSERT_EQ(usage.status, 200) << usage.body;
    EXPECT_EQ(usage.json()["total"]["invocations"], 2);
    EXPECT_TRUE(usage.json()["total"]["cost_usd"].is_string()) << usage.body;
    EXPECT_TRUE(usage.json()["total"]["gb_seconds"].is_string()) << usage.body;
    EXPECT_EQ(usage.json()["prices"]["per_gb_second"], "0.0000166667");
    EXPECT_EQ(usage.json()["prices"]["per_request"], "0.0000002");
}

// A data directory whose usage journal is a small tmpfs, so the disk can really be full.
class FullJournalDisk {
public:
    FullJournalDisk() {
        char tmpl[] = "/tmp/funcd-it-journal-XXXXXX";
        data_ = ::mkdtemp(tmpl);
        journal_ = data_ / "usage.journal";
        std::filesystem::create_directories(journal_);
        mounted_ = ::mount("tmpfs", journal_.c_str(), "tmpfs", 0, "size=65536,mode=0700") == 0;
        error_ = errno;
    }
    ~FullJournalDisk() {
        if (mounted_) ::umount2(journal_.c_str(), MNT_DETACH);
        std::system(("chmod -R u+w '" + data_.string() + "' 2>/dev/null").c_str());
        std::error_code ec;
        std::filesystem::remove_all(data_, ec);
    }
    bool mounted() const { return mounted_; }
    std::string error() const { return std::strerror(error_); }
    const std::filesystem::path& data_dir() const { return data_; }
    // Takes every free byte (again: pages the journal gives back by deleting a committed
    // segment are taken too).
    void fill() const {
        const int fd = ::open((journal_ / "filler").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        const std::string block(4096, 'x');
        while (::write(fd, block.data(), block.size()) > 0) {
        }
        while (::write(fd, block.data(), 1) > 0) {
        }
        ::close(fd);
    }
    void unfill() const { std::filesystem::remove(journal_ / "filler"); }

private:
    std::filesystem::path data_, journal_;
    bool mounted_ = false;
    int error_ = 0;
};

TEST(UsageDurability, InvocationsAnswer503WhileTheJournalCannotBeWrittenThenRecover) {
    FullJournalDisk disk;
    ASSERT_TRUE(disk.mounted()) << "mount tmpfs: " << disk.error() << " (the suite runs as root)";
    int answered = 0;
    {
        Daemon d({"--limit", "metering.journal_probe_ms=50", "--limit", "metering.journal_probe_bytes=16384"},
                 disk.data_dir());
        d.keep_data_dir();
        ASSERT_EQ(d.deploy("noop", {{"runtime", "provided"}}, noop_zip()).status, 201);
        ASSERT_EQ(d.invoke("noop").status, 200);
        ++answered;

        // The journal's last page may take a line or two more; then a write fails. That
        // invocation already ran: it is answered, and its record kept.
        HttpResult refused;
        for (int i = 0; i < 100; ++i) {
            disk.fill();
            auto r = d.invoke("noop");
            if (r.status != 200) {
                refused = r;
                break;
            }
            ++answered;
        }
        ASSERT_EQ(refused.status, 503) << refused.body;
        EXPECT_EQ(refused.json()["error"]["type"], "StorageUnavailableException") << refused.body;
        EXPECT_TRUE(contains(refused.json()["error"]["message"], "No space left on device")) << refused.body;
        EXPECT_FALSE(contains(refused.body, disk.data_dir().string())) << "no paths for callers";
        // Still refused while the disk stays full (the probe keeps failing).
        std::this_thread::sleep_for(200ms);
        disk.fill();
        EXPECT_EQ(d.invoke("noop").status, 503);
        EXPECT_TRUE(contains(d.log(), "usage records cannot be made durable")) << "the operator is told";

        disk.unfill();
        ASSERT_TRUE(eventually([&] {
            auto r = d.invoke("noop");
            if (r.status == 200) ++answered;
            return r.status == 200;
        }, 10s)) << "recovers by itself once there is space";
        ASSERT_EQ(d.invoke("noop").status, 200);
        ++answered;

        // Every answered invocation is billed, the ones recorded while the disk was full included.
        auto usage = d.api("GET", "/v1/usage?function=noop");
        ASSERT_EQ(usage.status, 200) << usage.body;
        EXPECT_EQ(usage.json()["total"]["invocations"], answered) << usage.body;
        EXPECT_EQ(d.stop(), 0);
    }
}

}  // namespace
}  // namespace funcd::testing
