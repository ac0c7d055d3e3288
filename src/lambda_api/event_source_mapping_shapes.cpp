#include "funcd/lambda_api/event_source_mapping_shapes.hpp"

#include <chrono>

#include "funcd/common/api_error.hpp"
#include "funcd/lambda_api/lambda_error.hpp"
#include "funcd/registry/arn.hpp"

namespace funcd {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& m) { throw LambdaError::invalid_parameter(m); }

int integer(const json& body, const char* field, int fallback) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return fallback;
    if (!it->is_number_integer()) throw LambdaError::validation(std::string(field) + " must be an integer");
    return static_cast<int>(it->get<std::int64_t>());
}

bool boolean(const json& body, const char* field, bool fallback) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw LambdaError::validation(std::string(field) + " must be a boolean");
    return it->get<bool>();
}

// A function ARN (or name) of DestinationConfig.OnFailure.Destination: "name" or "name:qualifier".
std::string destination_function(const json& destination) {
    if (!destination.is_string()) invalid("DestinationConfig.OnFailure.Destination must be a function ARN");
    const std::string text = destination.get<std::string>();
    if (text.starts_with("arn:") && text.find(":function:") == std::string::npos)
        invalid("funcd's mappings send failed batches to functions only: DestinationConfig.OnFailure.Destination "
                "must be a function ARN");
    auto ref = parse_function_ref(text);
    if (!ref) invalid("DestinationConfig.OnFailure.Destination '" + text + "' is not a function ARN");
    return ref->qualifier ? ref->name + ":" + *ref->qualifier : ref->name;
}

// libpq's keyword/value quoting, for credentials appended to the endpoint's string.
std::string conninfo_value(const std::string& v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

std::set<RowOperation> events_from_filters(const json& criteria) {
    if (!criteria.is_object()) invalid("FilterCriteria must be an object");
    auto filters = criteria.find("Filters");
    std::set<RowOperation> events;
    if (filters == criteria.end() || filters->is_null() || filters->empty())
        return {RowOperation::insert, RowOperation::update, RowOperation::remove};
    if (!filters->is_array()) invalid("FilterCriteria.Filters must be a list");
    for (const auto& f : *filters) {
        json pattern = f.is_object() && f.contains("Pattern") && f["Pattern"].is_string()
                           ? json::parse(f["Pattern"].get<std::string>(), nullptr, false)
                           : json();
        if (!pattern.is_object() || pattern.size() != 1 || !pattern.contains("eventName") ||
            !pattern["eventName"].is_array())
            invalid("funcd filters a PostgreSQL mapping's records by eventName only: each Filters Pattern must be "
                    "{\"eventName\": [\"INSERT\" | \"MODIFY\" | \"REMOVE\", ...]}");
        for (const auto& name : pattern["eventName"]) {
            if (name == "INSERT") events.insert(RowOperation::insert);
            else if (name == "MODIFY") events.insert(RowOperation::update);
            else if (name == "REMOVE") events.insert(RowOperation::remove);
            else invalid("eventName filters name INSERT, MODIFY or REMOVE (got " + name.dump() + ")");
        }
    }
    return events;
}

}  // namespace

