#include "funcd/event_sources/mapping_config.hpp"

#include <cctype>
#include <utility>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_body.hpp"
#include "funcd/registry/function_config.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace mapping_limits;

// Keywords of a connection string whose values are secrets.
bool secret_keyword(std::string_view key) { return key == "password" || key == "sslpassword"; }

// A connection string's keyword/value pairs, in order; nullopt when it is not one.
using Pairs = std::vector<std::pair<std::string, std::string>>;

// libpq's keyword/value form: `key = value` separated by white space; a value may be in
// single quotes; a backslash escapes the next character.
std::optional<Pairs> parse_keyword_value(std::string_view s) {
    Pairs out;
    std::size_t i = 0;
    auto skip_space = [&] {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    };
    for (;;) {
        skip_space();
        if (i == s.size()) break;
        std::string key;
        while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) key += s[i++];
        if (key.empty()) return std::nullopt;
        skip_space();
        if (i == s.size() || s[i] != '=') return std::nullopt;
        ++i;
        skip_space();
        std::string value;
        if (i < s.size() && s[i] == '\'') {
            ++i;
            bool closed = false;
            while (i < s.size()) {
                if (s[i] == '\\' && i + 1 < s.size()) {
                    value += s[i + 1];
                    i += 2;
                } else if (s[i] == '\'') {
                    ++i;
                    closed = true;
                    break;
                } else {
                    value += s[i++];
                }
            }
            if (!closed) return std::nullopt;
        } else {
            while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) {
                if (s[i] == '\\' && i + 1 < s.size()) ++i;
                value += s[i++];
            }
        }
        out.emplace_back(std::move(key), std::move(value));
    }
    if (out.empty()) return std::nullopt;
    return out;
}

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
            return std::nullopt;
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
    }
    return out;
}

// libpq's URI form: postgres[ql]://[user[:password]@][hosts][/dbname][?key=value&...].
std::optional<Pairs> parse_uri(std::string_view s) {
    for (std::string_view scheme : {"postgresql://", "postgres://"}) {
        if (!s.starts_with(scheme)) continue;
        s.remove_prefix(scheme.size());
        Pairs out;
        const std::size_t end_authority = s.find_first_of("/?");
        std::string_view authority = s.substr(0, end_authority);
        std::string_view rest = end_authority == std::string_view::npos ? std::string_view() : s.substr(end_authority);
        if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
            std::string_view userinfo = authority.substr(0, at);
            authority.remove_prefix(at + 1);
            const auto colon = userinfo.find(':');
            auto user = percent_decode(userinfo.substr(0, colon));
            if (!user) return std::nullopt;
            if (!user->empty()) out.emplace_back("user", *user);
            if (colon != std::string_view::npos) {
                auto password = percent_decode(userinfo.substr(colon + 1));
                if (!password) return std::nullopt;
                out.emplace_back("password", *password);
            }
        }
        if (!authority.empty()) {
            // host[:port][,host[:port]...], an IPv6 address in brackets.
            std::string hosts, ports;
            bool any_port = false;
            std::size_t i = 0;
            for (bool first = true;; first = false) {
                const std::size_t comma = authority.find(',', i);
                std::string_view one = authority.substr(i, comma == std::string_view::npos ? std::string_view::npos
                                                                                           : comma - i);
                std::string_view host = one, port;
                if (one.starts_with('[')) {
                    const auto close = one.find(']');
                    if (close == std::string_view::npos) return std::nullopt;
                    host = one.substr(1, close - 1);
                    if (close + 1 < one.size() && one[close + 1] == ':') port = one.substr(close + 2);
                } else if (const auto colon = one.find(':'); colon != std::string_view::npos) {
                    host = one.substr(0, colon);
                    port = one.substr(colon + 1);
                }
                auto h = percent_decode(host);
                if (!h) return std::nullopt;
                hosts += (first ? "" : ",") + *h;
                ports += (first ? "" : ",") + std::string(port);
                any_port = any_port || !port.empty();
                if (comma == std::string_view::npos) break;
                i = comma + 1;
            }
            if (!hosts.empty()) out.emplace_back("host", hosts);
            if (any_port) out.emplace_back("port", ports);
        }
        if (rest.starts_with('/')) {
            const auto q = rest.find('?');
            auto db = percent_decode(rest.substr(1, q == std::string_view::npos ? std::string_view::npos : q - 1));
            if (!db) return std::nullopt;
            if (!db->empty()) out.emplace_back("dbname", *db);
            rest = q == std::string_view::npos ? std::string_view() : rest.substr(q);
        }
        if (rest.starts_with('?')) {
            rest.remove_prefix(1);
            while (!rest.empty()) {
                const auto amp = rest.find('&');
                std::string_view kv = rest.substr(0, amp);
                rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
                const auto eq = kv.find('=');
                if (eq == std::string_view::npos || eq == 0) return std::nullopt;
                auto k = percent_decode(kv.substr(0, eq));
                auto v = percent_decode(kv.substr(eq + 1));
                if (!k || !v) return std::nullopt;
                out.emplace_back(*k, *v);
            }
        }
        return out;
    }
    return std::nullopt;
}

