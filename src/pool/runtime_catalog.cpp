#include "funcd/pool/runtime_catalog.hpp"

#include <algorithm>

#include "funcd/common/ids.hpp"
#include "funcd/registry/runtime_ids.hpp"

namespace funcd {

RuntimeCatalog::RuntimeCatalog(Interpreter default_python, std::map<std::string, Interpreter, std::less<>> exact)
    : default_python_(std::move(default_python)), exact_(std::move(exact)) {}

const Interpreter& RuntimeCatalog::python_for(std::string_view runtime_id) const {
    auto it = exact_.find(runtime_id);
    return it == exact_.end() ? default_python_ : it->second;
}

std::string RuntimeCatalog::runtime_version(std::string_view runtime_id) const {
    if (runtime_family(runtime_id) != Runtime::python3) return "provided:funcd";
    const Interpreter& py = python_for(runtime_id);
    return "python:" + (py.version.empty() ? std::string("3") : py.version);
}

std::string RuntimeCatalog::runtime_version_hash(std::string_view runtime_id) const {
    const std::string path = runtime_family(runtime_id) == Runtime::python3 ? python_for(runtime_id).path : "";
    return sha256_hex(runtime_version(runtime_id) + "\n" + path);
}

std::vector<std::string> RuntimeCatalog::python_paths() const {
    std::vector<std::string> out{default_python_.path};
    for (const auto& [id, py] : exact_)
        if (std::find(out.begin(), out.end(), py.path) == out.end()) out.push_back(py.path);
    return out;
}

}  // namespace funcd
