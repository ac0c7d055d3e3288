#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "funcd/common/unique_fd.hpp"
#include "funcd/triggers/file_watcher.hpp"

using namespace funcd;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary);
    out << content;
}

void write_all(int fd, const std::string& data) {
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size())) << std::strerror(errno);
}

// Whether the filesystem under `dir` grants read leases to this process, which is how the
// watcher tells a finished file from one still being written.
bool read_leases_work(const fs::path& dir) {
    const fs::path probe = dir / "lease-probe";
    write_file(probe, "x");
    UniqueFd fd(::open(probe.c_str(), O_RDONLY | O_CLOEXEC));
    bool ok = fd && ::fcntl(fd.get(), F_SETLEASE, F_RDLCK) == 0;
    if (ok) ::fcntl(fd.get(), F_SETLEASE, F_UNLCK);
    fs::remove(probe);
    return ok;
}

class FileWatcherTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "funcd-fw-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        base_ = tmpl;
        root_ = base_ / "uploads";
        outside_ = base_ / "outside";  // same filesystem, so rename(2) moves into the tree
        fs::create_directories(root_);
        fs::create_directories(outside_);
    }

    void TearDown() override {
        watcher_.reset();
        std::error_code ec;
        fs::remove_all(base_, ec);
    }

    void watch(std::vector<std::string> patterns = {}) {
        watcher_ = std::make_unique<FileWatcher>(io_, root_, std::move(patterns),
                                                 [this](FileEvent e) { events_.push_back(std::move(e)); });
    }

    // Runs the event loop on this thread until `done` holds, for at most `bound`.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds bound = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + bound;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            if (io_.stopped()) io_.restart();
            io_.run_for(5ms);
        }
        return true;
    }

    std::size_t count(const std::string& key) const {
        return static_cast<std::size_t>(
            std::count_if(events_.begin(), events_.end(), [&](const FileEvent& e) { return e.key == key; }));
    }

    bool wait_for_key(const std::string& key) {
        return run_until([&] { return count(key) > 0; });
    }

    // inotify delivers events in order, so once a file written now is reported, every event
    // queued before it has been handled. The sentinel's own event is then dropped.
    ::testing::AssertionResult settle(const std::string& sentinel = "sentinel.jpg") {
        write_file(root_ / sentinel, "s");
        if (!wait_for_key(sentinel)) return ::testing::AssertionFailure() << "sentinel never reported";
        std::erase_if(events_, [&](const FileEvent& e) { return e.key == sentinel; });
        fs::remove(root_ / sentinel);
        return ::testing::AssertionSuccess();
    }

    std::vector<std::string> keys() const {
        std::vector<std::string> out;
        for (const auto& e : events_) out.push_back(e.key);
        std::sort(out.begin(), out.end());
        return out;
    }

    const FileEvent* find(const std::string& key) const {
        for (const auto& e : events_)
            if (e.key == key) return &e;
        return nullptr;
    }

    boost::asio::io_context io_;
    fs::path base_, root_, outside_;
    std::unique_ptr<FileWatcher> watcher_;
    std::vector<FileEvent> events_;
};

