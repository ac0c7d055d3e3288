// Lambda's function operations: CreateFunction, GetFunction(Configuration), ListFunctions,
// DeleteFunction, UpdateFunctionCode, UpdateFunctionConfiguration, PublishVersion,
// ListVersionsByFunction.
#include <algorithm>
#include <charconv>
#include <regex>

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/base64.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/lambda_api/lambda_api.hpp"
#include "funcd/registry/record_changes.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// Lambda's limit on the zip of CreateFunction and UpdateFunctionCode (52,428,800 bytes).
constexpr std::size_t kMaxZip = limits::kMaxZipBytes;

const std::regex kRolePattern(R"(arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+)");

std::string string_field(const json& v, std::string_view field) {
    if (!v.is_string()) throw LambdaError::invalid_content(fmt::format("{} must be a string", field));
    return v.get<std::string>();
}

int int_field(const json& v, std::string_view field, int min, int max) {
    if (!v.is_number_integer()) throw LambdaError::invalid_content(fmt::format("{} must be an integer", field));
    const auto n = v.get<std::int64_t>();
    if (n < min)
        throw validation_error(std::to_string(n), field,
                               fmt::format("Member must have value greater than or equal to {}", min));
    if (n > max)
        throw validation_error(std::to_string(n), field, fmt::format("Member must have value less than or equal to {}", max));
    return static_cast<int>(n);
}

void set_runtime(FunctionConfig& c, const std::string& id) {
    if (is_deprecated_runtime(id))
        throw LambdaError::invalid_parameter("The runtime parameter of " + id +
                                             " is no longer supported for creating or updating AWS Lambda functions. "
                                             "We recommend you use a supported runtime while creating or updating "
                                             "functions.");
    auto family = runtime_family(id);
    if (!family)
        throw LambdaError::invalid_parameter("Value " + id +
                                             " at 'runtime' failed to satisfy constraint: Member must satisfy enum "
                                             "value set: [" + supported_runtime_list() + "] or be a valid ARN");
    c.runtime = *family;
    c.runtime_id = id;
}

std::string decode_zip(const json& code) {
    if (!code.is_object()) throw LambdaError::invalid_content("Code must be an object");
    if (code.contains("S3Bucket") || code.contains("S3Key") || code.contains("S3ObjectVersion"))
        throw LambdaError::invalid_parameter(
            "funcd cannot fetch code from S3 (S3Bucket/S3Key): upload the zip itself as Code.ZipFile, e.g. "
            "aws lambda create-function --zip-file fileb://function.zip");
    if (code.contains("ImageUri"))
        throw LambdaError::invalid_parameter("funcd runs zip packages only: container images (ImageUri) are not "
                                             "supported");
    auto it = code.find("ZipFile");
    if (it == code.end() || !it->is_string())
        throw LambdaError::invalid_parameter("Please provide a source for function code: Code.ZipFile");
    auto zip = base64_decode(it->get_ref<const std::string&>());
    if (!zip)
        throw LambdaError::invalid_parameter(
            "Could not unzip uploaded file. Please check your file, then try to upload again.");
    if (zip->size() > kMaxZip) throw LambdaError::too_large(fmt::format("Zipped size must be smaller than {} bytes", kMaxZip));
    return std::move(*zip);
}

// The environment checks Lambda makes before funcd's own (validate_config), with Lambda's words.
void check_environment(const std::map<std::string, std::string>& env) {
    std::string reserved;
    std::size_t bytes = 0;
    for (const auto& [k, v] : env) {
        bytes += k.size() + v.size();
        if (is_reserved_env_key(k)) reserved += (reserved.empty() ? "" : ", ") + k;
    }
    if (!reserved.empty())
        throw LambdaError::invalid_parameter(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            "provided contains reserved keys that are currently not supported for modification. Reserved keys used "
            "in this request: " + reserved);
    if (bytes > limits::kMaxEnvBytes)
        throw LambdaError::invalid_parameter(
            "Lambda was unable to configure your environment variables because the environment variables you have "
            "provided exceeded the 4KB limit. String measured: " + json(env).dump());
}

