#include "funcd/lambda_api/lambda_shapes.hpp"

#include <ctime>

#include <fmt/format.h>

#include "funcd/common/base64.hpp"
#include "funcd/registry/arn.hpp"

namespace funcd {

using nlohmann::json;

std::string lambda_timestamp(SystemTime t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

std::string code_sha256_base64(std::string_view hex) {
    std::string raw;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
        raw.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
    }
    return base64_encode(raw);
}

std::string default_role(const ArnScope& scope) { return "arn:aws:iam::" + scope.account + ":role/funcd-function"; }

json function_configuration(const FunctionVersion& v, const ArnScope& scope, const RuntimeCatalog& runtimes,
                            ConfigurationView view) {
    const FunctionConfig& c = v.config;
    const std::string runtime = c.runtime_name();
    json j{
        {"FunctionName", c.name},
        {"FunctionArn", function_arn(scope.region, scope.account, c.name, view.arn_qualifier)},
        {"Runtime", runtime},
        {"Role", c.recorded.role.empty() ? default_role(scope) : c.recorded.role},
        {"Handler", c.handler},
        {"CodeSize", v.code_size},
        {"Description", c.description},
        {"Timeout", c.timeout_s},
        {"MemorySize", c.memory_mb},
        {"LastModified", lambda_timestamp(v.last_modified)},
        {"CodeSha256", code_sha256_base64(v.code_sha256)},
        {"Version", v.label()},
        {"TracingConfig", {{"Mode", c.recorded.tracing_mode}}},
        {"RevisionId", v.revision_id},
        {"PackageType", "Zip"},
        {"Architectures", json::array({c.architecture})},
        {"EphemeralStorage", {{"Size", c.ephemeral_storage_mb}}},
        {"SnapStart", {{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}},
    };
    json logging{{"LogFormat", to_string(c.logging.format)},
                 {"LogGroup", c.recorded.log_group.empty() ? "/aws/lambda/" + c.name : c.recorded.log_group}};
    // Lambda reports the levels only with JSON, INFO when none was chosen.
    if (c.logging.json()) {
        logging["ApplicationLogLevel"] = to_string(c.logging.application_level);
        logging["SystemLogLevel"] = to_string(c.logging.system_level);
    }
    j["LoggingConfig"] = std::move(logging);
    if (!c.env.empty()) j["Environment"] = {{"Variables", c.env}};
    if (!c.recorded.dead_letter_target_arn.empty())
        j["DeadLetterConfig"] = {{"TargetArn", c.recorded.dead_letter_target_arn}};
    if (!c.layers.empty()) {
        json layers = json::array();
        for (const auto& l : c.layers)
            layers.push_back({{"Arn", layer_version_arn(scope.region, scope.account, l.name, l.version)},
                              {"CodeSize", l.code_size}});
        j["Layers"] = std::move(layers);
    }
    if (!view.list_item) {
        // Code is prepared before Create/Update answer, so a function is always ready.
        j["State"] = "Active";
        j["LastUpdateStatus"] = "Successful";
        j["RuntimeVersionConfig"] = {
            {"RuntimeVersionArn",
             fmt::format("arn:aws:lambda:{}::runtime:{}", scope.region, runtimes.runtime_version_hash(runtime))}};
    }
    return j;
}

json alias_configuration(const FunctionRecord& r, const Alias& a, const ArnScope& scope) {
    json j{{"AliasArn", function_arn(scope.region, scope.account, r.name, a.name)},
           {"Name", a.name},
           {"FunctionVersion", a.function_version == kLatestVersion ? std::string(kLatestLabel)
                                                                    : std::to_string(a.function_version)},
           {"Description", a.description},
           {"RevisionId", a.revision_id}};
    if (a.additional_version)
        j["RoutingConfig"] = {
            {"AdditionalVersionWeights", {{std::to_string(a.additional_version->first), a.additional_version->second}}}};
    return j;
}

json layer_version_document(const LayerVersion& l, const ArnScope& scope, const std::string& location) {
    json j{{"Content",
            {{"Location", location}, {"CodeSha256", code_sha256_base64(l.code_sha256)}, {"CodeSize", l.code_size}}},
           {"LayerArn", layer_arn(scope.region, scope.account, l.name)},
           {"LayerVersionArn", layer_version_arn(scope.region, scope.account, l.name, l.version)},
           {"Description", l.description},
           {"CreatedDate", lambda_timestamp(l.created)},
           {"Version", l.version}};
    if (!l.compatible_runtimes.empty()) j["CompatibleRuntimes"] = l.compatible_runtimes;
    if (!l.compatible_architectures.empty()) j["CompatibleArchitectures"] = l.compatible_architectures;
    if (!l.license_info.empty()) j["LicenseInfo"] = l.license_info;
    return j;
}

}  // namespace funcd
