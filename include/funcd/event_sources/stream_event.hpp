#pragma once
// The event a mapping's function receives: DynamoDB Streams' shape ({"Records": [...]},
// eventName INSERT/MODIFY/REMOVE, a "dynamodb" object with Keys, NewImage, OldImage and
// SequenceNumber), with plain typed JSON values instead of DynamoDB's {"S": ...} attribute
// values, and the table, transaction id and commit LSN beside it (docs/event-sources.md).
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/event_sources/row_change.hpp"

namespace funcd {

// The same for every record of a mapping.
struct StreamEventContext {
    std::string region;
    std::string event_source_arn;  // the mapping's ARN
};

inline constexpr std::string_view kStreamEventSource = "funcd:postgres";
inline constexpr std::string_view kStreamEventVersion = "1.1";
inline constexpr std::string_view kStreamViewType = "NEW_AND_OLD_IMAGES";

// The change's SequenceNumber, and the itemIdentifier a function names it by in
// batchItemFailures: its own LSN in PostgreSQL's form ("16/B374D848").
std::string sequence_number(const RowChange& change);
// INSERT, MODIFY, REMOVE.
std::string_view stream_event_name(RowOperation op);
// Unique and stable across redeliveries of the same change: "<commit LSN>/<ordinal>".
std::string stream_event_id(const RowChange& change);

nlohmann::json stream_record(const RowChange& change, const StreamEventContext& context);
// {"Records": records}, serialized.
std::string stream_event(const std::vector<const nlohmann::json*>& records);
// Bytes one record adds to the serialized event (its text and the separating comma).
std::size_t stream_record_bytes(const nlohmann::json& record);
// Bytes of an event without records: {"Records":[]}.
inline constexpr std::size_t kStreamEventOverheadBytes = 14;

}  // namespace funcd
