#pragma once
// Lambda's EventSourceMapping shapes for funcd's PostgreSQL mappings, as botocore's model
// lets a boto3 user send them (botocore checks types and required members, not enums or
// patterns):
//   SelfManagedEventSource {"Endpoints": {"POSTGRESQL": ["<libpq connection string or URI>"]}}
//   SourceAccessConfigurations [{"Type": "BASIC_AUTH", "URI": "<user>:<password>"}] (optional;
//     Lambda's URI names a Secrets Manager secret, funcd has none, so it carries them itself)
//   Topics ["schema.table", ...]  (the tables)
//   FilterCriteria {"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\", \"MODIFY\"]}"}]}
//     (the events; DynamoDB Streams' way to filter by event name, the only filter funcd has)
//   BatchSize, MaximumBatchingWindowInSeconds, StartingPosition, MaximumRetryAttempts,
//   MaximumRecordAgeInSeconds, BisectBatchOnFunctionError, FunctionResponseTypes,
//   DestinationConfig.OnFailure.Destination (a function ARN), Enabled.
// docs/event-sources.md shows a call.
#include <string>

#include <nlohmann/json.hpp>

#include "funcd/event_sources/event_source_mappings.hpp"
#include "funcd/lambda_api/lambda_shapes.hpp"

namespace funcd {

// The Endpoints key of a PostgreSQL source.
inline constexpr std::string_view kPostgresEndpointKey = "POSTGRESQL";

// A CreateEventSourceMapping (existing == null) or UpdateEventSourceMapping body onto a
// mapping's settings. `function`: the name FunctionName resolved to. Throws LambdaError
// (400 "Unrecognized event source." for any source but a PostgreSQL one).
MappingConfig mapping_from_lambda(const nlohmann::json& body, const std::string& function,
                                  const MappingConfig* existing);

// EventSourceMappingConfiguration (the connection redacted, no credentials).
nlohmann::json lambda_mapping_configuration(const MappingView& v, const ArnScope& scope, const std::string& arn);

}  // namespace funcd
