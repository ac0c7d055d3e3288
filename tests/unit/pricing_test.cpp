// Exact billing arithmetic: prices parsed from decimal text, costs printed as decimal text.
#include <limits>
#include <stdexcept>

#include <gtest/gtest.h>

#include "funcd/metering/pricing.hpp"

namespace funcd {
namespace {

TEST(Pricing, DefaultsAreLambdasListPricesExactly) {
    const Prices p;
    EXPECT_EQ(format_decimal(p.per_gb_second, kPriceDecimals), "0.0000166667");
    EXPECT_EQ(format_decimal(p.per_request, kPriceDecimals), "0.0000002");
    EXPECT_EQ(parse_decimal("0.0000166667", kPriceDecimals), p.per_gb_second);
    EXPECT_EQ(parse_decimal("0.20", kPerMillionDecimals), p.per_request);
}

TEST(Pricing, ParsesDecimalTextWithoutRounding) {
    EXPECT_EQ(parse_decimal("0", 4), 0);
    EXPECT_EQ(parse_decimal("12", 0), 12);
    EXPECT_EQ(parse_decimal("1.5", 2), 150);
    EXPECT_EQ(parse_decimal("0.0000133334", kPriceDecimals), 13'333'400'000);  // Lambda Arm
    // 0.1 + 0.2 is 0.30000000000000004 in binary; here it is three tenths.
    EXPECT_EQ(parse_decimal("0.1", 1) + parse_decimal("0.2", 1), parse_decimal("0.3", 1));
    EXPECT_EQ(parse_decimal("0.000000000000001", kPriceDecimals), 1);
    EXPECT_EQ(parse_decimal("9223.372036854775807", kPriceDecimals), std::numeric_limits<std::int64_t>::max());
}

TEST(Pricing, RejectsWhatIsNotAnExactNonNegativeDecimal) {
    for (const char* bad : {"", "-1", "+1", "1e-5", "0x10", " 1", "1 ", "1.", ".5", "1.2.3", "abc", "nan", "inf",
                            "0,5"})
        EXPECT_THROW(parse_decimal(bad, kPriceDecimals), std::invalid_argument) << bad;
    // A sixteenth decimal would be silently rounded: refused instead, with the reason.
    try {
        parse_decimal("0.0000000000000001", kPriceDecimals);
        FAIL() << "accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("more than 15 digits"), std::string::npos) << e.what();
    }
    EXPECT_THROW(parse_decimal("9223.372036854775808", kPriceDecimals), std::invalid_argument);
    EXPECT_THROW(parse_decimal("99999999999999999999999", 0), std::invalid_argument);
}

TEST(Pricing, FormatsTheShortestExactDecimal) {
    EXPECT_EQ(format_decimal(0, 0), "0");
    EXPECT_EQ(format_decimal(0, 15), "0");
    EXPECT_EQ(format_decimal(5, 0), "5");
    EXPECT_EQ(format_decimal(5, 1), "0.5");
    EXPECT_EQ(format_decimal(1500, 3), "1.5");
    EXPECT_EQ(format_decimal(1000, 3), "1");
    EXPECT_EQ(format_decimal(1, 28), "0.0000000000000000000000000001");
    EXPECT_EQ(format_decimal(static_cast<DecimalUnits>(1) << 100, 0), "1267650600228229401496703205376");
}

TEST(Pricing, GbSecondsAreExact) {
    EXPECT_EQ(mb_ms(100, 512), 51'200);
    EXPECT_EQ(gb_seconds_text(mb_ms(100, 512)), "0.05");
    EXPECT_EQ(gb_seconds_text(mb_ms(1000, 1024)), "1");
    EXPECT_EQ(gb_seconds_text(mb_ms(1, 128)), "0.000125");
    // One millisecond at 1 MB: 1 / 1,024,000 GB-s, which has no short binary form.
    EXPECT_EQ(gb_seconds_text(1), "0.0000009765625");
    EXPECT_EQ(gb_seconds_text(0), "0");
}

TEST(Pricing, CostIsExactWhereDoublesWereNot) {
    const Prices p;
    // One request, nothing billed: the double arithmetic printed 2.0000000000000002e-07.
    EXPECT_EQ(cost_usd_text(0, 1, p), "0.0000002");
    // 2 invocations, 4 ms at 128 MB: 0.0005 GB-s * 0.0000166667 + 2 * 0.0000002
    // (the double arithmetic printed 4.0833335000000003e-07).
    EXPECT_EQ(cost_usd_text(mb_ms(4, 128), 2, p), "0.00000040833335");
    // 1000 invocations of 100 ms at 512 MB: 50 GB-s.
    EXPECT_EQ(cost_usd_text(1000 * mb_ms(100, 512), 1000, p), "0.001033335");
    // A sum is the sum: ten thousand single-request costs add up to exactly 0.002.
    EXPECT_EQ(cost_usd_text(0, 10'000, p), "0.002");
    EXPECT_EQ(cost_usd_text(2 * kMbMsPerGbSecond, 10, Prices{.per_gb_second = parse_decimal("1", kPriceDecimals),
                                                           .per_request = parse_decimal("0.5", kPriceDecimals)}),
              "7");
    // A month of a 10 GB function busy around the clock: no overflow, still exact.
    const std::int64_t month = mb_ms(30LL * 24 * 3600 * 1000, 10'240);
    EXPECT_EQ(gb_seconds_text(month), "25920000");
    EXPECT_EQ(cost_usd_text(month, 0, p), "432.000864");
}

}  // namespace
}  // namespace funcd
