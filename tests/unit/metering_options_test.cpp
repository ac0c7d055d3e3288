// `funcd serve`'s metering flags: prices parsed exactly, retention, the metering limits.
#include <stdexcept>

#include <gtest/gtest.h>

#include "funcd/daemon/daemon_limits.hpp"
#include "funcd/daemon/options.hpp"
#include "serve_options_error.hpp"

namespace funcd {
namespace {

using testing::serve_options_error;

TEST(MeteringOptions, PricesAreParsedExactly) {
    const auto o = parse_serve_options({"--price-per-gb-second", "0.0000133334", "--price-per-million-requests=0.2"});
    EXPECT_EQ(o.prices.per_gb_second, 13'333'400'000);
    EXPECT_EQ(o.prices.per_request, 200'000'000);
    EXPECT_EQ(format_decimal(o.prices.per_gb_second, kPriceDecimals), "0.0000133334");
    const auto defaults = parse_serve_options({});
    EXPECT_EQ(defaults.prices.per_gb_second, Prices{}.per_gb_second);
    EXPECT_FALSE(defaults.usage_retention) << "kept forever by default";
}

TEST(MeteringOptions, InexactOrNegativePricesAreRefused) {
    EXPECT_NE(serve_options_error({"--price-per-gb-second", "1.66667e-05"}).find("--price-per-gb-second"), std::string::npos);
    EXPECT_NE(serve_options_error({"--price-per-gb-second", "-1"}).find("non-negative"), std::string::npos);
    EXPECT_NE(serve_options_error({"--price-per-million-requests", "0.0000000001"}).find("more than 9 digits"), std::string::npos)
        << serve_options_error({"--price-per-million-requests", "0.0000000001"});
}

TEST(MeteringOptions, Retention) {
    EXPECT_EQ(parse_serve_options({"--usage-retention-days", "90"}).usage_retention, std::chrono::days(90));
    EXPECT_NE(serve_options_error({"--usage-retention-days", "0"}), "");
    EXPECT_NE(serve_options_error({"--usage-retention-days", "36501"}).find("at most 36500"), std::string::npos);
}

TEST(MeteringOptions, LimitsAreSettable) {
    const auto o = parse_serve_options({"--limit", "metering.storage_timeout_ms=250", "--limit",
                                        "metering.batch_records=500", "--limit", "metering.journal_probe_ms=50",
                                        "--limit", "metering.journal_probe_bytes=4096", "--limit",
                                        "metering.max_pending_records=1000"});
    EXPECT_EQ(o.limits.metering.storage_timeout, std::chrono::milliseconds(250));
    EXPECT_EQ(o.limits.metering.batch_records, 500);
    EXPECT_EQ(o.limits.metering.journal_probe_interval, std::chrono::milliseconds(50));
    EXPECT_EQ(o.limits.metering.journal_probe_bytes, 4096);
    EXPECT_EQ(o.limits.metering.max_pending_records, 1000);
}

}  // namespace
}  // namespace funcd
