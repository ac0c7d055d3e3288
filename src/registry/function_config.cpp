#include "funcd/registry/function_config.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <set>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_body.hpp"
#include "funcd/common/base64.hpp"
#include "funcd/common/text.hpp"
#include "funcd/common/utf8.hpp"

namespace funcd {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr std::string_view kDefaultPythonHandler = "lambda_function.lambda_handler";
constexpr std::string_view kDefaultProvidedHandler = "bootstrap";
constexpr std::string_view kDefaultNodeHandler = "index.handler";  // Lambda's console default
constexpr std::size_t kMaxFunctionNameBytes = 64;  // Lambda's limit on an unqualified name
constexpr std::size_t kMaxHandlerBytes = 128;      // Lambda's limit on the Handler setting

// Names the runtime or Lambda itself sets; a user value would break or spoof the runtime.
const std::set<std::string, std::less<>> kReservedEnvKeys = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

struct IntRange {
    std::string_view field;
    int min;
    int max;
};
constexpr IntRange kMemoryRange{"memory_mb", limits::kMinMemoryMb, limits::kMaxMemoryMb};
constexpr IntRange kTimeoutRange{"timeout_s", limits::kMinTimeoutS, limits::kMaxTimeoutS};
constexpr IntRange kKeepAliveRange{"keep_alive_s", limits::kMinKeepAliveS, limits::kMaxKeepAliveS};
constexpr IntRange kEphemeralRange{"ephemeral_storage_mb", limits::kMinEphemeralStorageMb,
                                   limits::kMaxEphemeralStorageMb};
constexpr IntRange kReservedRange{"reserved_concurrency", 0, limits::kMaxConcurrencySetting};
constexpr IntRange kProvisionedRange{"provisioned_concurrency", 0, limits::kMaxConcurrencySetting};

// Lambda function URLs' CORS limits: MaxAge up to 86400 s, up to 100 values per list.
constexpr IntRange kCorsMaxAgeRange{"cors.max_age_s", 0, 86400};
constexpr std::size_t kMaxCorsEntries = 100;

UrlAuth url_auth_from_text(std::string_view text) {
    auto a = parse_url_auth(text);
    if (!a) throw ApiError::bad_parameter("url_auth must be \"none\" or \"token\" (got '" + std::string(text) + "')");
    return *a;
}

InvokeMode invoke_mode_from_text(std::string_view text) {
    auto m = parse_invoke_mode(text);
    if (!m)
        throw ApiError::bad_parameter("invoke_mode must be \"BUFFERED\" or \"RESPONSE_STREAM\" (got '" +
                                      std::string(text) + "')");
    return *m;
}

KeepAliveMode keep_alive_mode_from_text(std::string_view text) {
    auto m = parse_keep_alive_mode(text);
    if (!m)
        throw ApiError::bad_parameter("keep_alive must be \"fixed\" or \"adaptive\" (got '" + std::string(text) +
                                      "')");
    return *m;
}

NetworkMode network_from_text(std::string_view text) {
    auto n = parse_network(text);
    if (!n) throw ApiError::bad_parameter("network must be \"none\" or \"host\" (got '" + std::string(text) + "')");
    return *n;
}

[[noreturn]] void bad_int(const IntRange& r, const std::string& got) {
    throw ApiError::bad_parameter(std::string(r.field) + " must be an integer from " + std::to_string(r.min) +
                                  " to " + std::to_string(r.max) + " (got " + got + ")");
}

void check_range(const IntRange& r, long long v) {
    if (v < r.min || v > r.max) bad_int(r, std::to_string(v));
}

void set_runtime(FunctionConfig& c, std::string_view text) {
    auto r = runtime_family(text);
    if (!r)
        throw ApiError::bad_parameter("runtime must be one of " + supported_runtime_list() + " (got '" +
                                      std::string(text) + "')");
    c.runtime = *r;
    c.runtime_id = std::string(text);
}

void apply_default_handler(FunctionConfig& c) {
    if (c.handler.empty()) c.handler = default_handler(c.runtime);
}

// Reports what a mistyped JSON value was, for messages like "(got a string)".
std::string json_kind(const json& v) {
    switch (v.type()) {
        case json::value_t::string: return "a string";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::null: return "null";
        case json::value_t::number_float: return "a fractional number";
        case json::value_t::array: return "an array";
        case json::value_t::object: return "an object";
        default: return "a number";
    }
}

int json_int(const json& v, const IntRange& r) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(r.max)) bad_int(r, std::to_string(u));
        return static_cast<int>(u);
    }
    if (!v.is_number_integer()) bad_int(r, json_kind(v));
    const auto i = v.get<std::int64_t>();
    check_range(r, i);
    return static_cast<int>(i);
}

