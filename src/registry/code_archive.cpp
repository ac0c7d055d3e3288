#include "funcd/common/storage_full.hpp"
#include "funcd/registry/code_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/unique_fd.hpp"

namespace funcd {

namespace fs = std::filesystem;

namespace {

// Linux's own bound on symlink hops in one lookup (MAXSYMLINKS), so a chain we accept
// is one the kernel would also follow.
constexpr int kMaxSymlinkHops = 40;
// Large enough to amortise the read/write syscalls, small enough for the stack of a pool thread.
constexpr std::size_t kCopyBufferBytes = 64 * 1024;

enum class Kind { file, dir, symlink };

struct Entry {
    std::string path;    // normalised: components joined by '/', no '.', no empty parts
    Kind kind;
    std::string target;  // symlinks only, as stored
    bool executable = false;
};

[[noreturn]] void reject(const std::string& message) { throw ApiError::bad_parameter(message); }

[[noreturn]] void reject_entry(const std::string& name, const std::string& why) {
    reject("zip entry '" + name + "' " + why);
}

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_read_free)>;

// libarchive's description of its last error. It has none for some malformed archives (a
// failed read then leaves the string NULL), and a NULL appended to a std::string crashes.
std::string archive_error(archive* a) {
    const char* text = archive_error_string(a);
    return text ? text : "malformed archive (libarchive gave no details)";
}

ArchivePtr open_zip(std::string_view zip) {
    ArchivePtr a(archive_read_new(), &archive_read_free);
    if (!a) throw ApiError::internal("cannot allocate an archive reader");
    archive_read_support_format_zip(a.get());
    if (archive_read_open_memory(a.get(), zip.data(), zip.size()) != ARCHIVE_OK)
        reject("the code is not a valid zip archive: " + archive_error(a.get()));
    return a;
}

// Reads the next header; false at the end. Warnings (e.g. a file name that does not
// convert to the locale's charset) are tolerated because every name is checked here anyway.
bool next_header(archive* a, archive_entry*& e) {
    const int rc = archive_read_next_header(a, &e);
    if (rc == ARCHIVE_EOF) return false;
    if (rc == ARCHIVE_WARN) {
        spdlog::debug("zip reader warning: {}", archive_error(a));
        return true;
    }
    if (rc != ARCHIVE_OK) reject("the code is not a valid zip archive: " + archive_error(a));
    return true;
}

std::vector<std::string> split_components(std::string_view p) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= p.size()) {
        auto end = p.find('/', start);
        if (end == std::string_view::npos) end = p.size();
        if (end > start) out.emplace_back(p.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count; ++i) {
        if (i) out += '/';
        out += parts[i];
    }
    return out;
}

