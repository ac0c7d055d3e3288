#pragma once
// Lambda's ARNs and the ways a function is named: `name`, `name:qualifier`, the partial
// ARN `ACCOUNT:function:name[:qualifier]`, and the full ARN
// `arn:aws:lambda:REGION:ACCOUNT:function:name[:qualifier]`; layer versions as
// `arn:aws:lambda:REGION:ACCOUNT:layer:name:VERSION`.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace funcd {

struct FunctionRef {
    std::string name;
    std::optional<std::string> qualifier;
    std::optional<std::string> region;   // when given as a full ARN
    std::optional<std::string> account;  // when given as an ARN
};

// nullopt when `text` is none of the forms above, or its name or qualifier has
// characters Lambda does not allow (the name is checked for length by the caller: 64 for
// a bare name).
std::optional<FunctionRef> parse_function_ref(std::string_view text);

struct LayerVersionRef {
    std::string name;
    std::int64_t version = 0;
    std::optional<std::string> region;
    std::optional<std::string> account;
};

// A layer version ARN; nullopt for anything else.
std::optional<LayerVersionRef> parse_layer_version_arn(std::string_view text);
// A layer ARN without a version (or a bare layer name); nullopt for anything else.
std::optional<std::string> parse_layer_name(std::string_view text);

std::string function_arn(std::string_view region, std::string_view account, std::string_view name,
                         std::string_view qualifier = {});
std::string layer_arn(std::string_view region, std::string_view account, std::string_view name);
std::string layer_version_arn(std::string_view region, std::string_view account, std::string_view name,
                              std::int64_t version);

}  // namespace funcd