std::string json_string(const json& v, std::string_view field) {
    if (!v.is_string())
        throw ApiError::bad_parameter(std::string(field) + " must be a string (got " + json_kind(v) + ")");
    return v.get<std::string>();
}

void check_zip_size(std::size_t size) {
    if (size > limits::kMaxZipBytes)
        throw ApiError::too_large("the function's zip is " + std::to_string(size) + " bytes; the limit is " +
                                  std::to_string(limits::kMaxZipBytes));
}

// Strict decimal: digits only, so "+5", "-0", " 5", "5x" and "0x10" are all refused.
int query_int(const std::string& text, const IntRange& r) {
    const bool digits_only = !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
    long long v = 0;
    if (!digits_only) bad_int(r, "'" + text + "'");
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) bad_int(r, "'" + text + "'");
    check_range(r, v);
    return static_cast<int>(v);
}

bool is_python_identifier(std::string_view s) {
    if (s.empty() || is_digit(s[0])) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return is_alpha(c) || is_digit(c) || c == '_'; });
}

// `<module path>.<function>`; segments split on '/' or '.' so empty ones rule out
// leading '/', "//" and ".." in a single check.
bool is_python_handler(std::string_view h) {
    const auto dot = h.rfind('.');
    if (dot == std::string_view::npos || !is_python_identifier(h.substr(dot + 1))) return false;
    const auto module = h.substr(0, dot);
    std::size_t seg = 0;
    for (std::size_t i = 0; i <= module.size(); ++i) {
        if (i == module.size() || module[i] == '/' || module[i] == '.') {
            if (i == seg) return false;
            seg = i + 1;
        } else if (!is_alpha(module[i]) && !is_digit(module[i]) && module[i] != '_' && module[i] != '-') {
            return false;
        }
    }
    return true;
}

// `[dir/...]module.export[.property...]`, as the Node.js runtime splits it: a non-empty
// module name before the first '.' of the last path segment, and no `..` (which the
// runtime refuses as Runtime.MalformedHandlerName). Lambda allows no whitespace.
bool is_node_handler(std::string_view h) {
    if (h.empty() || h.find("..") != std::string_view::npos || !is_valid_utf8(h)) return false;
    if (std::any_of(h.begin(), h.end(), [](char ch) { return is_control(ch) || ch == ' '; })) return false;
    const auto slash = h.rfind('/');
    const auto last = slash == std::string_view::npos ? h : h.substr(slash + 1);
    const auto dot = last.find('.');
    return dot != std::string_view::npos && dot > 0 && dot + 1 < last.size();
}

void validate_handler(const FunctionConfig& c) {
    const std::string& h = c.handler;
    if (h.size() > kMaxHandlerBytes)
        throw ApiError::bad_parameter("handler must be at most " + std::to_string(kMaxHandlerBytes) +
                                      " bytes (got " + std::to_string(h.size()) + ")");
    if (c.runtime == Runtime::python3) {
        if (!is_python_handler(h))
            throw ApiError::bad_parameter(
                "handler '" + h +
                "' is invalid for runtime python3: use <module path>.<function>, e.g. "
                "lambda_function.lambda_handler or pkg/app.handler, with path segments of letters, digits, "
                "'-' or '_'");
    } else if (c.runtime == Runtime::nodejs) {
        if (!is_node_handler(h))
            throw ApiError::bad_parameter(
                "handler '" + h + "' is invalid for runtime " + c.runtime_name() +
                ": use [dir/]<module>.<export>, e.g. index.handler or src/app.api.get, without spaces or '..'");
    } else {
        if (h.empty() || std::any_of(h.begin(), h.end(), is_control) || !is_valid_utf8(h))
            throw ApiError::bad_parameter("handler for runtime provided must be non-empty UTF-8 text without "
                                          "control characters");
    }
}

