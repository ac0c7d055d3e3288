#include "funcd/cli/deploy_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>

#include "funcd/cli/cli_error.hpp"
#include "funcd/common/text.hpp"

namespace funcd::cli {

namespace fs = std::filesystem;

namespace {

// The earliest time a zip's DOS date can hold (1980-01-01 00:00:00 UTC): every entry gets
// it, so a checkout's or a build's mtimes never change the bytes.
constexpr std::time_t kFixedMtime = 315532800;
constexpr const char* kIgnoreFile = ".funcdignore";

bool match_class(std::string_view& p, char c, bool& matched) {
    // p starts at '['; on success p is moved past the closing ']'.
    std::size_t i = 1;
    bool negate = false;
    if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
        negate = true;
        ++i;
    }
    bool any = false;
    bool first = true;
    for (; i < p.size() && (first || p[i] != ']'); ++i) {
        first = false;
        char lo = p[i];
        if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
        char hi = lo;
        if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
            hi = p[i + 2];
            if (hi == '\\' && i + 3 < p.size()) hi = p[++i + 2];
            i += 2;
        }
        if (lo <= c && c <= hi) any = true;
    }
    if (i >= p.size()) return false;  // no closing ']': not a class
    p.remove_prefix(i + 1);
    matched = any != negate;
    return true;
}

bool match_from(std::string_view p, std::string_view s) {
    while (!p.empty()) {
        if (p.starts_with("**")) {
            std::string_view rest = p.substr(2);
            const bool slash = rest.starts_with("/");
            if (slash) rest.remove_prefix(1);
            if (rest.empty()) return true;
            // `**/` stands for zero or more whole segments; a bare `**` for anything.
            for (std::size_t i = 0; i <= s.size(); ++i)
                if ((!slash || i == 0 || s[i - 1] == '/') && match_from(rest, s.substr(i))) return true;
            return false;
        }
        const char c = p.front();
        if (c == '*') {
            const std::string_view rest = p.substr(1);
            for (std::size_t i = 0; i <= s.size(); ++i) {
                if (match_from(rest, s.substr(i))) return true;
                if (i < s.size() && s[i] == '/') break;
            }
            return false;
        }
        if (s.empty()) return false;
        if (c == '?') {
            if (s.front() == '/') return false;
            p.remove_prefix(1);
        } else if (c == '[') {
            bool matched = false;
            std::string_view q = p;
            if (s.front() != '/' && match_class(q, s.front(), matched)) {
                if (!matched) return false;
                p = q;
            } else {
                if (s.front() != '[') return false;
                p.remove_prefix(1);
            }
        } else {
            char literal = c;
            if (c == '\\' && p.size() > 1) {
                literal = p[1];
                p.remove_prefix(1);
            }
            if (s.front() != literal) return false;
            p.remove_prefix(1);
        }
        s.remove_prefix(1);
    }
    return s.empty();
}

struct ArchiveDeleter {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// libarchive writes a zip's DOS date in local time: pin the zone to UTC while writing so
// that the bytes do not depend on the machine's zone. (The CLI is single-threaded.)
class UtcZone {
public:
    UtcZone() {
        if (const char* tz = std::getenv("TZ")) saved_ = tz;
        ::setenv("TZ", "UTC0", 1);
        ::tzset();
    }
    ~UtcZone() {
        if (saved_) ::setenv("TZ", saved_->c_str(), 1);
        else ::unsetenv("TZ");
        ::tzset();
    }
    UtcZone(const UtcZone&) = delete;
    UtcZone& operator=(const UtcZone&) = delete;

private:
    std::optional<std::string> saved_;
};

std::string read_whole(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw CliError::usage("cannot read " + p.string() + ": " + std::strerror(errno));
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw CliError::usage("cannot read " + p.string());
    return data;
}

// Adds what `dir` holds to `out`; true when it held anything.
bool walk(const fs::path& root, const fs::path& dir, const std::string& prefix, const IgnoreRules& rules,
          std::vector<std::string>& out) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) throw CliError::usage("cannot read directory " + dir.string() + ": " + ec.message());
    std::vector<fs::directory_entry> children(begin(it), end(it));
    for (const auto& child : children) {
        const std::string name = child.path().filename().string();
        const std::string rel = prefix.empty() ? name : prefix + "/" + name;
        if (prefix.empty() && (name == kIgnoreFile || name == ".git")) continue;
        const auto status = fs::symlink_status(child.path(), ec);
        if (ec) throw CliError::usage("cannot read " + child.path().string() + ": " + ec.message());
        const bool is_dir = fs::is_directory(status);
        if (rules.ignored(rel, is_dir)) continue;
        if (is_dir) {
            // A directory whose every entry is left out is left out too (as git would):
            // only directories empty on disk are kept empty.
            out.push_back(rel);
            const std::size_t before = out.size();
            if (walk(root, child.path(), rel, rules, out) && out.size() == before) out.pop_back();
        } else if (fs::is_regular_file(status) || fs::is_symlink(status)) {
            out.push_back(rel);
        } else {
            throw CliError::usage(child.path().string() + " is neither a file, a directory nor a symlink; leave it out "
                                  "with a line in " + (root / kIgnoreFile).string());
        }
    }
    return !children.empty();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view path) { return match_from(pattern, path); }

