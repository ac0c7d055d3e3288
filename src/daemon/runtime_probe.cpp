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

// `node --version` prints "v20.20.2" without starting any JavaScript.
std::string node_version(const std::string& node) {
    if (node.empty()) return {};
    const CapturedRun run = run_captured({node, "--version"}, kProbeTimeout, kMaxProbeOutput);
    if (!run.succeeded()) {
        spdlog::warn("runtimes: cannot ask {} for its version ({}); Node.js functions are refused", node,
                     run.describe());
        return {};
    }
    std::string v = run.output;
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
    if (v.starts_with('v')) v.erase(0, 1);
    return v;
}

}  // namespace

RuntimeCatalog probe_runtimes(const std::string& default_python, const std::string& node) {
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
    Interpreter host_node{node, node_version(node)};
    if (!host_node.version.empty())
        spdlog::info("runtimes: nodejs is {} ({}), for nodejs and nodejs*.x up to nodejs{}.x", host_node.path,
                     host_node.version, host_node.version.substr(0, host_node.version.find('.')));
    return RuntimeCatalog(std::move(fallback), std::move(exact), std::move(host_node));
}

}  // namespace funcd