// A Lambda setting funcd does not have: refused when it asks for something, accepted when empty.
void refuse_unless_empty(const json& v, std::string_view field, std::string_view why) {
    const bool empty = v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()) ||
                       (v.is_array() && v.empty()) ||
                       (v.is_object() && std::all_of(v.begin(), v.end(), [](const json& e) {
                            return e.is_null() || (e.is_array() && e.empty()) || (e.is_string() && e.get_ref<const std::string&>().empty());
                        }));
    if (!empty) throw LambdaError::invalid_parameter(fmt::format("{}: {}", field, why));
}

std::string page_marker(const std::string& key) { return base64_encode(key); }

std::optional<std::string> marker_key(const LambdaCall& call) {
    auto m = api::param(call.target, "Marker");
    if (!m || m->empty()) return std::nullopt;
    auto key = base64_decode(*m);
    if (!key) throw LambdaError::invalid_parameter("Marker is not one this API handed out: " + *m);
    return key;
}

int max_items(const LambdaCall& call) {
    auto m = api::param(call.target, "MaxItems");
    if (!m) return kMaxPageItems;
    int n = 0;
    auto [end, ec] = std::from_chars(m->data(), m->data() + m->size(), n);
    if (ec != std::errc() || end != m->data() + m->size() || n < 1 || n > 10000)
        throw validation_error(*m, "maxItems", "Member must have value between 1 and 10000");
    return std::min(n, kMaxPageItems);
}

// One page of `items` (ordered by `key`), after the caller's Marker.
template <class Item, class Key>
std::pair<std::vector<Item>, std::optional<std::string>> page(const LambdaCall& call, const std::vector<Item>& items,
                                                              Key key) {
    const auto after = marker_key(call);
    const int limit = max_items(call);
    std::vector<Item> out;
    std::size_t i = 0;
    if (after) {
        while (i < items.size() && key(items[i]) != *after) ++i;
        if (i == items.size()) throw LambdaError::invalid_parameter("Marker does not name an item of this list");
        ++i;
    }
    for (; i < items.size() && static_cast<int>(out.size()) < limit; ++i) out.push_back(items[i]);
    std::optional<std::string> next;
    if (i < items.size() && !out.empty()) next = page_marker(key(out.back()));
    return {std::move(out), std::move(next)};
}

// LoggingConfig: what it names replaces the function's setting, what it omits keeps it.
// Levels apply only with JSON: given with Text they are refused as Lambda refuses them;
// switching to Text drops them (they are INFO again when JSON is chosen anew without them).
void apply_logging_config(const json& v, FunctionConfig& c) {
    if (v.is_null()) return;
    if (!v.is_object()) throw LambdaError::invalid_content("LoggingConfig must be an object");
    LoggingConfig next = c.logging;
    if (auto it = v.find("LogFormat"); it != v.end() && !it->is_null()) {
        const std::string f = string_field(*it, "LoggingConfig.LogFormat");
        auto format = parse_log_format(f);
        if (!format) throw validation_error(f, "loggingConfig.logFormat", "Member must satisfy enum value set: [JSON, Text]");
        if (*format != next.format) next = LoggingConfig{*format};
    }
    bool levels_given = false;
    if (auto it = v.find("ApplicationLogLevel"); it != v.end() && !it->is_null()) {
        const std::string text = string_field(*it, "LoggingConfig.ApplicationLogLevel");
        auto level = parse_log_level(text);
        if (!level)
            throw validation_error(text, "loggingConfig.applicationLogLevel",
                                   "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]");
        next.application_level = *level;
        levels_given = true;
    }
    if (auto it = v.find("SystemLogLevel"); it != v.end() && !it->is_null()) {
        const std::string text = string_field(*it, "LoggingConfig.SystemLogLevel");
        auto level = parse_log_level(text);
        if (!level || !is_system_log_level(*level))
            throw validation_error(text, "loggingConfig.systemLogLevel", "Member must satisfy enum value set: [DEBUG, INFO, WARN]");
        next.system_level = *level;
        levels_given = true;
    }
    if (levels_given && !next.json())
        throw LambdaError::invalid_parameter(
            "LogLevel is not supported when LogFormat is set to \"Text\". Remove LogLevel from your request or change "
            "the LogFormat to \"JSON\" and try again.");
    if (auto it = v.find("LogGroup"); it != v.end() && !it->is_null()) {
        const std::string group = string_field(*it, "LoggingConfig.LogGroup");
        static const std::regex kLogGroupPattern("[\\.\\-_/#A-Za-z0-9]{1,512}");
        if (!std::regex_match(group, kLogGroupPattern))
            throw validation_error(group, "loggingConfig.logGroup",
                                   "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+");
        c.recorded.log_group = group;
    }
    c.logging = next;
}

