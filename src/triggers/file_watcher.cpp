#include "funcd/triggers/file_watcher.hpp"

#include "funcd/common/unique_fd.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace funcd {
namespace fs = std::filesystem;

namespace {

// What every directory watch asks for. IN_CREATE is there only to see new subdirectories:
// a file is reported when its writer closes it, never when it is created.
// IN_EXCL_UNLINK: a file unlinked while a writer still holds it (an aborted upload's temp
// file) reports nothing when that writer finally closes it.
constexpr std::uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE_SELF |
                                     IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;
// Below the root a symlink is never followed: a directory swapped for a link between the
// listing and inotify_add_watch would otherwise put a watch outside the tree. The root
// itself may be a link the administrator configured.
constexpr std::uint32_t kSubdirMask = kWatchMask | IN_DONT_FOLLOW;

// inotify(7): a buffer of sizeof(struct inotify_event) + NAME_MAX + 1 always holds the next
// event; 64 KiB takes a burst of a few thousand events in one read.
constexpr std::size_t kReadBufferBytes = 64 * 1024;
static_assert(kReadBufferBytes >= sizeof(inotify_event) + NAME_MAX + 1);

// Reads per wake-up before the io thread is handed back to other handlers, so a tree that
// receives thousands of files at once cannot starve the gateway.
constexpr int kMaxReadsPerWake = 16;

[[noreturn]] void throw_watch_error(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

// The limit behind an inotify errno, for messages an administrator can act on.
std::string_view limit_hint(int err) {
    switch (err) {
        case ENOSPC: return " (the per-user watch limit: raise the sysctl fs.inotify.max_user_watches)";
        case EMFILE: return " (the per-user instance limit: raise the sysctl fs.inotify.max_user_instances)";
        default: return "";
    }
}

bool is_hidden(std::string_view name) { return !name.empty() && name.front() == '.'; }

// Relative paths are kept as '/'-separated strings, "" for the root: they are the keys.
std::string join(const std::string& dir, std::string_view name) {
    if (dir.empty()) return std::string(name);
    std::string out;
    out.reserve(dir.size() + 1 + name.size());
    out.append(dir).push_back('/');
    out.append(name);
    return out;
}

bool in_subtree(const std::string& path, const std::string& top) {
    return path.size() > top.size() && path.compare(0, top.size(), top) == 0 && path[top.size()] == '/';
}

fs::path normalize_root(fs::path root) {
    std::error_code ec;
    fs::path abs = fs::absolute(root, ec);
    if (ec) abs = std::move(root);
    abs = abs.lexically_normal();
    // "/srv/uploads/" normalizes with an empty last element; the bucket name needs the real one.
    if (!abs.has_filename() && abs.has_relative_path()) abs = abs.parent_path();
    return abs;
}

struct FileIdentity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    std::int64_t mtime_ns = 0;

    static FileIdentity of(const struct stat& st) {
        return {st.st_dev, st.st_ino, st.st_size,
                static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
    }
    bool operator==(const FileIdentity&) const = default;
};

}  // namespace

bool file_name_matches(const std::vector<std::string>& patterns, const std::string& name) {
    if (name.empty() || is_hidden(name)) return false;
    if (patterns.empty()) return true;
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const std::string& p) { return ::fnmatch(p.c_str(), name.c_str(), 0) == 0; });
}

