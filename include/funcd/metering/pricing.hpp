#pragma once
// Prices and costs in exact decimal arithmetic.
//
// Why no floating point: a bill must add up to the cent however many invocations it sums,
// and a price given as 0.0000166667 must be that price, not the nearest binary fraction
// (which printed costs such as 2.0000000000000002e-07). Prices are integers of a fixed
// decimal unit, parsed from the decimal text without going through a double; memory-time
// is an integer of MB-milliseconds; a cost is computed as one exact integer and printed as
// a decimal string.
#include <cstdint>
#include <string>
#include <string_view>

namespace funcd {

// Prices count 10^-15 dollars: Lambda's 0.0000166667 USD per GB-second is 16,666,700,000
// of them and its 0.20 USD per million requests 200,000,000 per request, so any price
// with up to 15 decimals (9 for a price per million requests) is held exactly, and the
// largest, about 9,223 USD, is far above any real price.
inline constexpr int kPriceDecimals = 15;
// A price per million requests in the same unit per request: 10^-9 dollars per million.
inline constexpr int kPerMillionDecimals = kPriceDecimals - 6;

struct Prices {
    std::int64_t per_gb_second = 16'666'700'000;  // 0.0000166667 USD, Lambda x86 (us-east-1)
    std::int64_t per_request = 200'000'000;       // 0.0000002 USD: 0.20 per million
};

// Parses a non-negative decimal ("0.0000166667", "12", "1.5") into units of
// 10^-decimals, exactly. Throws std::invalid_argument naming what is wrong (not a
// decimal, more than `decimals` digits after the point, too large).
std::int64_t parse_decimal(std::string_view text, int decimals);

// `units` of 10^-decimals as the shortest exact decimal: (16666700000, 15) -> "0.0000166667",
// (5, 0) -> "5", (0, 4) -> "0". `units` is at most 2^127.
__extension__ typedef unsigned __int128 DecimalUnits;
std::string format_decimal(DecimalUnits units, int decimals);

// Memory-time of one invocation in MB-milliseconds: billed_ms * memory_mb. One GB-second
// (1024 MB for 1000 ms) is kMbMsPerGbSecond of them.
inline constexpr std::int64_t kMbMsPerGbSecond = 1024 * 1000;
std::int64_t mb_ms(std::int64_t billed_ms, int memory_mb);

// mb_ms / 1,024,000 exactly, as a decimal string ("0.0005" for 4 ms at 128 MB).
std::string gb_seconds_text(std::int64_t mb_ms);

// Exact dollars, as a decimal string: mb_ms / 1,024,000 * per_gb_second + invocations * per_request.
// Throws std::overflow_error beyond 2^127 of its unit (10^-28 USD; about 10^10 dollars).
std::string cost_usd_text(std::int64_t mb_ms, std::int64_t invocations, const Prices& prices);

}  // namespace funcd
