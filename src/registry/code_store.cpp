#include "funcd/common/storage_full.hpp"
#include "funcd/registry/code_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/registry/code_archive.hpp"
#include "funcd/registry/temporary_name.hpp"

namespace funcd {

namespace fs = std::filesystem;

CodeStore::CodeStore(fs::path root) : root_(std::move(root)) { fs::create_directories(root_); }

namespace {

// Writes `data` to `path` through a temporary file and a rename, so a file at `path` is
// always complete.
void write_file_atomically(const fs::path& path, std::string_view data) {
    const fs::path tmp = path.parent_path() / temporary_name();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) {
        const int err = errno;
        if (is_storage_full(err)) throw StorageFull("no space left to store the code's zip");
        throw std::runtime_error("cannot create " + tmp.string() + ": " + std::strerror(err));
    }
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            if (is_storage_full(err)) throw StorageFull("no space left to store the code's zip");
            throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(err));
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw std::runtime_error("cannot store " + path.string() + ": " + std::strerror(err));
    }
}

}  // namespace

StoredCode CodeStore::put(std::string_view zip) {
    StoredCode out{sha256_hex(zip), static_cast<std::int64_t>(zip.size()), {}};
    out.dir = dir_for(out.sha256);
    std::lock_guard lock(mutex_);
    std::error_code ec;
    // Trees stored before zips were kept get their zip on the next upload of the same bytes.
    auto keep_zip = [&] {
        if (!fs::exists(zip_for(out.sha256), ec)) write_file_atomically(zip_for(out.sha256), zip);
    };
    if (fs::is_directory(out.dir, ec)) {
        keep_zip();
        return out;
    }

    // Unpack beside the final name and rename, so a tree at <sha> is always complete.
    const fs::path tmp = root_ / temporary_name();
    const auto stats = unpack_zip(zip, tmp);
    try {
        keep_zip();  // only for a zip that unpacked
    } catch (...) {
        remove_readonly_tree(tmp);
        throw;
    }
    if (std::rename(tmp.c_str(), out.dir.c_str()) != 0) {
        const int err = errno;
        remove_readonly_tree(tmp);
        // Another process stored the same bytes first; its tree is identical.
        if ((err == EEXIST || err == ENOTEMPTY) && fs::is_directory(out.dir, ec)) return out;
        throw ApiError::internal("cannot store code " + out.sha256 + ": " + std::strerror(err));
    }
    spdlog::info("stored code {} ({} bytes zipped, {} entries, {} bytes unpacked)", out.sha256, out.size,
                 stats.entries, stats.bytes);
    out.created = true;
    return out;
}

void CodeStore::discard(const StoredCode& code) {
    if (!code.created) return;
    std::lock_guard lock(mutex_);
    spdlog::info("removing code {} of a failed deploy", code.sha256);
    remove_readonly_tree(code.dir);
    std::error_code ec;
    fs::remove(zip_for(code.sha256), ec);
}

void CodeStore::collect_garbage(const std::set<std::string>& in_use) {
    std::lock_guard lock(mutex_);
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (const auto& entry : fs::directory_iterator(root_, ec)) {
        const std::string name = entry.path().filename().string();
        std::error_code sec;
        const auto type = entry.symlink_status(sec).type();
        if (type == fs::file_type::regular) {
            // A kept zip, or a zip being written (its temporary name is not a hash in use).
            const std::string hash = entry.path().extension() == ".zip" ? entry.path().stem().string() : name;
            if (!in_use.count(hash)) doomed.push_back(entry.path());
            continue;
        }
        if (in_use.count(name)) continue;
        if (type != fs::file_type::directory) continue;
        doomed.push_back(entry.path());
    }
    if (ec) spdlog::warn("cannot list {}: {}", root_.string(), ec.message());
    for (const auto& p : doomed) {
        spdlog::info("removing unused code {}", p.filename().string());
        remove_readonly_tree(p);
    }
}

}  // namespace funcd
