#include "funcd/metering/pricing.hpp"

#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace funcd {
namespace {

// 1 / 1,024,000 = 1 / (2^13 * 5^3) = 5^10 / 10^13: dividing by the MB-ms in a GB-second
// is multiplying by 5^10 and moving the point 13 places, so it stays exact in decimal.
constexpr DecimalUnits kGbSecondFactor = 9'765'625;  // 5^10
constexpr int kGbSecondDecimals = 13;

DecimalUnits pow10(int n) {
    DecimalUnits v = 1;
    for (int i = 0; i < n; ++i) v *= 10;
    return v;
}

DecimalUnits checked_mul(DecimalUnits a, DecimalUnits b) {
    DecimalUnits out = 0;
    if (__builtin_mul_overflow(a, b, &out)) throw std::overflow_error("cost out of the exact range");
    return out;
}

DecimalUnits checked_add(DecimalUnits a, DecimalUnits b) {
    DecimalUnits out = 0;
    if (__builtin_add_overflow(a, b, &out)) throw std::overflow_error("cost out of the exact range");
    return out;
}

DecimalUnits non_negative(std::int64_t v) { return v < 0 ? 0 : static_cast<DecimalUnits>(v); }

}  // namespace

std::int64_t parse_decimal(std::string_view text, int decimals) {
    const auto fail = [&](std::string_view why) {
        return std::invalid_argument(fmt::format("'{}' {}", text, why));
    };
    const auto point = text.find('.');
    const std::string_view whole = text.substr(0, point);
    const std::string_view fraction = point == std::string_view::npos ? std::string_view() : text.substr(point + 1);
    const auto digits = [](std::string_view s) {
        for (char c : s)
            if (c < '0' || c > '9') return false;
        return true;
    };
    // "1.", ".5", "-1", "1e-5", "0x10", " 1": only plain digits with an optional fraction.
    if (whole.empty() || !digits(whole) || !digits(fraction) || (point != std::string_view::npos && fraction.empty()))
        throw fail("is not a non-negative decimal number such as 0.0000166667");
    if (fraction.size() > static_cast<std::size_t>(decimals))
        throw fail(fmt::format("has more than {} digits after the decimal point", decimals));
    constexpr auto kMax = static_cast<DecimalUnits>(std::numeric_limits<std::int64_t>::max());
    DecimalUnits v = 0;
    for (char c : whole) {
        v = v * 10 + static_cast<unsigned>(c - '0');
        if (v > kMax) throw fail("is too large");
    }
    for (int i = 0; i < decimals; ++i) {
        v = v * 10 + (static_cast<std::size_t>(i) < fraction.size() ? static_cast<unsigned>(fraction[i] - '0') : 0);
        if (v > kMax) throw fail("is too large");
    }
    return static_cast<std::int64_t>(v);
}

std::string format_decimal(DecimalUnits units, int decimals) {
    // Digits of `units`, least significant first.
    std::string reversed;
    do {
        reversed.push_back(static_cast<char>('0' + static_cast<int>(units % 10)));
        units /= 10;
    } while (units != 0);
    while (reversed.size() <= static_cast<std::size_t>(decimals)) reversed.push_back('0');  // a leading "0."
    std::string out(reversed.rbegin(), reversed.rend());
    if (decimals == 0) return out;
    out.insert(out.size() - static_cast<std::size_t>(decimals), 1, '.');
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
    return out;
}

std::int64_t mb_ms(std::int64_t billed_ms, int memory_mb) { return billed_ms * static_cast<std::int64_t>(memory_mb); }

std::string gb_seconds_text(std::int64_t mb_ms) {
    return format_decimal(non_negative(mb_ms) * kGbSecondFactor, kGbSecondDecimals);
}

std::string cost_usd_text(std::int64_t mb_ms, std::int64_t invocations, const Prices& prices) {
    // In units of 10^-(15 + 13) dollars: the GB-seconds' 13 decimals times the price's 15.
    const DecimalUnits compute =
        checked_mul(checked_mul(non_negative(mb_ms), kGbSecondFactor), non_negative(prices.per_gb_second));
    const DecimalUnits requests =
        checked_mul(checked_mul(non_negative(invocations), non_negative(prices.per_request)), pow10(kGbSecondDecimals));
    return format_decimal(checked_add(compute, requests), kPriceDecimals + kGbSecondDecimals);
}

}  // namespace funcd
