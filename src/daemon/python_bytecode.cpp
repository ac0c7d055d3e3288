#include "funcd/daemon/python_bytecode.hpp"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "funcd/daemon/captured_run.hpp"

namespace funcd {
namespace {

using Clock = std::chrono::steady_clock;

// compileall -q prints one complaint per file it could not compile; this is enough to
// say what went wrong without letting a runaway child fill the daemon's log.
constexpr std::size_t kMaxOutputBytes = 4096;
// Workers run as other uids than the daemon: whatever umask the daemon was started with,
// they must be able to read the __pycache__ directory it creates, or they silently fall
// back to compiling from source. (A .pyc gets its source's permission bits.)
constexpr mode_t kCacheUmask = 022;
constexpr const char* kFromSource = "python3 workers compile what is missing from source on every start";

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
    return text;
}

long elapsed_ms(Clock::time_point since) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

}  // namespace

bool compile_python_runtime(const std::string& python, const std::filesystem::path& runtime_dir,
                            std::chrono::milliseconds timeout) {
    const auto started = Clock::now();
    const std::string dir = (runtime_dir / "python").string();
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        spdlog::warn("python bytecode: {} is not a directory; nothing to compile", dir);
        return false;
    }
    // --invalidation-mode timestamp: with SOURCE_DATE_EPOCH set, compileall would write
    // hash-checked files instead, which make every import read and hash the source.
    const CapturedRun run = run_captured({python, "-I", "-m", "compileall", "-q", "--invalidation-mode", "timestamp", dir},
                                         timeout, kMaxOutputBytes, kCacheUmask);
    if (!run.started) {
        spdlog::warn("python bytecode: {}; {}", run.failure, kFromSource);
        return false;
    }
    if (run.timed_out) {
        spdlog::warn("python bytecode: compiling {} did not finish within {} ms; {}", dir, timeout.count(), kFromSource);
        return false;
    }
    if (!run.succeeded()) {
        spdlog::warn("python bytecode: compiling {} with {} failed ({}): {}; {}", dir, python, run.describe(),
                     trimmed(run.output), kFromSource);
        return false;
    }
    spdlog::info("python bytecode: {} compiled with {} ({} ms)", dir, python, elapsed_ms(started));
    return true;
}

}  // namespace funcd
