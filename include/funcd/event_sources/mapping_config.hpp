#pragma once
// An event source mapping's settings: which database changes reach which function, and the
// delivery rules (Lambda's stream mapping settings: batch size, batching window, retries,
// record age, bisecting, partial batch responses, an on-failure destination). Validation
// with Lambda's ranges is here, for both APIs; so is what may be shown of the connection
// string, which holds a password and is never shown or logged whole.
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/event_sources/row_change.hpp"

namespace funcd {

// Lambda's ranges (CreateEventSourceMapping in botocore's model; DynamoDB Streams' and
// Kinesis' defaults).
namespace mapping_limits {
inline constexpr int kMinBatchSize = 1;
inline constexpr int kMaxBatchSize = 10'000;
inline constexpr int kDefaultBatchSize = 100;
inline constexpr int kMaxBatchingWindowS = 300;
inline constexpr int kMinRetryAttempts = -1;  // -1: until the record expires (forever by default)
inline constexpr int kMaxRetryAttempts = 10'000;
inline constexpr int kMinRecordAgeS = 60;  // or -1: records never expire
inline constexpr int kMaxRecordAgeS = 604'800;
// Not Lambda's: a publication over more tables than this is better made for the whole schema.
inline constexpr std::size_t kMaxTables = 100;
// A libpq connection string is a few hundred bytes; anything far larger is a mistake.
inline constexpr std::size_t kMaxConnectionBytes = 4096;
}  // namespace mapping_limits

enum class StartingPosition { latest, trim_horizon };

std::string_view to_string(StartingPosition p);

struct MappingConfig {
    std::string uuid;      // Lambda's UUID of the mapping; also in its ARN
    std::string function;  // the function it invokes
    std::string name;      // unique per function (/v1 names it; Lambda's API uses the UUID)
    std::string type = "postgres";
    std::string connection;  // libpq keyword/value string or URI, password included
    std::vector<std::string> tables;  // "schema.table", in the order given
    std::set<RowOperation> events{RowOperation::insert, RowOperation::update, RowOperation::remove};
    int batch_size = mapping_limits::kDefaultBatchSize;
    int maximum_batching_window_s = 0;
    StartingPosition starting_position = StartingPosition::latest;
    int maximum_retry_attempts = -1;
    int maximum_record_age_s = -1;
    bool bisect_batch_on_function_error = false;
    bool report_batch_item_failures = false;  // function_response_types: ["ReportBatchItemFailures"]
    std::optional<std::string> on_failure;    // a function ("name" or "name:qualifier")
    bool enabled = true;
    SystemTime last_modified;

    bool wants(RowOperation op) const { return events.contains(op); }
};

// What a /v1 PUT body may say. `existing`: the mapping it replaces, if any, whose
// connection is kept when the body gives none (so a change of settings need not send the
// password again). Throws ApiError(400) naming the field; the message never holds the
// connection string.
MappingConfig parse_mapping_config(const std::string& function, const std::string& name, std::string_view body,
                                   const MappingConfig* existing);

// Checks ranges and shapes shared by both APIs. Throws ApiError(400).
void validate_mapping_config(const MappingConfig& c);

// "public.orders" from "orders" or "public.orders"; throws ApiError(400) for anything else.
std::string normalize_table(std::string_view table);

// The connection string without its secrets: keyword/value form with password and
// sslpassword replaced by "***". Throws ApiError(400) when it is neither a keyword/value
// string nor a postgres:// URI (without quoting the string).
std::string redact_connection(std::string_view connection);

// The settings as /v1 shows them (connection redacted).
nlohmann::json to_json(const MappingConfig& c);

// The whole config for storage (connection included: the store seals it).
nlohmann::json to_stored_json(const MappingConfig& c);
MappingConfig mapping_config_from_stored_json(const nlohmann::json& j);

std::string_view event_name_of(RowOperation op);  // "insert", "update", "delete"

}  // namespace funcd
