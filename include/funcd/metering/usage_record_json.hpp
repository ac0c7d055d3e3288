#pragma once
// A usage record as JSON: the API's document and the journal's line, which are the same.
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json_fwd.hpp>

#include "funcd/metering/usage_record.hpp"

namespace funcd {

nlohmann::json to_json(const UsageRecord& r);
std::optional<UsageRecord> usage_record_from_json(const nlohmann::json& j);

// Appends the journal line for `r`: to_json(r) as one line of JSON (keys sorted, no
// spaces), with its newline. Written directly rather than through a JSON tree, which cost
// more than everything else on the record path together.
void append_journal_line(const UsageRecord& r, fmt::memory_buffer& out);

}  // namespace funcd