std::string decode_zip_base64(const json& code) {
    if (!code.is_object() || code.size() != 1 || !code.contains("zip_base64"))
        throw ApiError::bad_parameter("code must be an object with exactly one field, zip_base64");
    const auto& text = code["zip_base64"];
    if (!text.is_string())
        throw ApiError::bad_parameter("code.zip_base64 must be a base64 string (got " + json_kind(text) + ")");
    const auto& encoded = text.get_ref<const std::string&>();
    // Every 4 characters carry at most 3 bytes, so an oversized zip is refused before decoding it.
    if (encoded.size() / 4 * 3 > limits::kMaxZipBytes + 3) {
        const auto data_chars = std::count_if(encoded.begin(), encoded.end(), [](char ch) {
            return ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n' && ch != '\f' && ch != '\v' && ch != '=';
        });
        check_zip_size(static_cast<std::size_t>(data_chars) / 4 * 3);
    }
    auto zip = base64_decode(encoded);
    if (!zip) throw ApiError::bad_parameter("code.zip_base64 is not valid base64");
    return std::move(*zip);
}

}  // namespace

bool is_reserved_env_key(std::string_view key) { return kReservedEnvKeys.count(key) > 0; }

std::string_view default_handler(Runtime r) {
    switch (r) {
        case Runtime::python3: return kDefaultPythonHandler;
        case Runtime::nodejs: return kDefaultNodeHandler;
        case Runtime::provided: return kDefaultProvidedHandler;
    }
    return kDefaultProvidedHandler;
}

namespace {

void validate_env(const std::map<std::string, std::string>& env) {
    std::size_t total = 0;
    for (const auto& [key, value] : env) {
        const bool key_ok = key.size() >= 2 && is_alpha(key[0]) &&
                            std::all_of(key.begin() + 1, key.end(),
                                        [](char c) { return is_alpha(c) || is_digit(c) || c == '_'; });
        if (!key_ok)
            throw ApiError::bad_parameter("env key '" + key +
                                          "' is invalid: use a letter followed by letters, digits or '_' "
                                          "(at least 2 characters)");
        if (kReservedEnvKeys.count(key))
            throw ApiError::bad_parameter("env key '" + key + "' is reserved by the runtime");
        if (value.find('\0') != std::string::npos)
            throw ApiError::bad_parameter("env." + key + " must not contain NUL bytes");
        if (!is_valid_utf8(value)) throw ApiError::bad_parameter("env." + key + " must be UTF-8 text");
        total += key.size() + value.size();
    }
    if (total > limits::kMaxEnvBytes)
        throw ApiError::bad_parameter("env is " + std::to_string(total) + " bytes of keys and values; the limit is " +
                                      std::to_string(limits::kMaxEnvBytes));
}

}  // namespace

bool FunctionConfig::same_version_settings(const FunctionConfig& other) const {
    FunctionConfig a = *this;
    a.concurrency = other.concurrency;
    return a == other;
}

std::string_view to_string(NetworkMode n) { return n == NetworkMode::host ? "host" : "none"; }

std::optional<NetworkMode> parse_network(std::string_view text) {
    if (text == "none") return NetworkMode::none;
    if (text == "host") return NetworkMode::host;
    return std::nullopt;
}

std::string_view to_string(UrlAuth a) { return a == UrlAuth::none ? "none" : "token"; }

std::optional<UrlAuth> parse_url_auth(std::string_view text) {
    if (text == "none") return UrlAuth::none;
    if (text == "token") return UrlAuth::token;
    return std::nullopt;
}

std::string_view to_string(InvokeMode m) { return m == InvokeMode::response_stream ? "RESPONSE_STREAM" : "BUFFERED"; }

std::optional<InvokeMode> parse_invoke_mode(std::string_view text) {
    if (text == "BUFFERED") return InvokeMode::buffered;
    if (text == "RESPONSE_STREAM") return InvokeMode::response_stream;
    return std::nullopt;
}

json to_json(const CorsSettings& c) {
    return {{"allow_origins", c.allow_origins},
            {"allow_methods", c.allow_methods},
            {"allow_headers", c.allow_headers},
            {"expose_headers", c.expose_headers},
            {"allow_credentials", c.allow_credentials},
            {"max_age_s", c.max_age_s}};
}