std::string quote_value(const std::string& v) {
    if (!v.empty() && v.find_first_of(" \t\n'\\") == std::string::npos) return v;
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

[[noreturn]] void bad(const std::string& message) { throw ApiError::bad_parameter(message); }

int int_field(const json& v, const std::string& field, int min, int max, std::string_view extra = {}) {
    if (!v.is_number_integer())
        bad(field + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
            std::string(extra));
    const auto n = v.get<std::int64_t>();
    if (n < min || n > max)
        bad(field + " must be from " + std::to_string(min) + " to " + std::to_string(max) + std::string(extra) +
            " (got " + std::to_string(n) + ")");
    return static_cast<int>(n);
}

bool bool_field(const json& v, const std::string& field) {
    if (!v.is_boolean()) bad(field + " must be true or false");
    return v.get<bool>();
}

std::optional<RowOperation> operation_named(std::string_view name) {
    if (name == "insert") return RowOperation::insert;
    if (name == "update") return RowOperation::update;
    if (name == "delete") return RowOperation::remove;
    return std::nullopt;
}

bool identifier(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;  // PostgreSQL's NAMEDATALEN - 1
    if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$')) return false;
    return true;
}

}  // namespace

std::string_view to_string(StartingPosition p) { return p == StartingPosition::latest ? "LATEST" : "TRIM_HORIZON"; }

std::string_view event_name_of(RowOperation op) {
    switch (op) {
        case RowOperation::insert: return "insert";
        case RowOperation::update: return "update";
        case RowOperation::remove: return "delete";
    }
    return "insert";
}

std::string normalize_table(std::string_view table) {
    const auto dot = table.find('.');
    const std::string_view schema = dot == std::string_view::npos ? std::string_view("public") : table.substr(0, dot);
    const std::string_view name = dot == std::string_view::npos ? table : table.substr(dot + 1);
    if (!identifier(schema) || !identifier(name))
        bad("tables: '" + std::string(table.substr(0, 200)) +
            "' is not a table name: use schema.table (or table, for public.table), each part a plain identifier "
            "(letters, digits, '_', '$'; not starting with a digit; at most 63 characters)");
    return std::string(schema) + "." + std::string(name);
}

std::string redact_connection(std::string_view connection) {
    std::optional<Pairs> pairs = parse_uri(connection);
    if (!pairs) pairs = parse_keyword_value(connection);
    if (!pairs)
        bad("connection is neither a libpq keyword/value string (host=... dbname=... user=...) nor a "
            "postgresql:// URI");
    std::string out;
    for (const auto& [key, value] : *pairs) {
        if (!out.empty()) out += ' ';
        out += key + "=" + (secret_keyword(key) ? std::string("***") : quote_value(value));
    }
    return out;
}

