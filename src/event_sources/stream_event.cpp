#include "funcd/event_sources/stream_event.hpp"

#include <chrono>

#include "funcd/common/json_text.hpp"

namespace funcd {

using nlohmann::json;

std::string sequence_number(const RowChange& change) { return format_lsn(change.lsn); }

std::string_view stream_event_name(RowOperation op) {
    switch (op) {
        case RowOperation::insert: return "INSERT";
        case RowOperation::update: return "MODIFY";
        case RowOperation::remove: return "REMOVE";
    }
    return "INSERT";
}

std::string stream_event_id(const RowChange& change) {
    return format_lsn(change.position.commit_lsn) + "/" + std::to_string(change.position.ordinal);
}

json stream_record(const RowChange& change, const StreamEventContext& context) {
    json dynamodb{
        {"ApproximateCreationDateTime",
         std::chrono::duration_cast<std::chrono::seconds>(change.commit_time.time_since_epoch()).count()},
        {"Keys", change.keys},
        {"SequenceNumber", sequence_number(change)},
        {"StreamViewType", kStreamViewType}};
    // As DynamoDB does: an image is present only when there is one (no NewImage for a
    // delete, no OldImage for an insert or when the table's replica identity gives none).
    if (change.new_image.is_object()) dynamodb["NewImage"] = change.new_image;
    if (change.old_image.is_object()) dynamodb["OldImage"] = change.old_image;
    // DynamoDB counts the item's bytes; here the serialized keys and images.
    dynamodb["SizeBytes"] = json_text(change.keys).size() +
                            (change.new_image.is_object() ? json_text(change.new_image).size() : 0) +
                            (change.old_image.is_object() ? json_text(change.old_image).size() : 0);
    return {{"eventID", stream_event_id(change)},
            {"eventName", stream_event_name(change.operation)},
            {"eventVersion", kStreamEventVersion},
            {"eventSource", kStreamEventSource},
            {"awsRegion", context.region},
            {"eventSourceARN", context.event_source_arn},
            {"dynamodb", std::move(dynamodb)},
            {"table", change.table},
            {"transactionId", change.xid},
            {"commitLsn", format_lsn(change.position.commit_lsn)}};
}

std::size_t stream_record_bytes(const json& record) { return json_text(record).size() + 1; }

std::string stream_event(const std::vector<const json*>& records) {
    std::string out = "{\"Records\":[";
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (i) out += ',';
        out += json_text(*records[i]);
    }
    out += "]}";
    return out;
}

}  // namespace funcd