struct DryRun {
    http::Response response;
};

}  // namespace

std::vector<LayerRef> LambdaApi::resolve_layers(const json& arns, RecordChange& change) const {
    if (!arns.is_array()) throw LambdaError::invalid_content("Layers must be an array of layer version ARNs");
    if (arns.size() > 5) throw LambdaError::invalid_parameter("Cannot reference more than 5 layers.");
    std::vector<LayerRef> out;
    std::map<std::string, std::string> seen;  // layer name -> the ARN that named it
    for (const auto& a : arns) {
        const std::string text = a.is_string() ? a.get<std::string>() : a.dump();
        auto ref = a.is_string() ? parse_layer_version_arn(text) : std::nullopt;
        if (!ref)
            throw validation_error(text, "layers",
                                   "Member must satisfy regular expression pattern: "
                                   "arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+");
        if (auto it = seen.find(ref->name); it != seen.end())
            throw LambdaError::invalid_parameter("Two different versions of the same layer are not allowed to be "
                                                 "referenced in the same function. " + it->second + " and " + text +
                                                 " are versions of the same layer.");
        seen[ref->name] = text;
        auto layer = change.layer(ref->name, ref->version);
        if (!layer) throw LambdaError::invalid_parameter("Layer version " + text + " does not exist.");
        out.push_back({layer->name, layer->version, layer->code_sha256, layer->code_size});
    }
    return out;
}

