#pragma once
// Everything funcd knows about one function, in Lambda's model: $LATEST, the published
// versions, aliases, tags, the resource policy, concurrency settings and function URL
// configs. The /v1 API and Lambda's API are two views of it.
//
// A record is immutable once built: the registry replaces a function's record as a whole
// on every change, so a reader on any thread sees one consistent function.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/registry/function_config.hpp"

namespace funcd {

using FunctionPtr = std::shared_ptr<const FunctionVersion>;

// A name for one version, with weighted routing to a second one (Lambda's RoutingConfig).
struct Alias {
    std::string name;
    std::int64_t function_version = kLatestVersion;
    std::string description;
    // AdditionalVersionWeights: at most one other version, and the share of invocations
    // (0.0 to 1.0) it gets.
    std::optional<std::pair<std::int64_t, double>> additional_version;
    std::string revision_id;

    bool operator==(const Alias&) const = default;
};

// Lambda's provisioned concurrency configured on a published version or an alias.
struct ProvisionedConfig {
    int requested = 0;
    SystemTime last_modified;

    bool operator==(const ProvisionedConfig&) const = default;
};

// Who may call a function URL created through Lambda's API: anyone, or requests signed
// with funcd's credentials (SigV4).
enum class UrlAuthType { none, aws_iam };

std::string_view to_string(UrlAuthType a);
std::optional<UrlAuthType> parse_url_auth_type(std::string_view text);

// A function URL config (CreateFunctionUrlConfig), for the function itself or an alias.
struct FunctionUrlConfig {
    UrlAuthType auth = UrlAuthType::none;
    CorsSettings cors;
    std::string invoke_mode = "BUFFERED";
    SystemTime created;
    SystemTime last_modified;

    bool operator==(const FunctionUrlConfig&) const = default;
};

struct FunctionRecord {
    std::string name;
    SystemTime created;
    FunctionPtr latest;                              // $LATEST
    std::map<std::int64_t, FunctionPtr> versions;    // published, by number
    std::int64_t last_published = 0;                 // numbers are never reused, as on Lambda
    // $LATEST has not changed since it was published as this version.
    std::optional<std::int64_t> latest_published_as;
    std::map<std::string, Alias, std::less<>> aliases;
    std::map<std::string, std::string> tags;
    std::optional<int> reserved_concurrency;
    // /v1's provisioned_concurrency: workers kept for what /v1 invokes (default_target()),
    // so a /v1 redeploy moves them to the new version.
    int default_provisioned = 0;
    std::map<std::string, ProvisionedConfig, std::less<>> provisioned;  // by qualifier: number or alias
    // The resource policy's statements by qualifier ("" = the function itself), in order.
    std::map<std::string, std::vector<nlohmann::json>, std::less<>> policies;
    std::string policy_revision_id;
    std::map<std::string, FunctionUrlConfig, std::less<>> urls;  // by qualifier ("" = the function)
    // Lambda's RevisionId of the function: new with any change of $LATEST, its policy or its aliases.
    std::string revision_id;

    // What an unqualified /v1 invocation runs: the version $LATEST was last published as,
    // while $LATEST is unchanged since, so /v1 reports the version number it deployed;
    // else $LATEST itself (changed through Lambda's API without publishing).
    const FunctionPtr& default_target() const;
    // A published version, or null.
    FunctionPtr version(std::int64_t number) const;
    // $LATEST first, then the published versions in ascending order.
    std::vector<FunctionPtr> all_versions() const;
    // Every code hash this function references: versions and their layers.
    void collect_code(std::vector<std::string>& out) const;
};

using FunctionRecordPtr = std::shared_ptr<const FunctionRecord>;

// How a qualifier names a version: "$LATEST", a number, or an alias.
struct Qualifier {
    enum class Kind { latest, version, alias };
    Kind kind = Kind::latest;
    std::int64_t number = kLatestVersion;  // Kind::version
    std::string alias;                     // Kind::alias

    // nullopt when `text` is none of them (empty, bad characters, too long).
    static std::optional<Qualifier> parse(std::string_view text);
    std::string text() const;
};

// The version an invocation of `record` with `qualifier` runs. An alias with weighted
// routing picks its additional version with its weight's probability (`draw` in [0, 1)).
// Null when the qualifier names nothing that exists.
FunctionPtr resolve(const FunctionRecord& record, const Qualifier& qualifier, double draw);

// Recomputes the settings that are not a version's own (reserved concurrency; provisioned
// workers per version) into every version of `record`, replacing those that change.
void apply_function_settings(FunctionRecord& record);

// The /v1 API's description of a function: the version an unqualified /v1 invocation
// runs, the function-level settings, the published versions, aliases and tags.
nlohmann::json describe(const FunctionRecord& record);

// Durable form: one JSON document per function.
nlohmann::json to_json(const FunctionRecord& record);
// `code_dir_for` maps a code hash to its directory; `opt_dir_for` a layer list to its merged view.
std::shared_ptr<FunctionRecord> record_from_json(
    const nlohmann::json& doc, const std::function<std::filesystem::path(const std::string&)>& code_dir_for,
    const std::function<std::filesystem::path(const std::vector<LayerRef>&)>& opt_dir_for);

// The stored form of one version's settings (also used by the record's document).
nlohmann::json config_to_json(const FunctionConfig& c);
FunctionConfig config_from_json(const std::string& name, const nlohmann::json& j);

}  // namespace funcd
