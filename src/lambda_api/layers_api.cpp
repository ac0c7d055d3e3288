// Lambda's layers: PublishLayerVersion, GetLayerVersion(ByArn), ListLayers,
// ListLayerVersions, DeleteLayerVersion.
#include <algorithm>
#include <charconv>

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include "funcd/common/base64.hpp"
#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// Lambda's limits on a layer version's metadata (botocore's model).
constexpr std::size_t kMaxCompatibleRuntimes = 15;
constexpr std::size_t kMaxCompatibleArchitectures = 2;

std::int64_t layer_number(const std::string& text) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size())
        throw validation_error(text, "versionNumber", "Member must be a number");
    if (n < 1) throw LambdaError::invalid_parameter("Layer Version Cannot be less than 1");
    return n;
}

void check_layer_name(const std::string& name) {
    if (!valid_layer_name(name))
        throw validation_error(name, "layerName",
                               "Member must satisfy regular expression pattern: "
                               "(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+");
}

std::vector<std::string> string_list(const json& body, const char* field, std::size_t max) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return {};
    if (!it->is_array() || it->size() > max)
        throw validation_error(it->dump(), field, fmt::format("Member must have length less than or equal to {}", max));
    std::vector<std::string> out;
    for (const auto& e : *it) {
        if (!e.is_string()) throw LambdaError::invalid_content(fmt::format("{} must be a list of strings", field));
        out.push_back(e.get<std::string>());
    }
    return out;
}

// A version as ListLayers and ListLayerVersions show it: no Content, no LayerArn.
json version_summary(const LayerVersion& l, const ArnScope& scope) {
    json version = layer_version_document(l, scope, "");
    version.erase("Content");
    version.erase("LayerArn");
    return version;
}

}  // namespace

void LambdaApi::route_layers(const CallPtr& call) {
    const auto& s = call->target.segments;
    const std::string& m = call->req.method;
    if (s.size() == 2 && m == "GET") {
        if (api::param(call->target, "find")) return get_layer_by_arn(call);
        return list_layers(call);
    }
    if (s.size() >= 4 && s[3] == "versions") {
        std::string name = s[2];
        if (auto parsed = parse_layer_name(name)) name = *parsed;
        check_layer_name(name);
        if (s.size() == 4 && m == "POST") return publish_layer(call, name);
        if (s.size() == 4 && m == "GET") return list_layer_versions(call, name);
        if (s.size() == 5 && m == "GET") return get_layer(call, name, s[4]);
        if (s.size() == 5 && m == "DELETE") return delete_layer(call, name, s[4]);
    }
    throw LambdaError::unknown_operation("funcd does not implement " + m + " " + call->req.target + " of Lambda's API");
}

void LambdaApi::publish_layer(const CallPtr& call, const std::string& name) {
    offload(call, [this, call, name] {
        const json body = call->body_json();
        auto content = body.find("Content");
        if (content == body.end() || !content->is_object())
            throw LambdaError::validation("1 validation error detected: Value null at 'content' failed to satisfy "
                                          "constraint: Member must not be null");
        if (content->contains("S3Bucket") || content->contains("S3Key"))
            throw LambdaError::invalid_parameter("funcd cannot fetch layers from S3 (S3Bucket/S3Key): upload the zip "
                                                 "itself as Content.ZipFile (--zip-file fileb://layer.zip)");
        auto zip_text = content->find("ZipFile");
        auto zip = zip_text != content->end() && zip_text->is_string() ? base64_decode(zip_text->get<std::string>())
                                                                        : std::nullopt;
        if (!zip)
            throw LambdaError::invalid_parameter(
                "Could not unzip uploaded file. Please check your file, then try to upload again.");
        if (zip->size() > limits::kMaxZipBytes)
            throw LambdaError::too_large(fmt::format("Zipped size must be smaller than {} bytes", limits::kMaxZipBytes));
        LayerVersion meta;
        meta.name = name;
        meta.description = body.value("Description", "");
        meta.license_info = body.value("LicenseInfo", "");
        meta.compatible_runtimes = string_list(body, "CompatibleRuntimes", kMaxCompatibleRuntimes);
        meta.compatible_architectures = string_list(body, "CompatibleArchitectures", kMaxCompatibleArchitectures);
        for (const auto& a : meta.compatible_architectures)
            if (a != "x86_64" && a != "arm64")
                throw validation_error(a, "compatibleArchitectures", "Member must satisfy enum value set: [x86_64, arm64]");
        LayerVersionPtr l = registry_.publish_layer(std::move(meta), *zip);
        boost::asio::post(io_, [this] { changes_.collect_code_garbage(); });
        json out = layer_version_document(*l, call->scope, locations_.url(call->req.header("host"), l->code_sha256));
        return http::Response{201, {}, out.dump(), "application/json"};
    }, /*bulk=*/true);
}

