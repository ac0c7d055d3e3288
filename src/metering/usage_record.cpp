#include "funcd/metering/usage_record.hpp"

#include <algorithm>

namespace funcd {

std::string_view to_string(Outcome o) {
    switch (o) {
        case Outcome::success: return "success";
        case Outcome::function_error: return "function_error";
        case Outcome::timeout: return "timeout";
        case Outcome::exit_error: return "exit_error";
        case Outcome::init_error: return "init_error";
        case Outcome::throttled: return "throttled";
    }
    return "unknown";
}

std::optional<Outcome> parse_outcome(std::string_view text) {
    for (Outcome o : {Outcome::success, Outcome::function_error, Outcome::timeout, Outcome::exit_error,
                      Outcome::init_error, Outcome::throttled})
        if (to_string(o) == text) return o;
    return std::nullopt;
}

std::int64_t billed_ms_for(std::int64_t duration_us) {
    // Rounding up in integers; a negative duration (clock oddity) still bills the minimum.
    return std::max<std::int64_t>(1, (duration_us + 999) / 1000);
}

}  // namespace funcd