class FileWatcher::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(boost::asio::io_context& io, fs::path root, std::vector<std::string> patterns, Callback cb)
        : root_(normalize_root(std::move(root))), patterns_(std::move(patterns)), cb_(std::move(cb)), sd_(io) {
        for (const auto& p : patterns_) {
            if (p.empty() || p.find('/') != std::string::npos)
                throw_watch_error(EINVAL, "file trigger pattern \"" + p + "\" for " + root_.string() +
                                        ": patterns match file names, so they must be non-empty and have no '/'");
        }
        struct stat st {};
        if (::stat(root_.c_str(), &st) != 0) {
            const int err = errno;
            throw_watch_error(err, "file trigger directory " + root_.string());
        }
        if (!S_ISDIR(st.st_mode)) throw_watch_error(ENOTDIR, "file trigger directory " + root_.string());
        // Listing needs read, and watching below needs search permission.
        if (::access(root_.c_str(), R_OK | X_OK) != 0) {
            const int err = errno;
            throw_watch_error(err, "file trigger directory " + root_.string() + " is not readable");
        }

        const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0) {
            const int err = errno;
            throw_watch_error(err, "inotify_init1 for " + root_.string() + std::string(limit_hint(err)));
        }
        fd_ = fd;
        sd_.assign(fd);  // owns it from here on, so a throw below closes it
    }

    // Watches the tree as it is now; files already there are not reported.
    void start() {
        add_tree("", Mode::initial);
        spdlog::info("file watcher {}: watching {} directories", root_.string(), dir_of_wd_.size());
        wait();
    }

    void stop() {
        if (stopped_) return;
        stopped_ = true;
        boost::system::error_code ec;
        sd_.cancel(ec);
        sd_.close(ec);
        if (ec) spdlog::warn("file watcher {}: close inotify descriptor: {}", root_.string(), ec.message());
    }

    const fs::path& root() const noexcept { return root_; }
    std::size_t watch_count() const noexcept { return dir_of_wd_.size(); }
    std::uint64_t overflow_count() const noexcept { return overflows_; }