void LambdaApi::get_layer(const CallPtr& call, const std::string& name, const std::string& version) {
    LayerVersionPtr l = registry_.find_layer(name, layer_number(version));
    if (!l || l->deleted) throw LambdaError::not_found("The resource you requested does not exist.");
    call->reply(200, layer_version_document(*l, call->scope, locations_.url(call->req.header("host"), l->code_sha256)));
}

void LambdaApi::get_layer_by_arn(const CallPtr& call) {
    const auto find = api::param(call->target, "find");
    if (*find != "LayerVersion")
        throw validation_error(*find, "find", "Member must satisfy enum value set: [LayerVersion]");
    const auto text = api::param(call->target, "Arn").value_or("");
    auto ref = parse_layer_version_arn(text);
    if (!ref)
        throw validation_error(text, "arn",
                               "Member must satisfy regular expression pattern: "
                               "arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+");
    LayerVersionPtr l = registry_.find_layer(ref->name, ref->version);
    if (!l || l->deleted) throw LambdaError::not_found("The resource you requested does not exist.");
    call->reply(200, layer_version_document(*l, call->scope, locations_.url(call->req.header("host"), l->code_sha256)));
}

void LambdaApi::list_layers(const CallPtr& call) {
    const auto runtime = api::param(call->target, "CompatibleRuntime");
    const auto arch = api::param(call->target, "CompatibleArchitecture");
    auto matches = [&](const LayerVersion& l) {
        auto has = [](const std::vector<std::string>& v, const std::string& x) {
            return std::find(v.begin(), v.end(), x) != v.end();
        };
        return (!runtime || has(l.compatible_runtimes, *runtime)) && (!arch || has(l.compatible_architectures, *arch));
    };
    // One entry per layer: its newest live version that matches the filters.
    std::map<std::string, LayerVersionPtr> newest;
    for (const auto& l : registry_.list_layers())
        if (matches(*l) && !newest.count(l->name)) newest[l->name] = l;
    const auto marker = api::param(call->target, "Marker");
    json list = json::array();
    std::string last;
    bool more = false;
    for (const auto& [name, l] : newest) {
        if (marker && !marker->empty() && name <= *marker) continue;
        if (static_cast<int>(list.size()) == kMaxPageItems) {
            more = true;
            break;
        }
        list.push_back({{"LayerName", name},
                        {"LayerArn", layer_arn(call->scope.region, call->scope.account, name)},
                        {"LatestMatchingVersion", version_summary(*l, call->scope)}});
        last = name;
    }
    json out{{"Layers", std::move(list)}};
    if (more) out["NextMarker"] = last;
    call->reply(200, out);
}

void LambdaApi::list_layer_versions(const CallPtr& call, const std::string& name) {
    const auto runtime = api::param(call->target, "CompatibleRuntime");
    const auto arch = api::param(call->target, "CompatibleArchitecture");
    // Marker: the last version number of the page before (versions are listed newest first).
    std::optional<std::int64_t> below;
    if (auto marker = api::param(call->target, "Marker"); marker && !marker->empty()) {
        std::int64_t n = 0;
        if (std::from_chars(marker->data(), marker->data() + marker->size(), n).ec != std::errc())
            throw LambdaError::invalid_parameter("Marker is not one this API handed out: " + *marker);
        below = n;
    }
    json list = json::array();
    std::string last;
    bool more = false;
    for (const auto& l : registry_.list_layers(name)) {  // newest first
        if (runtime && std::find(l->compatible_runtimes.begin(), l->compatible_runtimes.end(), *runtime) ==
                           l->compatible_runtimes.end())
            continue;
        if (arch && std::find(l->compatible_architectures.begin(), l->compatible_architectures.end(), *arch) ==
                        l->compatible_architectures.end())
            continue;
        if (below && l->version >= *below) continue;
        if (static_cast<int>(list.size()) == kMaxPageItems) {
            more = true;
            break;
        }
        list.push_back(version_summary(*l, call->scope));
        last = std::to_string(l->version);
    }
    json out{{"LayerVersions", std::move(list)}};
    if (more) out["NextMarker"] = last;
    call->reply(200, out);
}

void LambdaApi::delete_layer(const CallPtr& call, const std::string& name, const std::string& version) {
    const std::int64_t n = layer_number(version);
    offload(call, [this, name, n] {
        // Functions that use it keep it; Lambda answers 204 whether or not it existed.
        if (registry_.delete_layer(name, n)) boost::asio::post(io_, [this] { changes_.collect_code_garbage(); });
        return http::Response{204, {}, {}, "application/json"};
    });
}

}  // namespace funcd