IgnoreRules IgnoreRules::parse(std::string_view text) {
    IgnoreRules out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string line = trim(text.substr(start, end - start));
        start = end + 1;
        if (line.empty() || line[0] == '#') continue;
        Rule r;
        if (line[0] == '!') {
            r.negate = true;
            line.erase(0, 1);
        }
        if (!line.empty() && line.back() == '/') {
            r.dir_only = true;
            while (!line.empty() && line.back() == '/') line.pop_back();
        }
        r.has_slash = line.find('/') != std::string::npos;
        while (!line.empty() && line.front() == '/') line.erase(0, 1);
        if (line.empty()) continue;
        r.pattern = std::move(line);
        out.rules_.push_back(std::move(r));
    }
    return out;
}

IgnoreRules IgnoreRules::load(const fs::path& dir) {
    const fs::path file = dir / kIgnoreFile;
    std::error_code ec;
    if (!fs::exists(file, ec)) return {};
    return parse(read_whole(file));
}

bool IgnoreRules::ignored(std::string_view path, bool is_dir) const {
    const auto slash = path.rfind('/');
    const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    bool out = false;
    for (const auto& r : rules_) {
        if (r.dir_only && !is_dir) continue;
        if (glob_match(r.pattern, r.has_slash ? path : name)) out = !r.negate;
    }
    return out;
}

std::vector<std::string> archive_paths(const fs::path& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw CliError::usage(dir.string() + " is not a directory");
    const IgnoreRules rules = IgnoreRules::load(dir);
    std::vector<std::string> out;
    walk(dir, dir, "", rules, out);
    std::sort(out.begin(), out.end());
    return out;
}

std::string zip_directory(const fs::path& dir) {
    const std::vector<std::string> paths = archive_paths(dir);
    std::string zip;
    std::unique_ptr<archive, ArchiveDeleter> a(archive_write_new());
    auto fail = [&](const std::string& what) {
        return CliError::usage("cannot zip " + dir.string() + ": " + what + ": " + archive_error_string(a.get()));
    };
    if (archive_write_set_format_zip(a.get()) != ARCHIVE_OK) throw fail("zip format");
    if (archive_write_set_options(a.get(), "zip:compression=deflate") != ARCHIVE_OK) throw fail("deflate");
    // Bytes go straight into `zip`; no padding to blocks (a zip has none).
    archive_write_set_bytes_in_last_block(a.get(), 1);
    auto write_cb = [](archive*, void* user, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
    };
    UtcZone utc;
    if (archive_write_open2(a.get(), &zip, nullptr, write_cb, nullptr, nullptr) != ARCHIVE_OK) throw fail("open");

    for (const auto& rel : paths) {
        const fs::path full = dir / rel;
        struct stat st {};
        if (::lstat(full.c_str(), &st) != 0)
            throw CliError::usage("cannot read " + full.string() + ": " + std::strerror(errno));
        std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
        archive_entry_set_pathname(e.get(), rel.c_str());
        archive_entry_set_mtime(e.get(), kFixedMtime, 0);
        archive_entry_set_uid(e.get(), 0);
        archive_entry_set_gid(e.get(), 0);
        std::string data;
        if (S_ISDIR(st.st_mode)) {
            archive_entry_set_filetype(e.get(), AE_IFDIR);
            archive_entry_set_perm(e.get(), 0755);
        } else if (S_ISLNK(st.st_mode)) {
            std::error_code ec;
            const fs::path target = fs::read_symlink(full, ec);
            if (ec) throw CliError::usage("cannot read the link " + full.string() + ": " + ec.message());
            archive_entry_set_filetype(e.get(), AE_IFLNK);
            archive_entry_set_perm(e.get(), 0777);
            archive_entry_set_symlink(e.get(), target.c_str());
        } else {
            data = read_whole(full);
            archive_entry_set_filetype(e.get(), AE_IFREG);
            archive_entry_set_perm(e.get(), (st.st_mode & S_IXUSR) ? 0755 : 0644);
            archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
        }
        if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) throw fail(rel);
        if (!data.empty() && archive_write_data(a.get(), data.data(), data.size()) < 0) throw fail(rel);
    }
    if (archive_write_close(a.get()) != ARCHIVE_OK) throw fail("close");
    return zip;
}

}  // namespace funcd::cli
