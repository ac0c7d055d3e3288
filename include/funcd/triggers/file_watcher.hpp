#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace funcd {

// One completed file under a watched directory tree.
struct FileEvent {
    std::filesystem::path directory;  // the watched root
    std::string key;                  // path relative to the root, '/'-separated
    std::uint64_t size = 0;
    // When the watcher saw the file complete. Strictly increasing per watcher (a clock step
    // backwards is absorbed), so it can order events like S3's sequencer.
    std::chrono::system_clock::time_point time;
};

// Watches a directory tree with inotify and reports each file once it is complete: the
// writer closed it (IN_CLOSE_WRITE) or it was renamed or moved into the tree (IN_MOVED_TO).
// Creation and modification events are never reported, so a half-written file is never seen.
//
// What is reported:
//  - regular files only (symlinks are not followed), whose name matches one of `patterns`:
//    fnmatch(3) globs on the file name, case-sensitive; no patterns means every file;
//  - never hidden names: a file or directory whose name starts with '.' is skipped and
//    hidden directories are not watched. Upload tools and editors write ".name.tmp" and
//    rename it to "name" when done; that rename is what gets reported, once.
//  - a rename inside the tree reports the new name (as a copy to a new key would in S3).
//
// Directories created or moved in later are watched as they appear, and listed right after
// the watch is added, because files can land in them before the watch exists (`mv` of a
// finished tree is the common case). A listed file is reported unless it is open for
// writing at that moment: the watcher asks with a read lease (F_SETLEASE F_RDLCK, which
// the kernel refuses while any writer has the file open); such a file is reported by its
// IN_CLOSE_WRITE instead. Where a lease cannot be taken (the daemon neither owns the file
// nor has CAP_LEASE, or the filesystem has no leases) the listed file is assumed complete.
// Files present when the watcher starts are not reported: they are not new uploads.
//
// When the kernel's event queue overflows (IN_Q_OVERFLOW: more than
// fs.inotify.max_queued_events unread) events are lost. The watcher logs a warning with the
// number of overflows so far and re-adds watches for directories it missed, but does not
// report files again: a rescan cannot tell old files from lost ones and would re-run the
// function for every file in the tree.
//
// Runs on `io` (the inotify descriptor is non-blocking under an asio stream_descriptor);
// the callback runs on the io thread and may destroy the watcher. The watcher itself does
// only metadata syscalls (stat, readdir, inotify_add_watch); reading file content, such as
// the ETag, belongs on the blocking pool. Construct, use and destroy it on the io thread (or
// while `io` is not running).
class FileWatcher {
public:
    using Callback = std::function<void(FileEvent)>;

    // Throws std::system_error when the root is missing, not a directory or not readable,
    // when a pattern is empty or contains '/', and when inotify cannot be set up (the
    // message names the sysctl to raise on EMFILE and ENOSPC).
    FileWatcher(boost::asio::io_context& io, std::filesystem::path root, std::vector<std::string> patterns,
                Callback cb);
    ~FileWatcher();  // stops and closes the inotify descriptor (which drops every watch)

    FileWatcher(const FileWatcher&) = delete;
    FileWatcher& operator=(const FileWatcher&) = delete;

    const std::filesystem::path& root() const noexcept;
    // Directories currently watched, the root included.
    std::size_t watch_count() const noexcept;
    // IN_Q_OVERFLOW events seen so far.
    std::uint64_t overflow_count() const noexcept;

private:
    class Impl;
    std::shared_ptr<Impl> impl_;
};

// Whether FileWatcher reports a file named `name` (a name, not a path): it is not hidden and
// matches one of `patterns` (or `patterns` is empty).
bool file_name_matches(const std::vector<std::string>& patterns, const std::string& name);

}  // namespace funcd
