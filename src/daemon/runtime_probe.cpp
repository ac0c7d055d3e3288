#include "funcd/daemon/runtime_probe.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <filesystem>

#include "funcd/daemon/captured_run.hpp"
#include "funcd/registry/runtime_ids.hpp"

namespace funcd {
namespace {

// An interpreter prints its version in a few tens of milliseconds; a host busy starting
// up may be much slower, and a failure only costs the version in reports.
constexpr auto kProbeTimeout = std::chrono::seconds(10);
constexpr std::size_t kMaxProbeOutput = 256;

std::string python_version(const std::string& python) {
    const CapturedRun run =
        run_captured({python, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"}, kProbeTimeout,
                     kMaxProbeOutput);
    if (!run.succeeded()) {
        spdlog::warn("runtimes: cannot ask {} for its version ({})", python, run.describe());
        return {};
    }
    std::string v = run.output;
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    return v;
}

}  // namespace

RuntimeCatalog probe_runtimes(const std::string& default_python) {
    Interpreter fallback{default_python, python_version(default_python)};
    // /usr/bin/python3 is usually a link to one of the python3.X: the same interpreter is
    // asked once and gets its runtime's bytecode compiled once.
    std::error_code ec;
    const auto fallback_real = std::filesystem::canonical(default_python, ec);
    std::map<std::string, Interpreter, std::less<>> exact;
    std::string found;
    for (const auto& id : supported_runtime_ids()) {
        auto wanted = requested_python_version(id);
        if (!wanted) continue;
        const std::string path = "/usr/bin/python" + *wanted;
        if (::access(path.c_str(), X_OK) != 0) continue;
        const auto real = std::filesystem::canonical(path, ec);
        if (!ec && real == fallback_real) exact.emplace(id, fallback);
        else exact.emplace(id, Interpreter{path, python_version(path)});
        found += " " + id;
    }
    spdlog::info("runtimes: python3 is {} ({}); own interpreters for:{}", fallback.path,
                 fallback.version.empty() ? "version unknown" : fallback.version, found.empty() ? " none" : found);
    return RuntimeCatalog(std::move(fallback), std::move(exact));
}

}  // namespace funcd
