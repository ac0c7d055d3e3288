// The event sources' bounds in DaemonLimits, settable with `--limit` as every other limit.
#include <gtest/gtest.h>

#include "funcd/daemon/daemon_limits.hpp"
#include "funcd/daemon/options.hpp"

namespace funcd {
namespace {

TEST(EventSourceLimits, AreSettableAndListed) {
    const auto o = parse_serve_options({"--limit", "event_sources.max_buffered_changes=5", "--limit",
                                        "event_sources.max_buffered_bytes=4096", "--limit",
                                        "event_sources.max_transaction_bytes=8192"});
    EXPECT_EQ(o.limits.event_sources.max_buffered_changes, 5u);
    EXPECT_EQ(o.limits.event_sources.max_buffered_bytes, 4096u);
    EXPECT_EQ(o.limits.event_sources.max_transaction_bytes, 8192u);

    const auto described = describe_limits(DaemonLimits{});
    int found = 0;
    for (const auto& l : described) {
        if (l.name == "event_sources.max_buffered_changes") {
            EXPECT_EQ(l.value, 10'000);
            ++found;
        }
        if (l.name == "event_sources.max_buffered_bytes") {
            EXPECT_EQ(l.value, 64 * 1024 * 1024);
            ++found;
        }
        if (l.name == "event_sources.max_transaction_bytes") {
            EXPECT_EQ(l.value, 256 * 1024 * 1024);
            ++found;
        }
    }
    EXPECT_EQ(found, 3);
}

}  // namespace
}  // namespace funcd