TEST_F(FileWatcherTest, SlowlyWrittenFileFiresOnceAfterCloseWithFullSize) {
    watch();
    UniqueFd fd(::open((root_ / "photo.jpg").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    for (int i = 0; i < 4; ++i) {
        write_all(fd.get(), std::string(1000, 'a' + i));
        // Give the watcher every chance to see the half-written file: it must not report it.
        run_until([] { return false; }, 50ms);
        ASSERT_EQ(count("photo.jpg"), 0u) << "reported before close, after " << i + 1 << " writes";
    }
    fd.reset();

    ASSERT_TRUE(wait_for_key("photo.jpg"));
    ASSERT_TRUE(settle());
    ASSERT_EQ(events_.size(), 1u);
    EXPECT_EQ(events_[0].size, 4000u);
    EXPECT_EQ(events_[0].directory, root_);
    EXPECT_GT(events_[0].time.time_since_epoch().count(), 0);
}

TEST_F(FileWatcherTest, FileMovedInFiresOnce) {
    watch();
    write_file(outside_ / "upload.png", "0123456789");
    fs::rename(outside_ / "upload.png", root_ / "upload.png");

    ASSERT_TRUE(wait_for_key("upload.png"));
    ASSERT_TRUE(settle());
    ASSERT_EQ(keys(), std::vector<std::string>{"upload.png"});
    EXPECT_EQ(events_[0].size, 10u);
}

TEST_F(FileWatcherTest, PatternsFilterOnFileNameCaseSensitively) {
    watch({"*.jpg", "*.png"});
    write_file(root_ / "a.jpg", "a");
    write_file(root_ / "b.png", "b");
    write_file(root_ / "c.txt", "c");
    write_file(root_ / "D.JPG", "d");
    write_file(root_ / "e.jpg.part", "e");
    ASSERT_TRUE(settle());
    EXPECT_EQ(keys(), (std::vector<std::string>{"a.jpg", "b.png"}));
}

TEST_F(FileWatcherTest, FileNameMatchingRules) {
    EXPECT_TRUE(file_name_matches({}, "anything"));
    EXPECT_FALSE(file_name_matches({}, ".hidden"));
    EXPECT_FALSE(file_name_matches({"*"}, ".name.jpg.tmp"));
    EXPECT_TRUE(file_name_matches({"*.jpg"}, "x.jpg"));
    EXPECT_FALSE(file_name_matches({"*.jpg"}, "x.JPG"));
    EXPECT_TRUE(file_name_matches({"img-[0-9]?.raw"}, "img-42.raw"));
    EXPECT_FALSE(file_name_matches({"*.jpg"}, "x.jpeg"));
}

TEST_F(FileWatcherTest, FileInSubdirectoryCreatedLaterHasRelativeKey) {
    watch();
    fs::create_directory(root_ / "sub");
    write_file(root_ / "sub" / "name.jpg", "12345");
    // Deeper trees made in one go: each level may fill before its watch exists.
    fs::create_directories(root_ / "a" / "b" / "c");
    write_file(root_ / "a" / "b" / "c" / "deep.jpg", "1");

    ASSERT_TRUE(wait_for_key("sub/name.jpg"));
    ASSERT_TRUE(wait_for_key("a/b/c/deep.jpg"));
    ASSERT_TRUE(settle());
    EXPECT_EQ(keys(), (std::vector<std::string>{"a/b/c/deep.jpg", "sub/name.jpg"}));
    EXPECT_EQ(find("sub/name.jpg")->size, 5u);
    EXPECT_EQ(watcher_->watch_count(), 5u);  // root, sub, a, a/b, a/b/c
}

TEST_F(FileWatcherTest, DirectoryMovedInReportsItsFilesOnce) {
    watch({"*.jpg"});
    fs::create_directories(outside_ / "batch" / "inner");
    write_file(outside_ / "batch" / "one.jpg", "1");
    write_file(outside_ / "batch" / "inner" / "two.jpg", "22");
    write_file(outside_ / "batch" / "notes.txt", "n");
    write_file(outside_ / "batch" / ".hidden.jpg", "h");
    fs::rename(outside_ / "batch", root_ / "batch");

    ASSERT_TRUE(settle());
    EXPECT_EQ(keys(), (std::vector<std::string>{"batch/inner/two.jpg", "batch/one.jpg"}));
    EXPECT_EQ(find("batch/inner/two.jpg")->size, 2u);

    // The moved-in tree is watched from then on.
    events_.clear();
    write_file(root_ / "batch" / "inner" / "three.jpg", "333");
    ASSERT_TRUE(wait_for_key("batch/inner/three.jpg"));
    ASSERT_TRUE(settle());
    EXPECT_EQ(keys(), std::vector<std::string>{"batch/inner/three.jpg"});
}

TEST_F(FileWatcherTest, FileStillOpenInMovedInDirectoryIsReportedWhenClosed) {
    if (!read_leases_work(base_)) GTEST_SKIP() << "no read leases on " << base_;
    watch();
    fs::create_directory(outside_ / "batch");
    write_file(outside_ / "batch" / "done.jpg", "done");
    UniqueFd fd(::open((outside_ / "batch" / "partial.jpg").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    write_all(fd.get(), "first-half");
    fs::rename(outside_ / "batch", root_ / "batch");

    // done.jpg proves the directory was listed; partial.jpg was open for writing then.
    ASSERT_TRUE(wait_for_key("batch/done.jpg"));
    ASSERT_TRUE(settle());
    EXPECT_EQ(count("batch/partial.jpg"), 0u);

    write_all(fd.get(), "second-half");
    fd.reset();
    ASSERT_TRUE(wait_for_key("batch/partial.jpg"));
    ASSERT_TRUE(settle());
    EXPECT_EQ(count("batch/partial.jpg"), 1u);
    EXPECT_EQ(find("batch/partial.jpg")->size, 21u);
}

TEST_F(FileWatcherTest, HiddenTempFileRenamedFiresOnceUnderFinalName) {
    watch();
    // What rsync, curl -o with a temp name, and most editors do.
    UniqueFd fd(::open((root_ / ".report.pdf.tmp").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    write_all(fd.get(), "pdf-bytes");
    fd.reset();
    fs::rename(root_ / ".report.pdf.tmp", root_ / "report.pdf");

    ASSERT_TRUE(wait_for_key("report.pdf"));
    ASSERT_TRUE(settle());
    EXPECT_EQ(keys(), std::vector<std::string>{"report.pdf"});
    EXPECT_EQ(events_[0].size, 9u);
}

TEST_F(FileWatcherTest, HiddenDirectoriesAreNotWatched) {
    watch();
    fs::create_directory(root_ / ".staging");
    write_file(root_ / ".staging" / "a.jpg", "a");
    ASSERT_TRUE(settle());
    EXPECT_TRUE(events_.empty());
    EXPECT_EQ(watcher_->watch_count(), 1u);

    // Publishing the staged directory under a visible name reports what is in it.
    fs::rename(root_ / ".staging", root_ / "published");
    ASSERT_TRUE(wait_for_key("published/a.jpg"));
    ASSERT_TRUE(settle());
    EXPECT_EQ(keys(), std::vector<std::string>{"published/a.jpg"});
}

TEST_F(FileWatcherTest, DirectoryRenamedInsideTreeKeepsItsWatchesWithoutReporting) {
    watch();
    fs::create_directories(root_ / "sub" / "deeper");
    write_file(root_ / "sub" / "deeper" / "a.jpg", "a");
    ASSERT_TRUE(wait_for_key("sub/deeper/a.jpg"));
    ASSERT_TRUE(settle());
    events_.clear();

    fs::rename(root_ / "sub", root_ / "renamed");
    ASSERT_TRUE(settle());
    EXPECT_TRUE(events_.empty()) << "a rename inside the tree re-reported " << events_.front().key;
    EXPECT_EQ(watcher_->watch_count(), 3u);

    write_file(root_ / "renamed" / "deeper" / "b.jpg", "b");
    ASSERT_TRUE(wait_for_key("renamed/deeper/b.jpg"));
    ASSERT_TRUE(settle());
    EXPECT_EQ(keys(), std::vector<std::string>{"renamed/deeper/b.jpg"});
}

TEST_F(FileWatcherTest, DirectoryMovedOutIsNoLongerWatched) {
    watch();
    fs::create_directories(root_ / "sub" / "deeper");
    ASSERT_TRUE(run_until([&] { return watcher_->watch_count() == 3; }));

    fs::rename(root_ / "sub", outside_ / "sub");
    ASSERT_TRUE(settle());
    ASSERT_TRUE(run_until([&] { return watcher_->watch_count() == 1; }));

    write_file(outside_ / "sub" / "x.jpg", "x");
    write_file(outside_ / "sub" / "deeper" / "y.jpg", "y");
    ASSERT_TRUE(settle());
    EXPECT_TRUE(events_.empty());
}

TEST_F(FileWatcherTest, FilesPresentAtStartAreNotReported) {
    fs::create_directories(root_ / "old" / "older");
    write_file(root_ / "before.jpg", "b");
    write_file(root_ / "old" / "older" / "before.jpg", "b");
    watch();
    EXPECT_EQ(watcher_->watch_count(), 3u);
    ASSERT_TRUE(settle());
    EXPECT_TRUE(events_.empty());

    write_file(root_ / "old" / "older" / "after.jpg", "a");
    ASSERT_TRUE(wait_for_key("old/older/after.jpg"));
}

TEST_F(FileWatcherTest, FileUnlinkedBeforeCloseIsNotReported) {
    watch();
    UniqueFd fd(::open((root_ / "aborted.jpg").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    write_all(fd.get(), "partial");
    fs::remove(root_ / "aborted.jpg");
    fd.reset();
    ASSERT_TRUE(settle());
    EXPECT_TRUE(events_.empty());
}

TEST_F(FileWatcherTest, SymlinksAreNotReported) {
    watch();
    write_file(outside_ / "target.jpg", "t");
    fs::create_symlink(outside_ / "target.jpg", outside_ / "link.jpg");
    fs::rename(outside_ / "link.jpg", root_ / "link.jpg");
    fs::create_directory_symlink(outside_, root_ / "linked-dir");
    ASSERT_TRUE(settle());
    EXPECT_TRUE(events_.empty());
    EXPECT_EQ(watcher_->watch_count(), 1u);
}

TEST_F(FileWatcherTest, DeletedRootLeavesNoWatches) {
    watch();
    fs::create_directory(root_ / "sub");
    ASSERT_TRUE(run_until([&] { return watcher_->watch_count() == 2; }));
    fs::remove_all(root_);
    EXPECT_TRUE(run_until([&] { return watcher_->watch_count() == 0; }));
}

TEST_F(FileWatcherTest, EventTimesIncrease) {
    watch();
    for (int i = 0; i < 5; ++i) write_file(root_ / ("f" + std::to_string(i) + ".jpg"), "x");
    ASSERT_TRUE(settle());
    ASSERT_EQ(events_.size(), 5u);
    for (std::size_t i = 1; i < events_.size(); ++i) EXPECT_LT(events_[i - 1].time, events_[i].time);
}

TEST_F(FileWatcherTest, CallbackMayDestroyTheWatcher) {
    std::size_t calls = 0;
    watcher_ = std::make_unique<FileWatcher>(io_, root_, std::vector<std::string>{}, [&](FileEvent) {
        ++calls;
        watcher_.reset();
    });
    // Both land in one read from the queue; the second must not reach a destroyed watcher.
    write_file(root_ / "a.jpg", "a");
    write_file(root_ / "b.jpg", "b");
    ASSERT_TRUE(run_until([&] { return calls > 0; }));
    run_until([] { return false; }, 50ms);
    EXPECT_EQ(calls, 1u);
}

TEST_F(FileWatcherTest, MissingRootThrowsWithPath) {
    try {
        FileWatcher w(io_, root_ / "nope", {}, [](FileEvent) {});
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
        EXPECT_NE(std::string(e.what()).find((root_ / "nope").string()), std::string::npos) << e.what();
    }
}

TEST_F(FileWatcherTest, RootThatIsAFileThrows) {
    write_file(root_ / "file", "x");
    try {
        FileWatcher w(io_, root_ / "file", {}, [](FileEvent) {});
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::not_a_directory);
        EXPECT_NE(std::string(e.what()).find((root_ / "file").string()), std::string::npos) << e.what();
    }
}

TEST_F(FileWatcherTest, UnreadableRootThrows) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads every directory";
    fs::permissions(root_, fs::perms::owner_write);
    try {
        FileWatcher w(io_, root_, {}, [](FileEvent) {});
        ADD_FAILURE() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), std::errc::permission_denied);
    }
    fs::permissions(root_, fs::perms::owner_all);
}

TEST_F(FileWatcherTest, PatternWithSlashOrEmptyThrows) {
    EXPECT_THROW(FileWatcher(io_, root_, {"sub/*.jpg"}, [](FileEvent) {}), std::system_error);
    EXPECT_THROW(FileWatcher(io_, root_, {""}, [](FileEvent) {}), std::system_error);
}

TEST_F(FileWatcherTest, RootWithTrailingSlashIsNormalized) {
    FileWatcher w(io_, root_.string() + "/", {}, [](FileEvent) {});
    EXPECT_EQ(w.root(), root_);
}

}  // namespace
