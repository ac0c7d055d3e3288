#pragma once
// One row change read from a database's change stream (PostgreSQL logical replication),
// typed and in commit order: what an event source mapping batches into its function's
// events. Neutral about the source's wire format (the decoder makes these) and about the
// event's shape (the mapping builds its Records from these).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace funcd {

enum class RowOperation { insert, update, remove };

// Where a change stands in the stream. Changes are delivered transaction by transaction in
// commit order, so a change is placed by its transaction's commit position and its index
// inside that transaction; a change's own WAL position is unique but not ordered across
// interleaved transactions.
struct ChangePosition {
    std::uint64_t commit_lsn = 0;  // the end of the change's transaction (pgoutput's commit "end LSN")
    std::uint32_t ordinal = 0;     // 0-based index of the change inside its transaction

    friend auto operator<=>(const ChangePosition&, const ChangePosition&) = default;
};

struct RowChange {
    std::string table;  // "schema.name"
    RowOperation operation = RowOperation::insert;
    std::uint64_t lsn = 0;  // the change's own WAL position: its SequenceNumber, unique
    ChangePosition position;
    bool last_in_transaction = false;  // acknowledging up to position.commit_lsn is safe after it
    std::uint32_t xid = 0;
    std::chrono::system_clock::time_point commit_time;
    nlohmann::json keys = nlohmann::json::object();  // replica identity columns -> typed values
    nlohmann::json new_image;                        // object; null for a delete
    nlohmann::json old_image;                        // object when the table gives it, else null
};

// "16/B374D848", as PostgreSQL writes an LSN.
std::string format_lsn(std::uint64_t lsn);
// Reads that form back; nullopt-like failure is reported by returning false.
bool parse_lsn(std::string_view text, std::uint64_t& lsn);

}  // namespace funcd