void validate_mapping_config(const MappingConfig& c) {
    if (c.type != "postgres") bad("type must be \"postgres\" (the only event source type funcd has)");
    if (c.connection.empty()) bad("connection is required: a libpq connection string or postgresql:// URI");
    if (c.connection.size() > kMaxConnectionBytes)
        bad("connection is " + std::to_string(c.connection.size()) + " bytes; the limit is " +
            std::to_string(kMaxConnectionBytes));
    if (c.connection.find('\0') != std::string::npos) bad("connection must not contain a NUL character");
    redact_connection(c.connection);  // throws when it cannot be parsed
    if (c.tables.empty()) bad("tables is required: a non-empty array of \"schema.table\" names");
    if (c.tables.size() > kMaxTables)
        bad("tables names " + std::to_string(c.tables.size()) + " tables; the limit is " + std::to_string(kMaxTables));
    if (c.events.empty()) bad("events must name at least one of \"insert\", \"update\", \"delete\"");
    if (c.batch_size < kMinBatchSize || c.batch_size > kMaxBatchSize)
        bad("batch_size must be from 1 to " + std::to_string(kMaxBatchSize));
    if (c.maximum_batching_window_s < 0 || c.maximum_batching_window_s > kMaxBatchingWindowS)
        bad("maximum_batching_window_s must be from 0 to " + std::to_string(kMaxBatchingWindowS));
    if (c.maximum_retry_attempts < kMinRetryAttempts || c.maximum_retry_attempts > kMaxRetryAttempts)
        bad("maximum_retry_attempts must be from -1 to " + std::to_string(kMaxRetryAttempts));
    if (c.maximum_record_age_s != -1 &&
        (c.maximum_record_age_s < kMinRecordAgeS || c.maximum_record_age_s > kMaxRecordAgeS))
        bad("maximum_record_age_s must be -1 (never) or from " + std::to_string(kMinRecordAgeS) + " to " +
            std::to_string(kMaxRecordAgeS));
    if (c.on_failure) {
        const std::string target = c.on_failure->substr(0, c.on_failure->find(':'));
        try {
            validate_function_name(target);
        } catch (const ApiError&) {
            bad("on_failure must name a function (\"name\" or \"name:qualifier\")");
        }
        if (target == c.function) bad("on_failure must be another function than the one the mapping invokes");
    }
}

MappingConfig parse_mapping_config(const std::string& function, const std::string& name, std::string_view body,
                                   const MappingConfig* existing) {
    json doc = parse_json_object(body);
    MappingConfig c;
    c.function = function;
    c.name = name;
    if (existing) c.uuid = existing->uuid;
    bool have_connection = false;
    for (const auto& [key, value] : doc.items()) {
        if (key == "type") {
            if (!value.is_string()) bad("type must be a string (\"postgres\")");
            c.type = value.get<std::string>();
        } else if (key == "connection") {
            if (!value.is_string()) bad("connection must be a string: a libpq connection string or postgresql:// URI");
            c.connection = value.get<std::string>();
            have_connection = true;
        } else if (key == "tables") {
            if (!value.is_array()) bad("tables must be an array of \"schema.table\" names");
            std::set<std::string> seen;
            for (const auto& t : value) {
                if (!t.is_string()) bad("tables: each must be a string (got " + t.dump().substr(0, 100) + ")");
                std::string table = normalize_table(t.get<std::string>());
                if (!seen.insert(table).second) bad("tables: '" + table + "' is named twice");
                c.tables.push_back(std::move(table));
            }
        } else if (key == "events") {
            if (!value.is_array()) bad("events must be an array of \"insert\", \"update\", \"delete\"");
            c.events.clear();
            for (const auto& e : value) {
                const auto op = e.is_string() ? operation_named(e.get<std::string>()) : std::nullopt;
                if (!op) bad("events: " + e.dump().substr(0, 100) + " is not one of \"insert\", \"update\", \"delete\"");
                c.events.insert(*op);
            }
        } else if (key == "batch_size") {
            c.batch_size = int_field(value, key, kMinBatchSize, kMaxBatchSize);
        } else if (key == "maximum_batching_window_s") {
            c.maximum_batching_window_s = int_field(value, key, 0, kMaxBatchingWindowS);
        } else if (key == "starting_position") {
            if (value == "LATEST") c.starting_position = StartingPosition::latest;
            else if (value == "TRIM_HORIZON") c.starting_position = StartingPosition::trim_horizon;
            else bad("starting_position must be \"LATEST\" or \"TRIM_HORIZON\"");
        } else if (key == "maximum_retry_attempts") {
            c.maximum_retry_attempts = int_field(value, key, kMinRetryAttempts, kMaxRetryAttempts, " (-1: forever)");
        } else if (key == "maximum_record_age_s") {
            if (!value.is_number_integer() || (value.get<std::int64_t>() != -1 &&
                                                (value.get<std::int64_t>() < kMinRecordAgeS ||
                                                 value.get<std::int64_t>() > kMaxRecordAgeS)))
                bad("maximum_record_age_s must be -1 (never) or an integer from " + std::to_string(kMinRecordAgeS) +
                    " to " + std::to_string(kMaxRecordAgeS));
            c.maximum_record_age_s = static_cast<int>(value.get<std::int64_t>());
        } else if (key == "bisect_batch_on_function_error") {
            c.bisect_batch_on_function_error = bool_field(value, key);
        } else if (key == "function_response_types") {
            if (!value.is_array() || value.size() > 1 || (value.size() == 1 && value[0] != "ReportBatchItemFailures"))
                bad("function_response_types must be [] or [\"ReportBatchItemFailures\"]");
            c.report_batch_item_failures = value.size() == 1;
        } else if (key == "on_failure") {
            if (value.is_null()) continue;
            if (!value.is_string()) bad("on_failure must be a function name or null");
            c.on_failure = value.get<std::string>();
        } else if (key == "enabled") {
            c.enabled = bool_field(value, key);
        } else {
            bad("unknown field '" + key +
                "' (expected type, connection, tables, events, batch_size, maximum_batching_window_s, "
                "starting_position, maximum_retry_attempts, maximum_record_age_s, bisect_batch_on_function_error, "
                "function_response_types, on_failure, enabled)");
        }
    }
    if (!have_connection && existing) c.connection = existing->connection;
    validate_mapping_config(c);
    return c;
}

