#include "funcd/registry/layer_version.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace funcd {

namespace {
constexpr std::size_t kMaxLayerNameBytes = 140;
}  // namespace

nlohmann::json to_json(const LayerVersion& l) {
    return {{"name", l.name},
            {"version", l.version},
            {"description", l.description},
            {"compatible_runtimes", l.compatible_runtimes},
            {"compatible_architectures", l.compatible_architectures},
            {"license_info", l.license_info},
            {"code_sha256", l.code_sha256},
            {"code_size", l.code_size},
            {"created_us", to_unix_us(l.created)},
            {"deleted", l.deleted}};
}

LayerVersion layer_version_from_json(const nlohmann::json& j) {
    LayerVersion l;
    l.name = j.at("name").get<std::string>();
    l.version = j.at("version").get<std::int64_t>();
    l.description = j.value("description", "");
    l.compatible_runtimes = j.value("compatible_runtimes", std::vector<std::string>{});
    l.compatible_architectures = j.value("compatible_architectures", std::vector<std::string>{});
    l.license_info = j.value("license_info", "");
    l.code_sha256 = j.at("code_sha256").get<std::string>();
    l.code_size = j.at("code_size").get<std::int64_t>();
    l.created = from_unix_us(j.at("created_us").get<std::int64_t>());
    l.deleted = j.value("deleted", false);
    return l;
}

bool valid_layer_name(std::string_view name) {
    return !name.empty() && name.size() <= kMaxLayerNameBytes && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

}  // namespace funcd