bool has_control_chars(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

std::string normalise_entry_path(const std::string& name) {
    if (name.empty()) reject("a zip entry has an empty name");
    if (has_control_chars(name)) reject_entry(name, "has control characters in its name");
    if (name[0] == '/') reject_entry(name, "has an absolute path");
    std::vector<std::string> parts;
    for (auto& c : split_components(name)) {
        if (c == "..") reject_entry(name, "has a '..' path component");
        if (c != ".") parts.push_back(std::move(c));
    }
    return join(parts, parts.size());
}

Entry read_entry(archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    if (!raw) reject("a zip entry has a name that cannot be read");
    const std::string name = raw;
    if (archive_entry_hardlink(e)) reject_entry(name, "is a hard link");

    Entry out;
    out.path = normalise_entry_path(name);
    switch (archive_entry_filetype(e)) {
        case AE_IFREG: out.kind = Kind::file; break;
        case AE_IFDIR: out.kind = Kind::dir; break;
        case AE_IFLNK: {
            out.kind = Kind::symlink;
            const char* target = archive_entry_symlink(e);
            if (!target || !*target) reject_entry(name, "is a symlink without a target");
            if (has_control_chars(target)) reject_entry(name, "is a symlink whose target has control characters");
            out.target = target;
            break;
        }
        case AE_IFCHR:
        case AE_IFBLK: reject_entry(name, "is a device node");
        case AE_IFIFO: reject_entry(name, "is a fifo");
        case AE_IFSOCK: reject_entry(name, "is a socket");
        default: reject_entry(name, "has an unsupported file type");
    }
    if (out.path.empty() && out.kind != Kind::dir) reject_entry(name, "names the archive root");
    out.executable = (archive_entry_perm(e) & 0111) != 0;
    return out;
}

// Resolves a symlink's target the way the kernel would inside the unpacked tree, expanding
// symlinks the archive itself defines (a link to "." makes "link/.." the root's parent, which
// a purely textual check would miss). Returns false when the target leaves the root.
bool resolves_inside(const std::map<std::string, std::string>& links, const std::string& link_path) {
    std::vector<std::string> at = split_components(link_path);
    at.pop_back();  // relative targets start at the link's own directory
    std::vector<std::string> todo = split_components(links.at(link_path));  // reversed: next at the back
    std::reverse(todo.begin(), todo.end());
    int hops = 1;
    while (!todo.empty()) {
        std::string c = std::move(todo.back());
        todo.pop_back();
        if (c == ".") continue;
        if (c == "..") {
            if (at.empty()) return false;
            at.pop_back();
            continue;
        }
        at.push_back(std::move(c));
        const auto link = links.find(join(at, at.size()));
        if (link == links.end()) continue;
        if (++hops > kMaxSymlinkHops) return false;
        if (!link->second.empty() && link->second[0] == '/') return false;
        at.pop_back();
        auto more = split_components(link->second);
        todo.insert(todo.end(), more.rbegin(), more.rend());
    }
    return true;
}

// Every check that needs only the headers, done before anything touches the disk.
std::vector<Entry> scan(std::string_view zip, const ArchiveLimits& lim) {
    auto a = open_zip(zip);
    std::vector<Entry> entries;
    std::map<std::string, Kind> kinds;
    archive_entry* e = nullptr;
    while (next_header(a.get(), e)) {
        if (entries.size() >= lim.max_entries)
            reject("the zip has more than " + std::to_string(lim.max_entries) + " entries");
        Entry entry = read_entry(e);
        if (entry.path.empty()) continue;  // an explicit "./" adds nothing
        if (!kinds.emplace(entry.path, entry.kind).second) reject_entry(entry.path, "appears more than once");
        entries.push_back(std::move(entry));
    }

    std::map<std::string, std::string> links;
    for (const auto& entry : entries) {
        // Writing below a file fails, and writing below a symlink could land anywhere.
        const auto parts = split_components(entry.path);
        for (std::size_t n = 1; n < parts.size(); ++n) {
            const auto parent = kinds.find(join(parts, n));
            if (parent != kinds.end() && parent->second != Kind::dir)
                reject_entry(entry.path, "is inside '" + parent->first + "', which is not a directory");
        }
        if (entry.kind == Kind::symlink) {
            if (entry.target[0] == '/') reject_entry(entry.path, "is a symlink to an absolute path");
            links.emplace(entry.path, entry.target);
        }
    }
    for (const auto& [path, target] : links)
        if (!resolves_inside(links, path)) reject_entry(path, "is a symlink that leads outside the archive");
    return entries;
}

[[noreturn]] void io_failure(const std::string& what, const fs::path& p, int err) {
    if (err == ENAMETOOLONG) reject("zip entry '" + p.string() + "' has a path that is too long");
    if (is_storage_full(err)) throw StorageFull("no space left to unpack the code (" + p.filename().string() + ")");
    throw ApiError::internal("cannot " + what + " " + p.string() + ": " + std::strerror(err));
}

// Creates `rel`'s directories below `dest`, remembering them for the final chmod.
void make_dirs(const fs::path& dest, const std::vector<std::string>& parts, std::size_t count,
               std::set<std::string>& made) {
    for (std::size_t n = 1; n <= count; ++n) {
        std::string rel = join(parts, n);
        if (made.count(rel)) continue;
        const fs::path p = dest / rel;
        if (::mkdir(p.c_str(), 0700) != 0 && errno != EEXIST) io_failure("create directory", p, errno);
        made.insert(std::move(rel));
    }
}

void write_file(archive* a, const Entry& entry, const fs::path& path, const ArchiveLimits& lim,
                UnpackStats& stats) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) io_failure("create", path, errno);
    std::vector<char> buf(kCopyBufferBytes);
    for (;;) {
        const la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
        if (n == 0) break;
        if (n < 0) reject_entry(entry.path, "cannot be read: " + archive_error(a));
        stats.bytes += static_cast<std::uint64_t>(n);
        if (stats.bytes > lim.max_unpacked_bytes)
            reject("the zip unpacks to more than " + std::to_string(lim.max_unpacked_bytes) + " bytes (at entry '" +
                   entry.path + "')");
        for (la_ssize_t off = 0; off < n;) {
            const ssize_t w = ::write(fd.get(), buf.data() + off, static_cast<std::size_t>(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                io_failure("write", path, errno);
            }
            off += w;
        }
    }
    if (::fchmod(fd.get(), entry.executable ? 0555 : 0444) != 0) io_failure("chmod", path, errno);
}