void LambdaApi::apply_settings(const json& body, FunctionConfig& c, RecordChange& change, bool create) const {
    for (const auto& [key, v] : body.items()) {
        if (key == "Runtime") {
            set_runtime(c, string_field(v, key));
            if (auto why = runtimes_.refusal(c.runtime_id)) throw LambdaError::invalid_parameter(*why);
        } else if (key == "Handler") {
            c.handler = string_field(v, key);
            if (c.handler.empty() || c.handler.size() > 128 ||
                c.handler.find_first_of(" \t\r\n") != std::string::npos)
                throw validation_error(c.handler, "handler", "Member must satisfy regular expression pattern: [^\\s]+");
        } else if (key == "Role") {
            c.recorded.role = string_field(v, key);
            if (!std::regex_match(c.recorded.role, kRolePattern))
                throw validation_error(c.recorded.role, "role",
                                       "Member must satisfy regular expression pattern: "
                                       "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+");
        } else if (key == "Description") {
            c.description = string_field(v, key);
            if (c.description.size() > limits::kMaxDescriptionBytes)
                throw validation_error(c.description, "description", "Member must have length less than or equal to 256");
        } else if (key == "Timeout") {
            c.timeout_s = int_field(v, "timeout", limits::kMinTimeoutS, limits::kMaxTimeoutS);
        } else if (key == "MemorySize") {
            c.memory_mb = int_field(v, "memorySize", limits::kMinMemoryMb, limits::kMaxMemoryMb);
        } else if (key == "Environment") {
            c.env.clear();
            if (!v.is_null()) {
                if (!v.is_object()) throw LambdaError::invalid_content("Environment must be an object");
                if (auto vars = v.find("Variables"); vars != v.end() && !vars->is_null()) {
                    if (!vars->is_object()) throw LambdaError::invalid_content("Environment.Variables must be an object");
                    for (const auto& [k, val] : vars->items()) c.env[k] = string_field(val, "Environment.Variables");
                }
            }
            check_environment(c.env);
        } else if (key == "Layers") {
            c.layers = resolve_layers(v, change);
        } else if (key == "Architectures") {
            if (!v.is_array() || v.size() != 1 || !v[0].is_string())
                throw validation_error(v.dump(), "architectures", "Member must have length less than or equal to 1");
            const std::string arch = v[0].get<std::string>();
            if (arch != "x86_64" && arch != "arm64")
                throw validation_error("[" + arch + "]", "architectures",
                                       "Member must satisfy constraint: [Member must satisfy enum value set: "
                                       "[x86_64, arm64]]");
            if (arch != host_architecture())
                throw LambdaError::invalid_parameter("funcd runs " + std::string(host_architecture()) +
                                                     " functions on this host; " + arch + " was asked for");
            c.architecture = arch;
        } else if (key == "EphemeralStorage") {
            if (!v.is_object() || !v.contains("Size"))
                throw LambdaError::invalid_content("EphemeralStorage must be {\"Size\": MB}");
            c.ephemeral_storage_mb = int_field(v["Size"], "ephemeralStorage.size", limits::kMinEphemeralStorageMb,
                                               limits::kMaxEphemeralStorageMb);
        } else if (key == "TracingConfig") {
            const std::string mode = v.is_object() && v.contains("Mode") ? string_field(v["Mode"], "TracingConfig.Mode")
                                                                          : "PassThrough";
            if (mode != "Active" && mode != "PassThrough")
                throw validation_error(mode, "tracingConfig.mode",
                                       "Member must satisfy enum value set: [Active, PassThrough]");
            c.recorded.tracing_mode = mode;
        } else if (key == "DeadLetterConfig") {
            c.recorded.dead_letter_target_arn =
                v.is_object() && v.contains("TargetArn") && v["TargetArn"].is_string() ? v["TargetArn"].get<std::string>()
                                                                                       : "";
        } else if (key == "LoggingConfig") {
            apply_logging_config(v, c);
        } else if (key == "PackageType") {
            if (v != "Zip") throw LambdaError::invalid_parameter("funcd runs zip packages only (PackageType Zip)");
        } else if (key == "VpcConfig") {
            refuse_unless_empty(v, "VpcConfig", "funcd has no VPCs; a function's network is its own loopback or the "
                                                 "host's (the /v1 API's \"network\" setting)");
        } else if (key == "FileSystemConfigs") {
            refuse_unless_empty(v, "FileSystemConfigs", "funcd does not mount EFS; see file triggers for host directories");
        } else if (key == "ImageConfig") {
            refuse_unless_empty(v, "ImageConfig", "funcd runs zip packages only");
        } else if (key == "KMSKeyArn") {
            refuse_unless_empty(v, "KMSKeyArn", "funcd does not use KMS keys");
        } else if (key == "CodeSigningConfigArn") {
            refuse_unless_empty(v, "CodeSigningConfigArn", "funcd does not verify code signatures");
        } else if (key == "SnapStart") {
            if (v.is_object() && v.value("ApplyOn", "None") != "None")
                throw LambdaError::invalid_parameter("SnapStart: funcd starts workers in milliseconds without "
                                                     "snapshots; only ApplyOn None is accepted");
        }
        // FunctionName, Code, Publish, PublishTo, Tags and RevisionId are the caller's; other
        // members of newer models are ignored, as older AWS SDKs' fields are by Lambda.
    }
    if (create && c.handler.empty())
        c.handler = std::string(default_handler(c.runtime));
    try {
        validate_config(c);
    } catch (const ApiError& e) {
        throw LambdaError::invalid_parameter(e.what());
    }
}

