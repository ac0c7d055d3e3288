// Unpacking an uploaded zip (funcd::unpack_zip) into a fresh directory per input, removed
// again afterwards.
//
// Invariants:
// - a refused archive is refused with a 400 naming the problem, and leaves nothing behind;
// - an accepted one leaves only directories (0555), read-only regular files and relative
//   symlinks, every symlink resolving (as the kernel resolves it) inside the tree;
// - the bytes on disk are the bytes the unpacker counted, within the limit;
// - remove_readonly_tree() removes the whole tree.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <spdlog/spdlog.h>

#include "../fuzz_check.hpp"
#include "funcd/common/api_error.hpp"
#include "funcd/registry/code_archive.hpp"

namespace {

namespace fs = std::filesystem;

// Small limits, so the fuzzer reaches them with short inputs and no input writes much.
constexpr funcd::ArchiveLimits kLimits{1024 * 1024, 64};

fs::path scratch;  // this process's own directory; each input unpacks into scratch/tree

void remove_scratch() {
    std::error_code ec;
    fs::remove_all(scratch, ec);
}

bool is_inside(const fs::path& p, const fs::path& root) {
    const auto rel = p.lexically_relative(root);
    return !rel.empty() && *rel.begin() != "..";
}

// Where the kernel would take a symlink (the prefix that exists resolved, the rest
// normalised); nullopt for a loop, which is no escape.
std::optional<fs::path> resolve(const fs::path& link) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(link, ec);
    FUZZ_CHECK(!ec, "cannot read the symlink " + link.string());
    FUZZ_CHECK(!target.is_absolute(), "an absolute symlink " + link.string() + " -> " + target.string());
    const fs::path resolved = fs::weakly_canonical(link.parent_path() / target, ec);
    if (ec) return std::nullopt;
    return resolved;
}

void check_tree(const fs::path& root, const funcd::UnpackStats& stats) {
    std::error_code ec;
    const fs::path real_root = fs::canonical(root, ec);
    FUZZ_CHECK(!ec, "the tree's root is gone");
    struct stat st {};
    FUZZ_CHECK(::lstat(root.c_str(), &st) == 0 && (st.st_mode & 07777) == 0555, "the root is not 0555");
    std::uint64_t bytes = 0;
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        const fs::path& p = it->path();
        FUZZ_CHECK(::lstat(p.c_str(), &st) == 0, "cannot lstat " + p.string());
        const auto mode = st.st_mode & 07777;
        if (S_ISDIR(st.st_mode)) {
            FUZZ_CHECK(mode == 0555, p.string() + " is a directory with mode " + std::to_string(mode));
        } else if (S_ISREG(st.st_mode)) {
            FUZZ_CHECK(mode == 0444 || mode == 0555, p.string() + " is a file with mode " + std::to_string(mode));
            bytes += static_cast<std::uint64_t>(st.st_size);
        } else if (S_ISLNK(st.st_mode)) {
            if (const auto to = resolve(p))
                FUZZ_CHECK(is_inside(*to, real_root) || *to == real_root,
                           "the symlink " + p.string() + " leads to " + to->string() + ", outside the tree");
        } else {
            FUZZ_CHECK(false, p.string() + " is neither a directory, a file nor a symlink");
        }
    }
    FUZZ_CHECK(!ec, "cannot walk the tree: " + ec.message());
    FUZZ_CHECK(bytes == stats.bytes,
               std::to_string(bytes) + " bytes on disk, " + std::to_string(stats.bytes) + " counted");
    FUZZ_CHECK(bytes <= kLimits.max_unpacked_bytes, "more bytes than the limit");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);
    // tmpfs when there is one: thousands of inputs a second create and remove trees.
    const char* base = std::getenv("FUNCD_FUZZ_TMPDIR");
    if (!base) base = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    scratch = fs::path(base) / ("funcd-fuzz-code-archive-" + std::to_string(::getpid()));
    fs::create_directories(scratch);
    std::atexit(remove_scratch);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view zip(reinterpret_cast<const char*>(data), size);
    const fs::path tree = scratch / "tree";
    funcd::UnpackStats stats;
    try {
        stats = funcd::unpack_zip(zip, tree, kLimits);
    } catch (const funcd::ApiError& e) {
        FUZZ_CHECK(e.status() == 400, "refused with " + std::to_string(e.status()) + " " + e.type() + ": " + e.what());
        FUZZ_CHECK(!fs::exists(fs::symlink_status(tree)), "a refused archive left " + tree.string() + " behind");
        return 0;
    }
    FUZZ_CHECK(stats.entries <= kLimits.max_entries, "more entries than the limit");
    check_tree(tree, stats);
    funcd::remove_readonly_tree(tree);
    FUZZ_CHECK(!fs::exists(fs::symlink_status(tree)), "remove_readonly_tree left " + tree.string() + " behind");
    return 0;
}