private:
    enum class Mode {
        initial,     // at construction: watch everything, report nothing, failures throw
        discovered,  // a directory that appeared: watch it, list it, report the files in it
        resync,      // after an overflow: watch what was missed, report nothing
    };
    enum class Writers { none, some, unknown, skip };

    void wait() {
        sd_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           if (ec || self->stopped_) return;
                           self->drain();
                       });
    }

    void drain() {
        for (int i = 0; i < kMaxReadsPerWake; ++i) {
            const ssize_t n = ::read(fd_, buf_.data(), buf_.size());
            if (n < 0) {
                const int err = errno;
                if (err == EINTR) continue;
                if (err == EAGAIN) {
                    queue_empty();
                    if (!stopped_) wait();
                    return;
                }
                spdlog::error("file watcher {}: read from inotify failed: {} (errno {}); no further events",
                              root_.string(), std::strerror(err), err);
                return;
            }
            if (n == 0) {
                spdlog::error("file watcher {}: read from inotify returned 0 bytes; no further events",
                              root_.string());
                return;
            }
            handle_batch(static_cast<std::size_t>(n));
            if (stopped_) return;
        }
        boost::asio::post(sd_.get_executor(), [self = shared_from_this()] {
            if (!self->stopped_) self->drain();
        });
    }

    void handle_batch(std::size_t n) {
        std::size_t off = 0;
        while (off + sizeof(inotify_event) <= n) {
            inotify_event ev;
            std::memcpy(&ev, buf_.data() + off, sizeof ev);
            const char* name = buf_.data() + off + sizeof ev;
            // `len` counts the terminating NUL and alignment padding.
            std::string_view name_view(name, ev.len ? ::strnlen(name, ev.len) : 0);
            off += sizeof ev + ev.len;
            handle_event(ev.wd, ev.mask, ev.cookie, name_view);
            if (stopped_) return;
        }
    }

    void handle_event(int wd, std::uint32_t mask, std::uint32_t cookie, std::string_view name) {
        if (mask & IN_Q_OVERFLOW) {
            ++overflows_;
            spdlog::warn("file watcher {}: inotify queue overflowed ({} overflows so far); files completed "
                         "meanwhile are not reported. Raise the sysctl fs.inotify.max_queued_events",
                         root_.string(), overflows_);
            resync_ = true;
            return;
        }
        const auto it = dir_of_wd_.find(wd);
        if (it == dir_of_wd_.end()) return;  // a watch already dropped; its last events still drain
        const std::string dir = it->second;  // a copy: the handlers below rename and erase entries

        if (mask & IN_IGNORED) {
            forget(wd);
            return;
        }
        if (mask & IN_UNMOUNT) {
            spdlog::warn("file watcher {}: filesystem under {} was unmounted", root_.string(), dir_label(dir));
            return;  // IN_IGNORED follows
        }
        if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
            // A subdirectory's own move is handled from its parent's IN_MOVED_FROM/IN_MOVED_TO;
            // a deletion, the root's included, by the IN_IGNORED that follows.
            if (wd == root_wd_ && (mask & IN_MOVE_SELF))
                spdlog::warn("file watcher {}: the watched directory was moved; keys stay relative to it, "
                             "but the trigger's path no longer names it",
                             root_.string());
            return;
        }
        if (name.empty()) return;

        if (mask & IN_ISDIR) {
            directory_event(mask, cookie, dir, name);
            return;
        }
        if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) file_completed(wd, dir, name);
    }

    void directory_event(std::uint32_t mask, std::uint32_t cookie, const std::string& dir, std::string_view name) {
        const std::string rel = join(dir, name);
        if (mask & IN_CREATE) {
            if (!is_hidden(name)) add_tree(rel, Mode::discovered);
        } else if (mask & IN_MOVED_FROM) {
            // Only a directory we watch needs its pair: its watches survive a rename inside the
            // tree and only their paths change.
            if (wd_of_dir_.contains(rel)) pending_moves_[cookie] = rel;
        } else if (mask & IN_MOVED_TO) {
            const auto from = pending_moves_.find(cookie);
            if (from != pending_moves_.end()) {
                const std::string old = std::move(from->second);
                pending_moves_.erase(from);
                if (is_hidden(name))
                    remove_tree(old);
                else
                    rename_tree(old, rel);  // its files were reported where they were written
            } else if (!is_hidden(name)) {
                add_tree(rel, Mode::discovered);  // moved in from outside the tree, or from a hidden directory
            }
        }
    }

    void file_completed(int wd, const std::string& dir, std::string_view name) {
        const std::string name_str(name);
        if (!file_name_matches(patterns_, name_str)) return;
        const std::string rel = join(dir, name);
        const fs::path full = root_ / rel;
        struct stat st {};
        if (::lstat(full.c_str(), &st) != 0) {
            const int err = errno;
            // Renamed or deleted before the event was read; a rename is reported by its IN_MOVED_TO.
            if (err == ENOENT || err == ENOTDIR)
                spdlog::debug("file watcher {}: {} is gone before it could be reported", root_.string(), rel);
            else
                spdlog::warn("file watcher {}: lstat {} failed: {} (errno {}); not reported", root_.string(),
                             full.string(), std::strerror(err), err);
            return;
        }
        if (!S_ISREG(st.st_mode)) return;

        const auto listed = listed_.find({wd, name_str});
        if (listed != listed_.end()) {
            const bool same = listed->second == FileIdentity::of(st);
            listed_.erase(listed);
            if (same) return;  // already reported by the listing of its new directory
        }
        emit(rel, st.st_size);
    }

    // Adds watches to `top` and every visible directory below it. A directory is watched
    // before it is listed, so a file that lands between the two is seen by one or the other.
    void add_tree(const std::string& top, Mode mode) {
        std::vector<std::string> todo{top};
        while (!todo.empty() && !stopped_) {
            const std::string rel = std::move(todo.back());
            todo.pop_back();
            const auto [wd, fresh] = add_watch(rel, mode);
            if (wd < 0) continue;
            // A directory already watched was listed when its watch was added; listing it again
            // (the same mkdir seen both by a listing and by its IN_CREATE) would report twice.
            if (!fresh && mode == Mode::discovered) continue;

            const fs::path path = root_ / rel;
            std::error_code ec;
            fs::directory_iterator entries(path, ec);
            if (ec) {
                log_list_failure(path, ec, mode);
                continue;
            }
            for (const fs::directory_iterator end; entries != end; entries.increment(ec)) {
                const std::string name = entries->path().filename().string();
                if (is_hidden(name)) continue;
                std::error_code type_ec;
                const auto type = entries->symlink_status(type_ec).type();
                if (type_ec) continue;  // gone since the listing
                if (type == fs::file_type::directory) {
                    todo.push_back(join(rel, name));
                } else if (type == fs::file_type::regular && mode == Mode::discovered &&
                           file_name_matches(patterns_, name)) {
                    report_listed(wd, rel, name);
                    if (stopped_) return;
                }
            }
            if (ec) log_list_failure(path, ec, mode);
        }
    }

    void log_list_failure(const fs::path& path, const std::error_code& ec, Mode mode) {
        if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) return;  // gone
        if (mode == Mode::initial)
            throw std::system_error(ec, "file watcher " + root_.string() + ": list " + path.string());
        spdlog::warn("file watcher {}: list {} failed: {} (errno {}); files in it are not reported",
                     root_.string(), path.string(), ec.message(), ec.value());
    }

    // Returns the watch descriptor (-1 when the directory cannot be watched) and whether the
    // watch is new.
    std::pair<int, bool> add_watch(const std::string& rel, Mode mode) {
        const fs::path path = root_ / rel;
        const int wd = ::inotify_add_watch(fd_, path.c_str(), rel.empty() ? kWatchMask : kSubdirMask);
        if (wd < 0) {
            const int err = errno;
            const std::string what = "inotify_add_watch " + path.string() + std::string(limit_hint(err));
            if (rel.empty()) throw_watch_error(err, "file watcher " + root_.string() + ": " + what);
            // Removed, or replaced by a file or a symlink, since it was seen.
            if (err == ENOENT || err == ENOTDIR || err == ELOOP) return {-1, false};
            if (mode == Mode::initial && err != EACCES)
                throw_watch_error(err, "file watcher " + root_.string() + ": " + what);
            spdlog::error("file watcher {}: {} failed: {} (errno {}); files below it are not reported",
                          root_.string(), what, std::strerror(err), err);
            return {-1, false};
        }
        if (rel.empty()) root_wd_ = wd;

        const auto known = dir_of_wd_.find(wd);
        if (known != dir_of_wd_.end()) {
            // The kernel hands back the existing watch for an inode already watched. Under a
            // different path it was moved without our seeing the pair (lost to an overflow).
            if (known->second != rel) rename_tree(known->second, rel);
            return {wd, false};
        }
        const auto stale = wd_of_dir_.find(rel);
        if (stale != wd_of_dir_.end()) dir_of_wd_.erase(stale->second);  // a deleted directory's lost IN_IGNORED
        dir_of_wd_[wd] = rel;
        wd_of_dir_[rel] = wd;
        return {wd, true};
    }

    // A file found by listing a directory that just appeared. It is reported unless a writer
    // still has it open, in which case its IN_CLOSE_WRITE reports it (the watch on its
    // directory already exists). Its identity is kept until the queue drains, because an
    // IN_CLOSE_WRITE or IN_MOVED_TO queued before the listing describes the same file.
    void report_listed(int wd, const std::string& dir, const std::string& name) {
        const std::string rel = join(dir, name);
        struct stat st {};
        switch (writers(root_ / rel, st)) {
            case Writers::skip: return;
            case Writers::some:
                spdlog::debug("file watcher {}: {} is still open for writing; reported when closed", root_.string(),
                              rel);
                return;
            case Writers::none:
            case Writers::unknown: break;
        }
        listed_[{wd, name}] = FileIdentity::of(st);
        emit(rel, st.st_size);
    }

    // Whether any process has `file` open for writing. The kernel refuses a read lease
    // (F_SETLEASE F_RDLCK) with EAGAIN while a writer holds the file, which is the one
    // question inotify cannot answer about a file that existed before its watch.
    Writers writers(const fs::path& file, struct stat& st) {
        if (::lstat(file.c_str(), &st) != 0) return Writers::skip;  // gone since the listing
        if (!S_ISREG(st.st_mode)) return Writers::skip;
        // O_NONBLOCK: fail rather than wait if someone holds a write lease on it.
        UniqueFd fd(::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
        if (!fd) {
            const int err = errno;
            if (err == ENOENT || err == ELOOP) return Writers::skip;
            log_lease_unavailable("open " + file.string(), err);
            return Writers::unknown;
        }
        struct stat opened {};
        if (::fstat(fd.get(), &opened) == 0) {
            st = opened;  // what the lease below speaks about, should the name have been replaced
        } else {
            const int err = errno;
            spdlog::warn("file watcher {}: fstat {} failed: {} (errno {})", root_.string(), file.string(),
                         std::strerror(err), err);
        }
        if (!S_ISREG(st.st_mode)) return Writers::skip;
        if (::fcntl(fd.get(), F_SETLEASE, F_RDLCK) == 0) {
            // Closing the descriptor drops the lease anyway; unlocking first just says so.
            if (::fcntl(fd.get(), F_SETLEASE, F_UNLCK) != 0) {
                const int err = errno;
                spdlog::warn("file watcher {}: fcntl(F_SETLEASE, F_UNLCK) on {} failed: {} (errno {})",
                             root_.string(), file.string(), std::strerror(err), err);
            }
            return Writers::none;
        }
        const int err = errno;
        if (err == EAGAIN) return Writers::some;
        // EACCES: neither the file's owner nor CAP_LEASE. EINVAL: no leases on this filesystem
        // or fs.leases-enable is 0.
        log_lease_unavailable("fcntl(F_SETLEASE) on " + file.string(), err);
        return Writers::unknown;
    }

    void log_lease_unavailable(const std::string& what, int err) {
        if (lease_warned_) return;
        lease_warned_ = true;
        spdlog::warn("file watcher {}: {} failed: {} (errno {}); files found in new directories are assumed "
                     "complete even if still being written",
                     root_.string(), what, std::strerror(err), err);
    }

    void rename_tree(const std::string& from, const std::string& to) {
        if (from == to) return;
        remove_tree(to);  // an empty directory the rename replaced, if its IN_IGNORED is still queued
        std::vector<std::pair<std::string, int>> moved;
        for (auto it = wd_of_dir_.lower_bound(from); it != wd_of_dir_.end();) {
            if (it->first != from && !in_subtree(it->first, from)) break;
            moved.emplace_back(it->first, it->second);
            it = wd_of_dir_.erase(it);
        }
        for (auto& [path, wd] : moved) {
            std::string renamed = to + path.substr(from.size());
            dir_of_wd_[wd] = renamed;
            wd_of_dir_[std::move(renamed)] = wd;
        }
    }

    // Stops watching `top` and everything below it (it left the tree or became hidden).
    void remove_tree(const std::string& top) {
        for (auto it = wd_of_dir_.lower_bound(top); it != wd_of_dir_.end();) {
            if (it->first != top && !in_subtree(it->first, top)) break;
            const int wd = it->second;
            // EINVAL: the kernel already dropped it (the directory was deleted).
            if (::inotify_rm_watch(fd_, wd) != 0) {
                const int err = errno;
                if (err != EINVAL)
                    spdlog::warn("file watcher {}: inotify_rm_watch {} failed: {} (errno {})", root_.string(),
                                 dir_label(it->first), std::strerror(err), err);
            }
            dir_of_wd_.erase(wd);
            erase_listed(wd);
            it = wd_of_dir_.erase(it);
        }
    }

    void forget(int wd) {
        const auto it = dir_of_wd_.find(wd);
        if (it == dir_of_wd_.end()) return;
        if (wd == root_wd_)
            spdlog::error("file watcher {}: the directory was deleted or unmounted; no further events",
                          root_.string());
        const auto by_path = wd_of_dir_.find(it->second);
        if (by_path != wd_of_dir_.end() && by_path->second == wd) wd_of_dir_.erase(by_path);
        dir_of_wd_.erase(it);
        erase_listed(wd);
    }

    void erase_listed(int wd) {
        listed_.erase(listed_.lower_bound({wd, std::string()}), listed_.lower_bound({wd + 1, std::string()}));
    }

    // The kernel has no more events: everything that happened before any listing so far has
    // been read.
    void queue_empty() {
        // The kernel queues a rename's IN_MOVED_FROM and IN_MOVED_TO together, so an
        // IN_MOVED_FROM still unpaired once the queue is empty moved its directory out of the tree.
        auto departed = std::exchange(pending_moves_, {});
        for (const auto& [cookie, rel] : departed) remove_tree(rel);
        listed_.clear();
        if (resync_) {
            resync_ = false;
            add_tree("", Mode::resync);
            spdlog::info("file watcher {}: watching {} directories after the overflow", root_.string(),
                         dir_of_wd_.size());
        }
    }

    void emit(const std::string& key, off_t size) {
        FileEvent ev;
        ev.directory = root_;
        ev.key = key;
        ev.size = static_cast<std::uint64_t>(size);
        ev.time = next_time();
        spdlog::debug("file watcher {}: {} complete ({} bytes)", root_.string(), key, ev.size);
        try {
            cb_(std::move(ev));
        } catch (const std::exception& e) {
            // One bad event must not take the event loop down.
            spdlog::error("file watcher {}: callback for {} threw: {}", root_.string(), key, e.what());
        }
    }

    std::chrono::system_clock::time_point next_time() {
        auto now = std::chrono::system_clock::now();
        if (now <= last_time_) now = last_time_ + std::chrono::system_clock::duration(1);
        last_time_ = now;
        return now;
    }

    std::string dir_label(const std::string& rel) const { return rel.empty() ? root_.string() : rel; }

    const fs::path root_;
    const std::vector<std::string> patterns_;
    const Callback cb_;
    boost::asio::posix::stream_descriptor sd_;
    int fd_ = -1;  // owned by sd_
    bool stopped_ = false;

    int root_wd_ = -1;
    std::unordered_map<int, std::string> dir_of_wd_;
    std::map<std::string, int> wd_of_dir_;  // ordered, so a subtree is one contiguous range
    // IN_MOVED_FROM of a watched directory, by cookie, until its IN_MOVED_TO arrives.
    std::unordered_map<std::uint32_t, std::string> pending_moves_;
    // Files reported by a listing, until the queue drains.
    std::map<std::pair<int, std::string>, FileIdentity> listed_;
    bool resync_ = false;
    std::uint64_t overflows_ = 0;
    bool lease_warned_ = false;
    std::chrono::system_clock::time_point last_time_{};
    alignas(inotify_event) std::array<char, kReadBufferBytes> buf_{};
};

FileWatcher::FileWatcher(boost::asio::io_context& io, std::filesystem::path root, std::vector<std::string> patterns,
                         Callback cb)
    : impl_(std::make_shared<Impl>(io, std::move(root), std::move(patterns), std::move(cb))) {
    impl_->start();
}

FileWatcher::~FileWatcher() {
    if (impl_) impl_->stop();
}

const std::filesystem::path& FileWatcher::root() const noexcept { return impl_->root(); }
std::size_t FileWatcher::watch_count() const noexcept { return impl_->watch_count(); }
std::uint64_t FileWatcher::overflow_count() const noexcept { return impl_->overflow_count(); }

}  // namespace funcd
