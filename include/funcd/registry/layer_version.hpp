#pragma once
// A published layer version (Lambda's PublishLayerVersion): a zip of files merged at /opt
// in the sandbox of every function that lists it. Immutable once published.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "funcd/common/time_format.hpp"

namespace funcd {

struct LayerVersion {
    std::string name;
    std::int64_t version = 0;  // from 1; numbers are never reused
    std::string description;
    std::vector<std::string> compatible_runtimes;
    std::vector<std::string> compatible_architectures;
    std::string license_info;
    std::string code_sha256;
    std::int64_t code_size = 0;
    SystemTime created;
    // Deleted versions are no longer listed or usable by new functions, but functions that
    // use them keep running with them, as on Lambda.
    bool deleted = false;
};

using LayerVersionPtr = std::shared_ptr<const LayerVersion>;

nlohmann::json to_json(const LayerVersion& l);
LayerVersion layer_version_from_json(const nlohmann::json& j);

// Lambda's layer name rule (botocore's model: LayerName, 1 to 140 of [a-zA-Z0-9-_]).
bool valid_layer_name(std::string_view name);

}  // namespace funcd
