#include "funcd/registry/arn.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

#include "funcd/registry/layer_version.hpp"

namespace funcd {
namespace {

constexpr std::string_view kArnPrefix = "arn:";
// botocore's model: a function or alias name, or a qualifier, is [a-zA-Z0-9-_]+ (the
// qualifier may be $LATEST).
bool name_chars(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

bool qualifier_chars(std::string_view s) { return s == "$LATEST" || name_chars(s); }

bool account_chars(std::string_view s) {
    return s.size() == 12 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string_view> split(std::string_view text, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        auto pos = text.find(sep, start);
        out.push_back(text.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
        if (pos == std::string_view::npos) return out;
        start = pos + 1;
    }
}

std::optional<std::int64_t> positive(std::string_view s) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size() || n < 1) return std::nullopt;
    return n;
}

}  // namespace

std::optional<FunctionRef> parse_function_ref(std::string_view text) {
    const auto parts = split(text, ':');
    FunctionRef ref;
    auto with_qualifier = [&](std::string_view name, std::optional<std::string_view> q) -> std::optional<FunctionRef> {
        if (!name_chars(name)) return std::nullopt;
        ref.name = std::string(name);
        if (q) {
            if (!qualifier_chars(*q)) return std::nullopt;
            ref.qualifier = std::string(*q);
        }
        return ref;
    };
    if (text.starts_with(kArnPrefix)) {
        // arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
        if (parts.size() < 7 || parts.size() > 8 || parts[2] != "lambda" || parts[5] != "function" ||
            !parts[1].starts_with("aws") || parts[3].empty() || !account_chars(parts[4]))
            return std::nullopt;
        ref.region = std::string(parts[3]);
        ref.account = std::string(parts[4]);
        return with_qualifier(parts[6], parts.size() == 8 ? std::optional(parts[7]) : std::nullopt);
    }
    if (parts.size() >= 3 && parts[1] == "function") {
        // ACCOUNT:function:NAME[:QUALIFIER]
        if (parts.size() > 4 || !account_chars(parts[0])) return std::nullopt;
        ref.account = std::string(parts[0]);
        return with_qualifier(parts[2], parts.size() == 4 ? std::optional(parts[3]) : std::nullopt);
    }
    if (parts.size() > 2) return std::nullopt;
    return with_qualifier(parts[0], parts.size() == 2 ? std::optional(parts[1]) : std::nullopt);
}

std::optional<LayerVersionRef> parse_layer_version_arn(std::string_view text) {
    // arn:PARTITION:lambda:REGION:ACCOUNT:layer:NAME:VERSION
    const auto parts = split(text, ':');
    if (!text.starts_with(kArnPrefix) || parts.size() != 8 || parts[2] != "lambda" || parts[5] != "layer" ||
        !valid_layer_name(parts[6]) || !account_chars(parts[4]))
        return std::nullopt;
    auto version = positive(parts[7]);
    if (!version) return std::nullopt;
    return LayerVersionRef{std::string(parts[6]), *version, std::string(parts[3]), std::string(parts[4])};
}

std::optional<std::string> parse_layer_name(std::string_view text) {
    if (!text.starts_with(kArnPrefix)) {
        if (!valid_layer_name(text)) return std::nullopt;
        return std::string(text);
    }
    const auto parts = split(text, ':');
    if (parts.size() != 7 || parts[2] != "lambda" || parts[5] != "layer" || !valid_layer_name(parts[6]))
        return std::nullopt;
    return std::string(parts[6]);
}

std::string function_arn(std::string_view region, std::string_view account, std::string_view name,
                         std::string_view qualifier) {
    std::string out = "arn:aws:lambda:";
    out.append(region).append(":").append(account).append(":function:").append(name);
    if (!qualifier.empty()) out.append(":").append(qualifier);
    return out;
}

std::string layer_arn(std::string_view region, std::string_view account, std::string_view name) {
    std::string out = "arn:aws:lambda:";
    out.append(region).append(":").append(account).append(":layer:").append(name);
    return out;
}

std::string layer_version_arn(std::string_view region, std::string_view account, std::string_view name,
                              std::int64_t version) {
    return layer_arn(region, account, name) + ":" + std::to_string(version);
}

}  // namespace funcd
