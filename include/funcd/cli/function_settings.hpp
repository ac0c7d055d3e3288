#pragma once
// A deploy replaces every setting of a function (docs/api.md, PUT /v1/functions/{name}).
// The CLI's deploy changes only what it is told to, as `aws lambda update-function-code`
// does: it sends back the settings of the current version, with its own on top.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace funcd::cli {

// The deploy settings (the JSON form's fields, without code) of a function's description.
nlohmann::json settings_of(const nlohmann::json& description);

// A layer for the deploy: a layer version ARN as it is, or NAME:VERSION made into the ARN
// the daemon's Lambda API gives it. nullopt for anything else.
std::optional<std::string> layer_arn_for(std::string_view text);

}  // namespace funcd::cli