CorsSettings parse_cors(const json& j) {
    if (!j.is_object()) throw ApiError::bad_parameter("cors must be an object (got " + json_kind(j) + ")");
    CorsSettings c;
    auto strings = [](const json& v, const std::string& field, auto&& check) {
        if (!v.is_array()) throw ApiError::bad_parameter(field + " must be an array of strings");
        if (v.size() > kMaxCorsEntries)
            throw ApiError::bad_parameter(field + " has more than " + std::to_string(kMaxCorsEntries) + " entries");
        std::vector<std::string> out;
        for (const auto& e : v) {
            if (!e.is_string()) throw ApiError::bad_parameter(field + " must be an array of strings");
            std::string text = e.get<std::string>();
            if (!check(text)) throw ApiError::bad_parameter(field + ": '" + text + "' is not valid");
            out.push_back(std::move(text));
        }
        return out;
    };
    for (const auto& [key, value] : j.items()) {
        if (key == "allow_origins") {
            c.allow_origins = strings(value, "cors.allow_origins", [](const std::string& o) {
                return o == "*" || ((o.starts_with("http://") || o.starts_with("https://")) && o.size() > 8 &&
                                    o.find_first_of(" \t\r\n,/", o.find("//") + 2) == std::string::npos);
            });
        } else if (key == "allow_methods") {
            c.allow_methods = strings(value, "cors.allow_methods", [](const std::string& m) {
                static const std::set<std::string, std::less<>> kMethods = {
                    "*", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
                return kMethods.count(m) > 0;
            });
        } else if (key == "allow_headers") {
            c.allow_headers = strings(value, "cors.allow_headers", [](const std::string& h) {
                return !h.empty() && std::all_of(h.begin(), h.end(), [](char ch) {
                    return is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '_' || ch == '*';
                });
            });
        } else if (key == "expose_headers") {
            c.expose_headers = strings(value, "cors.expose_headers", [](const std::string& h) {
                return !h.empty() && std::all_of(h.begin(), h.end(), [](char ch) {
                    return is_alpha(ch) || is_digit(ch) || ch == '-' || ch == '_' || ch == '*';
                });
            });
        } else if (key == "allow_credentials") {
            if (!value.is_boolean())
                throw ApiError::bad_parameter("cors.allow_credentials must be true or false (got " + json_kind(value) +
                                              ")");
            c.allow_credentials = value.get<bool>();
        } else if (key == "max_age_s") {
            c.max_age_s = json_int(value, kCorsMaxAgeRange);
        } else {
            throw ApiError::bad_parameter("unknown field 'cors." + key +
                                          "' (expected allow_origins, allow_methods, allow_headers, expose_headers, "
                                          "allow_credentials, max_age_s)");
        }
    }
    return c;
}

std::string_view to_string(KeepAliveMode m) { return m == KeepAliveMode::adaptive ? "adaptive" : "fixed"; }

std::optional<KeepAliveMode> parse_keep_alive_mode(std::string_view text) {
    if (text == "fixed") return KeepAliveMode::fixed;
    if (text == "adaptive") return KeepAliveMode::adaptive;
    return std::nullopt;
}

void validate_function_name(std::string_view name) {
    const bool ok = !name.empty() && name.size() <= kMaxFunctionNameBytes &&
                    std::all_of(name.begin(), name.end(),
                                [](char c) { return is_alpha(c) || is_digit(c) || c == '-' || c == '_'; });
    if (!ok)
        throw ApiError::bad_parameter("function name '" + std::string(name) +
                                      "' is invalid: use 1 to 64 letters, digits, '-' or '_'");
}

namespace {

// /v1's logging settings, in the JSON body or the query string: log_format (Text or JSON),
// application_log_level and system_log_level (only with JSON, as Lambda has them). Any case.
class LoggingFields {
public:
    // True if `key` is one of them (and takes `value`); throws ApiError(400) on a bad value.
    bool take(std::string_view key, std::string_view value) {
        if (key == "log_format") {
            auto f = parse_log_format(value, true);
            if (!f) throw ApiError::bad_parameter("log_format must be Text or JSON (got '" + std::string(value) + "')");
            logging_.format = *f;
        } else if (key == "application_log_level") {
            auto l = parse_log_level(value, true);
            if (!l)
                throw ApiError::bad_parameter("application_log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, "
                                              "FATAL (got '" + std::string(value) + "')");
            logging_.application_level = *l;
            application_given_ = true;
        } else if (key == "system_log_level") {
            auto l = parse_log_level(value, true);
            if (!l || !is_system_log_level(*l))
                throw ApiError::bad_parameter("system_log_level must be one of DEBUG, INFO, WARN (got '" +
                                              std::string(value) + "')");
            logging_.system_level = *l;
            system_given_ = true;
        } else {
            return false;
        }
        return true;
    }
    // The settings; levels with Text are refused, as Lambda refuses them.
    LoggingConfig result() const {
        if (!logging_.json() && (application_given_ || system_given_))
            throw ApiError::bad_parameter(std::string(application_given_ ? "application_log_level" : "system_log_level") +
                                          " needs log_format JSON: log levels apply only to JSON logs (as on Lambda)");
        return logging_;
    }

private:
    LoggingConfig logging_;
    bool application_given_ = false;
    bool system_given_ = false;
};

}  // namespace

bool is_system_log_level(LogLevel l) {
    return l == LogLevel::debug || l == LogLevel::info || l == LogLevel::warn;
}

DeployRequest parse_deploy_json(std::string_view name, std::string_view body) {
    validate_function_name(name);
    json doc = parse_json_object(body);

    DeployRequest req;
    FunctionConfig& c = req.config;
    c.name = std::string(name);
    bool have_runtime = false;
    LoggingFields logging;
    for (const auto& [key, value] : doc.items()) {
        if ((key == "log_format" || key == "application_log_level" || key == "system_log_level") &&
            logging.take(key, json_string(value, key))) {
            continue;
        } else if (key == "runtime") {
            if (!value.is_string())
                throw ApiError::bad_parameter("runtime must be a string, one of " + supported_runtime_list() + " (got " +
                                              json_kind(value) + ")");
            set_runtime(c, value.get_ref<const std::string&>());
            have_runtime = true;
        } else if (key == "handler") {
            c.handler = json_string(value, "handler");
            if (c.handler.empty()) throw ApiError::bad_parameter("handler must not be empty");
        } else if (key == "memory_mb") {
            c.memory_mb = json_int(value, kMemoryRange);
        } else if (key == "timeout_s") {
            c.timeout_s = json_int(value, kTimeoutRange);
        } else if (key == "keep_alive_s") {
            c.keep_alive_s = json_int(value, kKeepAliveRange);
        } else if (key == "description") {
            c.description = json_string(value, "description");
        } else if (key == "ephemeral_storage_mb") {
            c.ephemeral_storage_mb = json_int(value, kEphemeralRange);
        } else if (key == "network") {
            c.network = network_from_text(json_string(value, "network"));
        } else if (key == "keep_alive") {
            c.keep_alive_mode = keep_alive_mode_from_text(json_string(value, "keep_alive"));
        } else if (key == "url_auth") {
            c.url_auth = url_auth_from_text(json_string(value, "url_auth"));
        } else if (key == "invoke_mode") {
            c.invoke_mode = invoke_mode_from_text(json_string(value, "invoke_mode"));
        } else if (key == "cors") {
            c.cors = parse_cors(value);
        } else if (key == "reserved_concurrency") {
            if (value.is_null()) c.concurrency.reserved.reset();
            else c.concurrency.reserved = json_int(value, kReservedRange);
            req.concurrency_given = true;
        } else if (key == "provisioned_concurrency") {
            c.concurrency.provisioned = json_int(value, kProvisionedRange);
            req.concurrency_given = true;
        } else if (key == "env") {
            if (!value.is_object())
                throw ApiError::bad_parameter("env must be an object of string values (got " + json_kind(value) +
                                              ")");
            for (const auto& [k, v] : value.items()) c.env[k] = json_string(v, "env." + k);
        } else if (key == "code") {
            req.code_zip = decode_zip_base64(value);
            check_zip_size(req.code_zip->size());
        } else if (key == "preload") {
            if (!value.is_array())
                throw ApiError::bad_parameter("preload must be an array of Python module names (got " +
                                              json_kind(value) + ")");
            c.preload.clear();
            for (const auto& m : value) c.preload.push_back(json_string(m, "preload[]"));
        } else if (key == "layers") {
            if (!value.is_array())
                throw ApiError::bad_parameter("layers must be an array of layer version ARNs (got " + json_kind(value) +
                                              ")");
            for (const auto& l : value) {
                auto ref = l.is_string() ? parse_layer_version_arn(l.get<std::string>()) : std::nullopt;
                if (!ref)
                    throw ApiError::bad_parameter("layers: " + (l.is_string() ? "'" + l.get<std::string>() + "'"
                                                                               : json_kind(l)) +
                                                  " is not a layer version ARN "
                                                  "(arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)");
                req.layers.push_back(std::move(*ref));
            }
        } else {
            throw ApiError::bad_parameter("unknown field '" + key + "'");
        }
    }
    if (!have_runtime) throw ApiError::bad_parameter("runtime is required: one of " + supported_runtime_list());
    c.logging = logging.result();
    apply_default_handler(c);
    validate_config(c);
    return req;
}

DeployRequest parse_deploy_query(std::string_view name,
                                 const std::vector<std::pair<std::string, std::string>>& params,
                                 std::string zip) {
    validate_function_name(name);
    DeployRequest req;
    FunctionConfig& c = req.config;
    c.name = std::string(name);
    constexpr std::string_view kEnvPrefix = "env.";
    std::set<std::string, std::less<>> seen;
    bool have_runtime = false;
    LoggingFields logging;
    for (const auto& [key, value] : params) {
        // A repeated parameter is ambiguous; refusing it beats silently picking one.
        if (!seen.insert(key).second) throw ApiError::bad_parameter("parameter '" + key + "' is given more than once");
        if (logging.take(key, value)) {
            continue;
        } else if (key == "runtime") {
            set_runtime(c, value);
            have_runtime = true;
        } else if (key == "handler") {
            if (value.empty()) throw ApiError::bad_parameter("handler must not be empty");
            c.handler = value;
        } else if (key == "memory_mb") {
            c.memory_mb = query_int(value, kMemoryRange);
        } else if (key == "timeout_s") {
            c.timeout_s = query_int(value, kTimeoutRange);
        } else if (key == "keep_alive_s") {
            c.keep_alive_s = query_int(value, kKeepAliveRange);
        } else if (key == "description") {
            c.description = value;
        } else if (key == "ephemeral_storage_mb") {
            c.ephemeral_storage_mb = query_int(value, kEphemeralRange);
        } else if (key == "network") {
            c.network = network_from_text(value);
        } else if (key == "keep_alive") {
            c.keep_alive_mode = keep_alive_mode_from_text(value);
        } else if (key == "url_auth") {
            c.url_auth = url_auth_from_text(value);
        } else if (key == "invoke_mode") {
            c.invoke_mode = invoke_mode_from_text(value);
        } else if (key == "reserved_concurrency") {
            c.concurrency.reserved = query_int(value, kReservedRange);
            req.concurrency_given = true;
        } else if (key == "provisioned_concurrency") {
            c.concurrency.provisioned = query_int(value, kProvisionedRange);
            req.concurrency_given = true;
        } else if (key == "preload") {
            c.preload = split_commas(value);
        } else if (key.starts_with(kEnvPrefix)) {
            c.env[key.substr(kEnvPrefix.size())] = value;
        } else {
            throw ApiError::bad_parameter("unknown parameter '" + key + "'");
        }
    }
    if (!have_runtime) throw ApiError::bad_parameter("runtime is required: one of " + supported_runtime_list());
    if (zip.empty()) throw ApiError::bad_parameter("the request body must be the function's zip");
    check_zip_size(zip.size());
    req.code_zip = std::move(zip);
    c.logging = logging.result();
    apply_default_handler(c);
    validate_config(c);
    return req;
}

ConcurrencySettings parse_concurrency_json(std::string_view body, const ConcurrencySettings& current) {
    json doc = parse_json_object(body);
    ConcurrencySettings c = current;
    for (const auto& [key, value] : doc.items()) {
        if (key == "reserved_concurrency") {
            if (value.is_null()) c.reserved.reset();
            else c.reserved = json_int(value, kReservedRange);
        } else if (key == "provisioned_concurrency") {
            c.provisioned = json_int(value, kProvisionedRange);
        } else {
            throw ApiError::bad_parameter("unknown field '" + key +
                                          "' (expected reserved_concurrency, provisioned_concurrency)");
        }
    }
    return c;
}

void validate_concurrency(const ConcurrencySettings& c, int max_concurrency) {
    if (c.reserved && *c.reserved > max_concurrency)
        throw ApiError::bad_parameter("reserved_concurrency " + std::to_string(*c.reserved) +
                                      " is above the daemon's --max-concurrency " + std::to_string(max_concurrency));
    const int ceiling = c.reserved.value_or(max_concurrency);
    if (c.provisioned > ceiling)
        throw ApiError::bad_parameter(
            "provisioned_concurrency " + std::to_string(c.provisioned) + " is above " +
            (c.reserved ? "the function's reserved_concurrency " : "the daemon's --max-concurrency ") +
            std::to_string(ceiling));
}

json describe(const ConcurrencySettings& c) {
    return json{{"reserved_concurrency", c.reserved ? json(*c.reserved) : json(nullptr)},
                {"provisioned_concurrency", c.provisioned}};
}

bool is_python_module_name(std::string_view name) {
    bool start = true;
    for (char ch : name) {
        const bool letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        const bool digit = ch >= '0' && ch <= '9';
        if (ch == '.') {
            if (start) return false;
            start = true;
        } else if (letter || (digit && !start)) {
            start = false;
        } else {
            return false;
        }
    }
    return !start;
}

namespace {

void validate_preload(const FunctionConfig& c) {
    if (c.preload.empty()) return;
    if (c.runtime != Runtime::python3)
        throw ApiError::bad_parameter("preload is for python3 functions (this one is " + c.runtime_name() + ")");
    if (c.preload.size() > limits::kMaxPreloadModules)
        throw ApiError::bad_parameter("preload names at most " + std::to_string(limits::kMaxPreloadModules) +
                                      " modules (got " + std::to_string(c.preload.size()) + ")");
    std::set<std::string_view> seen;
    for (const auto& m : c.preload) {
        if (!is_python_module_name(m))
            throw ApiError::bad_parameter("preload: '" + m + "' is not a Python module name (like numpy or PIL.Image)");
        if (!seen.insert(m).second) throw ApiError::bad_parameter("preload: '" + m + "' is named twice");
    }
}

}  // namespace

void validate_config(const FunctionConfig& c) {
    validate_function_name(c.name);
    check_range(kMemoryRange, c.memory_mb);
    check_range(kTimeoutRange, c.timeout_s);
    check_range(kKeepAliveRange, c.keep_alive_s);
    check_range(kEphemeralRange, c.ephemeral_storage_mb);
    if (c.concurrency.reserved) check_range(kReservedRange, *c.concurrency.reserved);
    check_range(kProvisionedRange, c.concurrency.provisioned);
    if (c.concurrency.reserved && c.concurrency.provisioned > *c.concurrency.reserved)
        throw ApiError::bad_parameter("provisioned_concurrency " + std::to_string(c.concurrency.provisioned) +
                                      " is above reserved_concurrency " + std::to_string(*c.concurrency.reserved));
    // Settings are stored and described as JSON, whose strings are UTF-8; the query-string
    // form of a deploy can carry any bytes.
    if (!is_valid_utf8(c.description)) throw ApiError::bad_parameter("description must be UTF-8 text");
    if (c.description.size() > limits::kMaxDescriptionBytes)
        throw ApiError::bad_parameter("description must be at most " + std::to_string(limits::kMaxDescriptionBytes) +
                                      " bytes (got " + std::to_string(c.description.size()) + ")");
    validate_handler(c);
    validate_env(c.env);
    validate_preload(c);
}

namespace {

// ELF's e_machine values (elf.h) for the architectures Lambda names.
constexpr std::uint16_t kElfMachineX86_64 = 62;
constexpr std::uint16_t kElfMachineAarch64 = 183;

// The architecture an ELF executable was built for ("x86_64", "arm64", or the raw machine
// number), or nullopt when `file` is not ELF (a script, for example).
std::optional<std::string> elf_architecture(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::array<unsigned char, 20> head{};
    if (!in.read(reinterpret_cast<char*>(head.data()), head.size())) return std::nullopt;
    if (head[0] != 0x7f || head[1] != 'E' || head[2] != 'L' || head[3] != 'F') return std::nullopt;
    const bool big_endian = head[5] == 2;  // EI_DATA: ELFDATA2MSB
    const std::uint16_t machine = big_endian ? static_cast<std::uint16_t>(head[18] << 8 | head[19])
                                             : static_cast<std::uint16_t>(head[19] << 8 | head[18]);
    if (machine == kElfMachineX86_64) return "x86_64";
    if (machine == kElfMachineAarch64) return "arm64";
    return "machine " + std::to_string(machine);
}

bool is_executable_file(const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
}

}  // namespace

void validate_code_for_runtime(const FunctionConfig& c, const fs::path& code_dir, const fs::path& opt_dir,
                               CodeCheck check) {
    if (c.runtime == Runtime::provided) {
        // Lambda runs /var/task/bootstrap, else /opt/bootstrap from a layer.
        fs::path bootstrap = code_dir / "bootstrap";
        if (!is_executable_file(bootstrap) && !opt_dir.empty() && is_executable_file(opt_dir / "bootstrap"))
            bootstrap = opt_dir / "bootstrap";
        if (!is_executable_file(bootstrap)) {
            if (check == CodeCheck::architecture_only) return;  // Runtime.InvalidEntrypoint at invoke, as on Lambda
            throw ApiError::bad_parameter(
                "runtime provided needs an executable file named 'bootstrap' at the root of the zip");
        }
        if (auto arch = elf_architecture(bootstrap); arch && (*arch != c.architecture || *arch != host_architecture()))
            throw ApiError::bad_parameter("bootstrap is an ELF executable for " + *arch + ", but the function's "
                                          "architecture is " + c.architecture + " and this host runs " +
                                          std::string(host_architecture()) + "; build it for " +
                                          std::string(host_architecture()));
        return;
    }
    // Lambda checks a Python handler's module only when the runtime imports it.
    if (check == CodeCheck::architecture_only) return;
    // A Node.js handler's module may be a file of the zip (with or without an extension),
    // a package in its node_modules or one of a layer's: the runtime resolves it, and one
    // it cannot find is Runtime.ImportModuleError, as on Lambda.
    if (c.runtime == Runtime::nodejs) return;
    // validate_config has already checked the handler's shape, so the module path is clean.
    std::string module = c.handler.substr(0, c.handler.rfind('.'));
    std::replace(module.begin(), module.end(), '.', '/');
    std::error_code ec;
    if (fs::is_regular_file(code_dir / (module + ".py"), ec) ||
        fs::is_regular_file(code_dir / module / "__init__.py", ec))
        return;
    throw ApiError::bad_parameter("handler '" + c.handler + "': module file " + module +
                                  ".py not found in the zip");
}

namespace {

json layer_names(const std::vector<LayerRef>& layers) {
    json out = json::array();
    for (const auto& l : layers) out.push_back({{"name", l.name}, {"version", l.version}, {"code_size", l.code_size}});
    return out;
}

}  // namespace

json describe(const FunctionVersion& v) {
    const FunctionConfig& c = v.config;
    return json{
        {"name", c.name},
        {"runtime", c.runtime_name()},
        {"handler", c.handler},
        {"memory_mb", c.memory_mb},
        {"timeout_s", c.timeout_s},
        {"env", c.env},
        {"keep_alive_s", c.keep_alive_s},
        {"keep_alive", to_string(c.keep_alive_mode)},
        {"reserved_concurrency", c.concurrency.reserved ? json(*c.concurrency.reserved) : json(nullptr)},
        {"provisioned_concurrency", c.concurrency.provisioned},
        {"url_auth", to_string(c.url_auth)},
        {"invoke_mode", to_string(c.invoke_mode)},
        {"cors", to_json(c.cors)},
        {"description", c.description},
        {"ephemeral_storage_mb", c.ephemeral_storage_mb},
        {"network", to_string(c.network)},
        {"log_format", to_string(c.logging.format)},
        {"application_log_level", c.logging.json() ? json(to_string(c.logging.application_level)) : json(nullptr)},
        {"system_log_level", c.logging.json() ? json(to_string(c.logging.system_level)) : json(nullptr)},
        {"version", v.is_latest() ? json(v.label()) : json(v.version)},
        {"architecture", c.architecture},
        {"layers", layer_names(c.layers)},
        {"preload", c.preload},
        {"code_sha256", v.code_sha256},
        {"code_size", v.code_size},
        {"last_modified", format_rfc3339(v.last_modified)},
    };
}

}  // namespace funcd