UnpackStats write_tree(std::string_view zip, const fs::path& dest, const std::vector<Entry>& entries,
                       const ArchiveLimits& lim) {
    auto a = open_zip(zip);
    UnpackStats stats;
    std::set<std::string> dirs;
    std::vector<const Entry*> links;
    archive_entry* e = nullptr;
    std::size_t i = 0;
    while (next_header(a.get(), e)) {
        const char* raw = archive_entry_pathname(e);
        if (normalise_entry_path(raw ? raw : "").empty()) continue;
        // Same bytes, same reader: the order must match the scan. Anything else is a reader bug.
        if (i >= entries.size() || normalise_entry_path(raw) != entries[i].path)
            throw ApiError::internal("the zip read differently on the second pass");
        const Entry& entry = entries[i++];
        ++stats.entries;
        const auto parts = split_components(entry.path);
        switch (entry.kind) {
            case Kind::dir: make_dirs(dest, parts, parts.size(), dirs); break;
            case Kind::file:
                make_dirs(dest, parts, parts.size() - 1, dirs);
                write_file(a.get(), entry, dest / entry.path, lim, stats);
                break;
            case Kind::symlink:
                // Created last so no file is ever written through one.
                make_dirs(dest, parts, parts.size() - 1, dirs);
                links.push_back(&entry);
                break;
        }
    }
    for (const Entry* link : links) {
        const fs::path p = dest / link->path;
        if (::symlink(link->target.c_str(), p.c_str()) != 0) io_failure("create symlink", p, errno);
    }
    for (const auto& d : dirs) {
        const fs::path p = dest / d;
        if (::chmod(p.c_str(), 0555) != 0) io_failure("chmod", p, errno);
    }
    if (::chmod(dest.c_str(), 0555) != 0) io_failure("chmod", dest, errno);
    return stats;
}

}  // namespace

UnpackStats unpack_zip(std::string_view zip, const fs::path& dest, const ArchiveLimits& lim) {
    const auto entries = scan(zip, lim);
    std::error_code ec;
    if (dest.has_parent_path()) fs::create_directories(dest.parent_path(), ec);
    if (::mkdir(dest.c_str(), 0700) != 0) io_failure("create directory", dest, errno);
    try {
        const auto stats = write_tree(zip, dest, entries, lim);
        spdlog::debug("unpacked {} entries, {} bytes into {}", stats.entries, stats.bytes, dest.string());
        return stats;
    } catch (const std::exception& ex) {
        spdlog::debug("unpacking into {} failed: {}", dest.string(), ex.what());
        remove_readonly_tree(dest);
        throw;
    }
}

void remove_readonly_tree(const fs::path& root) {
    std::error_code ec;
    const auto st = fs::symlink_status(root, ec);
    if (ec || !fs::exists(st)) return;
    if (fs::is_directory(st)) {
        // Unlinking needs write permission on the parent directory, which unpack_zip took away.
        ::chmod(root.c_str(), 0700);
        for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
            std::error_code sec;
            if (it->symlink_status(sec).type() == fs::file_type::directory) ::chmod(it->path().c_str(), 0700);
        }
    }
    fs::remove_all(root, ec);
    if (ec) spdlog::warn("cannot remove {}: {}", root.string(), ec.message());
}

}  // namespace funcd
