#include "funcd/pool/runtime_catalog.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "funcd/common/ids.hpp"
#include "funcd/registry/runtime_ids.hpp"

namespace funcd {

RuntimeCatalog::RuntimeCatalog(Interpreter default_python, std::map<std::string, Interpreter, std::less<>> exact,
                               Interpreter node)
    : default_python_(std::move(default_python)), exact_(std::move(exact)), node_(std::move(node)) {}

const Interpreter& RuntimeCatalog::python_for(std::string_view runtime_id) const {
    auto it = exact_.find(runtime_id);
    return it == exact_.end() ? default_python_ : it->second;
}

std::optional<int> RuntimeCatalog::node_major() const {
    int major = 0;
    const std::string& v = node_.version;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), major);
    if (ec != std::errc() || end == v.data() || (end != v.data() + v.size() && *end != '.')) return std::nullopt;
    return major;
}

std::optional<std::string> RuntimeCatalog::refusal(std::string_view runtime_id) const {
    if (runtime_family(runtime_id) != Runtime::nodejs) return std::nullopt;
    const auto host = node_major();
    if (node_.path.empty() || !host)
        return fmt::format("runtime {} needs Node.js, and this host has none that funcd could run{}; start funcd "
                           "with --node naming a Node.js {} or later",
                           runtime_id, node_.path.empty() ? "" : " (" + node_.path + ")", kMinNodeMajor);
    if (*host < kMinNodeMajor)
        return fmt::format("runtime {} needs Node.js {} or later, and this host runs Node.js {} ({}); start funcd "
                           "with --node naming a newer one",
                           runtime_id, kMinNodeMajor, node_.version, node_.path);
    if (auto wanted = requested_node_major(runtime_id); wanted && *wanted > *host)
        return fmt::format("runtime {} asks for Node.js {}, but this host runs Node.js {} ({}); use nodejs{}.x or "
                           "an older one, or start funcd with --node naming a Node.js {} or later",
                           runtime_id, *wanted, node_.version, node_.path, *host, *wanted);
    return std::nullopt;
}

std::optional<std::string> RuntimeCatalog::preload_refusal(const std::vector<std::string>& modules) const {
    for (const auto& m : modules)
        if (!preloadable_.contains(m))
            return fmt::format("preload: module '{}' is not one this daemon preloads; start funcd with "
                               "--preload-modules naming it (the template imports it outside any sandbox, as "
                               "the daemon's user)",
                               m);
    return std::nullopt;
}

std::string RuntimeCatalog::runtime_version(std::string_view runtime_id) const {
    switch (runtime_family(runtime_id).value_or(Runtime::provided)) {
        case Runtime::python3: {
            const Interpreter& py = python_for(runtime_id);
            return "python:" + (py.version.empty() ? std::string("3") : py.version);
        }
        case Runtime::nodejs: return "nodejs:" + (node_.version.empty() ? std::string("unknown") : node_.version);
        case Runtime::provided: break;
    }
    return "provided:funcd";
}

std::string RuntimeCatalog::runtime_version_hash(std::string_view runtime_id) const {
    std::string path;
    switch (runtime_family(runtime_id).value_or(Runtime::provided)) {
        case Runtime::python3: path = python_for(runtime_id).path; break;
        case Runtime::nodejs: path = node_.path; break;
        case Runtime::provided: break;
    }
    return sha256_hex(runtime_version(runtime_id) + "\n" + path);
}

std::vector<std::string> RuntimeCatalog::python_paths() const {
    std::vector<std::string> out{default_python_.path};
    for (const auto& [id, py] : exact_)
        if (std::find(out.begin(), out.end(), py.path) == out.end()) out.push_back(py.path);
    return out;
}

}  // namespace funcd