json to_json(const MappingConfig& c) {
    json events = json::array();
    for (auto op : c.events) events.push_back(event_name_of(op));
    return {{"uuid", c.uuid},
            {"function", c.function},
            {"name", c.name},
            {"type", c.type},
            {"connection", redact_connection(c.connection)},
            {"tables", c.tables},
            {"events", events},
            {"batch_size", c.batch_size},
            {"maximum_batching_window_s", c.maximum_batching_window_s},
            {"starting_position", to_string(c.starting_position)},
            {"maximum_retry_attempts", c.maximum_retry_attempts},
            {"maximum_record_age_s", c.maximum_record_age_s},
            {"bisect_batch_on_function_error", c.bisect_batch_on_function_error},
            {"function_response_types",
             c.report_batch_item_failures ? json::array({"ReportBatchItemFailures"}) : json::array()},
            {"on_failure", c.on_failure ? json(*c.on_failure) : json(nullptr)},
            {"enabled", c.enabled},
            {"last_modified", format_rfc3339(c.last_modified)}};
}

json to_stored_json(const MappingConfig& c) {
    json j = to_json(c);
    j["connection"] = c.connection;
    j["last_modified_us"] = to_unix_us(c.last_modified);
    j.erase("last_modified");
    return j;
}

MappingConfig mapping_config_from_stored_json(const json& j) {
    MappingConfig c;
    c.uuid = j.at("uuid").get<std::string>();
    c.function = j.at("function").get<std::string>();
    c.name = j.at("name").get<std::string>();
    c.type = j.value("type", "postgres");
    c.connection = j.at("connection").get<std::string>();
    c.tables = j.at("tables").get<std::vector<std::string>>();
    c.events.clear();
    for (const auto& e : j.at("events"))
        if (auto op = operation_named(e.get<std::string>())) c.events.insert(*op);
    c.batch_size = j.at("batch_size").get<int>();
    c.maximum_batching_window_s = j.at("maximum_batching_window_s").get<int>();
    c.starting_position =
        j.at("starting_position") == "TRIM_HORIZON" ? StartingPosition::trim_horizon : StartingPosition::latest;
    c.maximum_retry_attempts = j.at("maximum_retry_attempts").get<int>();
    c.maximum_record_age_s = j.at("maximum_record_age_s").get<int>();
    c.bisect_batch_on_function_error = j.at("bisect_batch_on_function_error").get<bool>();
    c.report_batch_item_failures = !j.at("function_response_types").empty();
    if (j.at("on_failure").is_string()) c.on_failure = j.at("on_failure").get<std::string>();
    c.enabled = j.at("enabled").get<bool>();
    c.last_modified = from_unix_us(j.value("last_modified_us", std::int64_t{0}));
    return c;
}

}  // namespace funcd