MappingConfig mapping_from_lambda(const json& body, const std::string& function, const MappingConfig* existing) {
    MappingConfig c = existing ? *existing : MappingConfig{};
    c.function = function;
    if (!existing) {
        auto source = body.find("SelfManagedEventSource");
        auto endpoints = source != body.end() && source->is_object() ? source->find("Endpoints") : json::const_iterator();
        const bool postgres = source != body.end() && source->is_object() && endpoints != source->end() &&
                              endpoints->is_object() && endpoints->contains(kPostgresEndpointKey);
        if (!postgres) {
            // An AWS event source (an SQS queue, a Kinesis or DynamoDB stream, Kafka...) is out
            // of funcd's reach.
            throw LambdaError::invalid_parameter("Unrecognized event source.");
        }
        const json& list = (*endpoints)[std::string(kPostgresEndpointKey)];
        if (!list.is_array() || list.size() != 1 || !list[0].is_string())
            invalid("SelfManagedEventSource.Endpoints.POSTGRESQL must be a list of one connection string");
        c.connection = list[0].get<std::string>();
        if (auto it = body.find("StartingPosition"); it != body.end() && !it->is_null()) {
            if (*it == "LATEST") c.starting_position = StartingPosition::latest;
            else if (*it == "TRIM_HORIZON") c.starting_position = StartingPosition::trim_horizon;
            else invalid("StartingPosition must be LATEST or TRIM_HORIZON for a PostgreSQL source");
        }
        auto topics = body.find("Topics");
        if (topics == body.end() || !topics->is_array() || topics->empty())
            invalid("Topics must list the tables to follow (\"schema.table\")");
        c.tables.clear();
        for (const auto& t : *topics) {
            if (!t.is_string()) invalid("Topics must be table names");
            try {
                c.tables.push_back(normalize_table(t.get<std::string>()));
            } catch (const ApiError& e) {
                invalid(e.what());
            }
        }
    } else {
        for (const char* fixed : {"SelfManagedEventSource", "Topics", "StartingPosition", "EventSourceArn"})
            if (body.contains(fixed)) invalid(std::string(fixed) + " cannot be changed; delete the mapping and create it again");
    }
    if (auto access = body.find("SourceAccessConfigurations"); access != body.end() && !access->is_null()) {
        if (!access->is_array()) invalid("SourceAccessConfigurations must be a list");
        for (const auto& a : *access) {
            if (!a.is_object() || a.value("Type", "") != "BASIC_AUTH" || !a.contains("URI") || !a["URI"].is_string())
                invalid("funcd takes one SourceAccessConfiguration: {\"Type\": \"BASIC_AUTH\", \"URI\": "
                        "\"<user>:<password>\"}");
            const std::string uri = a["URI"].get<std::string>();
            const auto colon = uri.find(':');
            if (colon == std::string::npos || colon == 0)
                invalid("BASIC_AUTH's URI must be \"<user>:<password>\" (funcd has no secret store)");
            c.connection += " user=" + conninfo_value(uri.substr(0, colon)) +
                            " password=" + conninfo_value(uri.substr(colon + 1));
        }
    }
    c.batch_size = integer(body, "BatchSize", c.batch_size);
    c.maximum_batching_window_s = integer(body, "MaximumBatchingWindowInSeconds", c.maximum_batching_window_s);
    c.maximum_retry_attempts = integer(body, "MaximumRetryAttempts", c.maximum_retry_attempts);
    c.maximum_record_age_s = integer(body, "MaximumRecordAgeInSeconds", c.maximum_record_age_s);
    c.bisect_batch_on_function_error = boolean(body, "BisectBatchOnFunctionError", c.bisect_batch_on_function_error);
    c.enabled = boolean(body, "Enabled", c.enabled);
    if (integer(body, "ParallelizationFactor", 1) != 1)
        invalid("ParallelizationFactor must be 1: a mapping delivers one batch at a time, in commit order");
    if (integer(body, "TumblingWindowInSeconds", 0) != 0) invalid("funcd's mappings have no tumbling windows");
    if (auto types = body.find("FunctionResponseTypes"); types != body.end() && !types->is_null()) {
        if (!types->is_array() || types->size() > 1 ||
            (types->size() == 1 && (*types)[0] != "ReportBatchItemFailures"))
            invalid("FunctionResponseTypes must be [] or [\"ReportBatchItemFailures\"]");
        c.report_batch_item_failures = types->size() == 1;
    }
    if (auto criteria = body.find("FilterCriteria"); criteria != body.end() && !criteria->is_null())
        c.events = events_from_filters(*criteria);
    if (auto dc = body.find("DestinationConfig"); dc != body.end() && !dc->is_null()) {
        if (!dc->is_object()) invalid("DestinationConfig must be an object");
        if (dc->contains("OnSuccess") && !(*dc)["OnSuccess"].empty())
            invalid("a mapping has no OnSuccess destination (Lambda has none for stream sources either)");
        if (auto on_failure = dc->find("OnFailure"); on_failure != dc->end()) {
            auto d = on_failure->is_object() ? on_failure->find("Destination") : on_failure->end();
            if (d == on_failure->end() || d->is_null()) c.on_failure.reset();
            else c.on_failure = destination_function(*d);
        }
    }
    try {
        validate_mapping_config(c);
    } catch (const ApiError& e) {
        invalid(e.what());
    }
    return c;
}

json lambda_mapping_configuration(const MappingView& v, const ArnScope& scope, const std::string& arn) {
    const MappingConfig& c = v.config;
    // Lambda's states have no "Failing": a failing mapping is Enabled with a problem reported.
    const std::string state = v.state == "Failing" ? "Enabled" : v.state;
    json out{{"UUID", c.uuid},
             {"StartingPosition", to_string(c.starting_position)},
             {"BatchSize", c.batch_size},
             {"MaximumBatchingWindowInSeconds", c.maximum_batching_window_s},
             {"ParallelizationFactor", 1},
             {"FunctionArn", function_arn(scope.region, scope.account, c.function, "")},
             {"LastModified",
              std::chrono::duration_cast<std::chrono::seconds>(c.last_modified.time_since_epoch()).count()},
             {"LastProcessingResult",
              v.status.last_processing_result.empty() ? "No records processed" : v.status.last_processing_result},
             {"State", state},
             {"StateTransitionReason",
              v.state == "Failing" && !v.status.last_error.empty() ? v.status.last_error : "USER_INITIATED"},
             {"Topics", c.tables},
             {"SelfManagedEventSource",
              {{"Endpoints", {{std::string(kPostgresEndpointKey), {redact_connection(c.connection)}}}}}},
             {"MaximumRecordAgeInSeconds", c.maximum_record_age_s},
             {"BisectBatchOnFunctionError", c.bisect_batch_on_function_error},
             {"MaximumRetryAttempts", c.maximum_retry_attempts},
             {"TumblingWindowInSeconds", 0},
             {"FunctionResponseTypes",
              c.report_batch_item_failures ? json::array({"ReportBatchItemFailures"}) : json::array()},
             {"EventSourceMappingArn", arn}};
    out["DestinationConfig"] = {
        {"OnFailure", c.on_failure ? json{{"Destination", function_arn(scope.region, scope.account,
                                                                        c.on_failure->substr(0, c.on_failure->find(':')),
                                                                        c.on_failure->find(':') == std::string::npos
                                                                            ? std::string()
                                                                            : c.on_failure->substr(c.on_failure->find(':') + 1))}}
                                   : json::object()}};
    if (c.events.size() < 3) {
        json names = json::array();
        for (auto op : c.events)
            names.push_back(op == RowOperation::insert ? "INSERT" : op == RowOperation::update ? "MODIFY" : "REMOVE");
        out["FilterCriteria"] = {{"Filters", {{{"Pattern", json{{"eventName", names}}.dump()}}}}};
    }
    return out;
}

}  // namespace funcd
