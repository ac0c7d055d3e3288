#include "funcd/registry/code_store.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/registry/code_archive.hpp"

namespace funcd {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kTmpPrefix = ".tmp-";
// 64 random bits: unique among concurrent unpacks, even across daemon processes sharing a root.
constexpr std::size_t kTmpSuffixBytes = 8;
}  // namespace

CodeStore::CodeStore(fs::path root) : root_(std::move(root)) { fs::create_directories(root_); }

StoredCode CodeStore::put(std::string_view zip) {
    StoredCode out{sha256_hex(zip), static_cast<std::int64_t>(zip.size()), {}};
    out.dir = dir_for(out.sha256);
    std::lock_guard lock(mutex_);
    std::error_code ec;
    if (fs::is_directory(out.dir, ec)) return out;

    // Unpack beside the final name and rename, so a tree at <sha> is always complete.
    const fs::path tmp = root_ / (std::string(kTmpPrefix) + random_hex(kTmpSuffixBytes));
    const auto stats = unpack_zip(zip, tmp);
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
}

void CodeStore::collect_garbage(const std::set<std::string>& in_use) {
    std::lock_guard lock(mutex_);
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (const auto& entry : fs::directory_iterator(root_, ec)) {
        const std::string name = entry.path().filename().string();
        if (in_use.count(name)) continue;
        std::error_code sec;
        if (entry.symlink_status(sec).type() != fs::file_type::directory) continue;
        doomed.push_back(entry.path());
    }
    if (ec) spdlog::warn("cannot list {}: {}", root_.string(), ec.message());
    for (const auto& p : doomed) {
        spdlog::info("removing unused code {}", p.filename().string());
        remove_readonly_tree(p);
    }
}

}  // namespace funcd
