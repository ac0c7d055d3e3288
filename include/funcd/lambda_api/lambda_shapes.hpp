#pragma once
// How Lambda's API shows funcd's functions, versions, aliases and layers: the documents
// of botocore's model (FunctionConfiguration, AliasConfiguration, LayerVersion...), with
// every field the AWS clients and Terraform's provider read.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "funcd/pool/runtime_catalog.hpp"
#include "funcd/registry/function_record.hpp"
#include "funcd/registry/layer_version.hpp"

namespace funcd {

// List operations (ListFunctions, ListVersionsByFunction, ListAliases, ListLayerVersions...)
// return at most 50 items a page, whatever MaxItems asks (botocore's model documentation).
inline constexpr int kMaxPageItems = 50;

// The region and account ARNs are shown in (the region is the one the request was signed for).
struct ArnScope {
    std::string region;
    std::string account;
};

struct ConfigurationView {
    // What qualifies FunctionArn: the qualifier the caller named (GetFunction with a
    // Qualifier), a version's number; empty: the unqualified ARN.
    std::string arn_qualifier;
    // ListFunctions and ListVersionsByFunction items: no State, LastUpdateStatus or
    // RuntimeVersionConfig (Lambda leaves them out there).
    bool list_item = false;
};

nlohmann::json function_configuration(const FunctionVersion& v, const ArnScope& scope,
                                      const RuntimeCatalog& runtimes, ConfigurationView view = {});
nlohmann::json alias_configuration(const FunctionRecord& r, const Alias& a, const ArnScope& scope);
// `location`: the zip's download URL.
nlohmann::json layer_version_document(const LayerVersion& l, const ArnScope& scope, const std::string& location);

// Lambda's time format for these documents: 2025-04-15T20:24:16.283+0000.
std::string lambda_timestamp(SystemTime t);
// Lambda's CodeSha256: the base64 of the digest (funcd stores it in hex).
std::string code_sha256_base64(std::string_view hex);
// The execution role shown for a function that was given none (/v1 deploys).
std::string default_role(const ArnScope& scope);

}  // namespace funcd