void LambdaApi::create_function(const CallPtr& call) {
    offload(call, [this, call] {
        const json body = call->body_json();
        if (!body.contains("FunctionName"))
            throw LambdaError::validation("1 validation error detected: Value null at 'functionName' failed to satisfy "
                                          "constraint: Member must not be null");
        const FunctionRef ref = function_ref(*call, string_field(body["FunctionName"], "FunctionName"));
        if (ref.qualifier) throw LambdaError::invalid_parameter("FunctionName must not carry a qualifier on create");
        if (!body.contains("Role"))
            throw LambdaError::validation("1 validation error detected: Value null at 'role' failed to satisfy "
                                          "constraint: Member must not be null");
        if (!body.contains("Runtime") || !body.contains("Handler"))
            throw LambdaError::invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages.");
        if (!body.contains("Code"))
            throw LambdaError::validation("1 validation error detected: Value null at 'code' failed to satisfy "
                                          "constraint: Member must not be null");
        const std::string zip = decode_zip(body["Code"]);
        std::map<std::string, std::string> tags;
        if (auto t = body.find("Tags"); t != body.end() && !t->is_null()) tags = parse_tags(*t);
        const bool publish = body.value("Publish", false);
        FunctionPtr shown;
        commit(ref.name, [&](RecordChange& c) {
            if (c.record) throw LambdaError::conflict("Function already exist: " + ref.name);
            FunctionConfig config;
            config.name = ref.name;
            config.architecture = std::string(host_architecture());
            apply_settings(body, config, c, true);
            StoredCode code = c.put_code(zip);
            set_latest(c, std::move(config), &code, CodeCheck::architecture_only);
            c.record->tags = tags;
            shown = publish ? publish_latest(*c.record, std::nullopt, true) : c.record->latest;
        });
        json out = configuration(*call, *shown);
        return http::Response{201, {}, out.dump(), "application/json"};
    }, /*bulk=*/true);
}

void LambdaApi::get_function(const CallPtr& call, const FunctionRef& ref, bool configuration_only) {
    FunctionRecordPtr r = record_for(*call, ref);
    FunctionPtr v = r->latest;
    if (ref.qualifier) {
        const Qualifier q = *Qualifier::parse(*ref.qualifier);
        // An alias shows its main version (a draw of 1.0 never takes the additional one).
        v = resolve(*r, q, 1.0);
        if (!v) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, *ref.qualifier));
    }
    ConfigurationView view;
    if (ref.qualifier) view.arn_qualifier = *ref.qualifier;
    json config = configuration(*call, *v, view);
    if (configuration_only) return call->reply(200, config);
    json out{{"Configuration", std::move(config)},
             {"Code", {{"RepositoryType", "S3"}, {"Location", locations_.url(call->req.header("host"), v->code_sha256)}}}};
    if (!ref.qualifier) out["Tags"] = r->tags;
    if (r->reserved_concurrency) out["Concurrency"] = {{"ReservedConcurrentExecutions", *r->reserved_concurrency}};
    call->reply(200, out);
}

void LambdaApi::list_functions(const CallPtr& call) {
    const auto all = api::param(call->target, "FunctionVersion");
    if (all && *all != "ALL")
        throw validation_error(*all, "functionVersion", "Member must satisfy enum value set: [ALL]");
    std::vector<FunctionPtr> items;
    for (const auto& r : registry_.list()) {
        if (all) for (const auto& v : r->all_versions()) items.push_back(v);
        else items.push_back(r->latest);
    }
    call->reply(200, configuration_page(*call, items, all.has_value(), "Functions"));
}

json LambdaApi::configuration_page(const LambdaCall& call, const std::vector<FunctionPtr>& items, bool qualified,
                                   std::string_view member) const {
    auto [shown, next] = page(call, items, [](const FunctionPtr& v) { return v->config.name + ":" + v->label(); });
    json list = json::array();
    for (const auto& v : shown) {
        ConfigurationView view;
        view.list_item = true;
        if (qualified) view.arn_qualifier = v->label();
        list.push_back(configuration(call, *v, view));
    }
    json out{{member, std::move(list)}};
    if (next) out["NextMarker"] = *next;
    return out;
}

void LambdaApi::delete_function(const CallPtr& call, const FunctionRef& ref) {
    record_for(*call, ref);
    offload(call, [this, call, ref] {
        std::optional<std::string> dropped_target;
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name));
            if (!ref.qualifier) {
                c.record.reset();
                return;
            }
            const Qualifier q = *Qualifier::parse(*ref.qualifier);
            if (q.kind == Qualifier::Kind::latest)
                throw LambdaError::invalid_parameter("$LATEST version cannot be deleted without deleting the function.");
            if (q.kind == Qualifier::Kind::alias)
                throw LambdaError::invalid_parameter("Deletion of aliases is not currently supported.");
            if (!delete_version(*c.record, q.number))
                throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, *ref.qualifier));
            dropped_target = ref.name + ":" + q.text();
        });
        if (dropped_target) {
            events_.delete_event_config(*dropped_target);
            boost::asio::post(io_, [this, t = *dropped_target] { async_.set_config(t, std::nullopt); });
        }
        return http::Response{204, {}, {}, "application/json"};
    });
}

