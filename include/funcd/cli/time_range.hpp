#pragma once
// --since and --until as users write them: a look-back ("10m", "24h", "7d") or a time as the
// daemon takes it (RFC 3339, or milliseconds since the Unix epoch).
#include <optional>
#include <string>

#include "funcd/common/time_format.hpp"

namespace funcd::cli {

// The time `text` names, relative to `now` for a look-back; nullopt when it is neither a
// look-back nor an RFC 3339 time nor epoch milliseconds.
std::optional<SystemTime> parse_time_arg(const std::string& text, SystemTime now);

}  // namespace funcd::cli