void LambdaApi::update_code(const CallPtr& call, const FunctionRef& ref) {
    if (ref.qualifier) throw LambdaError::invalid_parameter("UpdateFunctionCode does not take a qualifier");
    offload(call, [this, call, ref] {
        const json body = call->body_json();
        const std::string zip = decode_zip(body);
        const bool publish = body.value("Publish", false);
        const bool dry_run = body.value("DryRun", false);
        FunctionPtr shown;
        try {
            commit(ref.name, [&](RecordChange& c) {
                if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name));
                check_revision(body, c.record->latest->revision_id);
                FunctionConfig config = c.record->latest->config;
                json settings = json::object();
                if (body.contains("Architectures")) settings["Architectures"] = body["Architectures"];
                apply_settings(settings, config, c, false);
                StoredCode code = c.put_code(zip);
                set_latest(c, std::move(config), &code, CodeCheck::architecture_only);
                shown = publish ? publish_latest(*c.record, std::nullopt, true) : c.record->latest;
                // Everything checked; a dry run stops before anything is kept.
                if (dry_run) throw DryRun{{200, {}, configuration(*call, *shown).dump(), "application/json"}};
            });
        } catch (DryRun& d) {
            return std::move(d.response);
        }
        return http::Response{200, {}, configuration(*call, *shown).dump(), "application/json"};
    }, /*bulk=*/true);
}

void LambdaApi::update_configuration(const CallPtr& call, const FunctionRef& ref) {
    if (ref.qualifier) throw LambdaError::invalid_parameter("UpdateFunctionConfiguration does not take a qualifier");
    offload(call, [this, call, ref] {
        const json body = call->body_json();
        FunctionPtr shown;
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name));
            check_revision(body, c.record->latest->revision_id);
            // Partial: what the body leaves out keeps its value.
            FunctionConfig config = c.record->latest->config;
            apply_settings(body, config, c, false);
            set_latest(c, std::move(config), nullptr, CodeCheck::architecture_only);
            shown = c.record->latest;
        });
        return http::Response{200, {}, configuration(*call, *shown).dump(), "application/json"};
    });
}

void LambdaApi::publish_version(const CallPtr& call, const FunctionRef& ref) {
    if (ref.qualifier) throw LambdaError::invalid_parameter("PublishVersion does not take a qualifier");
    offload(call, [this, call, ref] {
        const json body = call->body_json();
        FunctionPtr published;
        commit(ref.name, [&](RecordChange& c) {
            if (!c.record) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name));
            const FunctionVersion& latest = *c.record->latest;
            check_revision(body, latest.revision_id);
            if (auto sha = body.find("CodeSha256"); sha != body.end() && sha->is_string() && !sha->get<std::string>().empty()) {
                const std::string current = code_sha256_base64(latest.code_sha256);
                if (*sha != current)
                    throw LambdaError::invalid_parameter("CodeSHA256 (" + sha->get<std::string>() +
                                                         ") is different from current CodeSHA256 in $LATEST (" + current +
                                                         "). Please try again with the CodeSHA256 in $LATEST.");
            }
            std::optional<std::string> description;
            if (auto d = body.find("Description"); d != body.end() && d->is_string()) description = d->get<std::string>();
            published = publish_latest(*c.record, description, true);
        });
        ConfigurationView view;
        view.arn_qualifier = published->label();
        return http::Response{201, {}, configuration(*call, *published, view).dump(), "application/json"};
    });
}

void LambdaApi::list_versions(const CallPtr& call, const FunctionRef& ref) {
    FunctionRecordPtr r = record_for(*call, ref);
    // $LATEST first, then ascending; every ARN qualified, `:$LATEST` included.
    call->reply(200, configuration_page(*call, r->all_versions(), true, "Versions"));
}

}  // namespace funcd
