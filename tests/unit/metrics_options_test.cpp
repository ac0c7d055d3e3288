// `funcd serve`'s metrics flags and the metrics listener's limits.
#include <stdexcept>

#include <gtest/gtest.h>

#include "funcd/daemon/daemon_limits.hpp"
#include "funcd/daemon/options.hpp"
#include "serve_options_error.hpp"

namespace funcd {
namespace {

using testing::serve_options_error;

TEST(MetricsOptions, OnByDefaultWithoutASeparateListener) {
    const auto o = parse_serve_options({});
    EXPECT_TRUE(o.metrics);
    EXPECT_FALSE(o.metrics_listen_host);
}

TEST(MetricsOptions, TheListenerTakesHostAndPortAsListenDoes) {
    const auto o = parse_serve_options({"--metrics-listen", "0.0.0.0:9464"});
    ASSERT_TRUE(o.metrics_listen_host);
    EXPECT_EQ(*o.metrics_listen_host, "0.0.0.0");
    EXPECT_EQ(o.metrics_listen_port, 9464);
    const auto v6 = parse_serve_options({"--metrics-listen=[::1]:9464"});
    EXPECT_EQ(*v6.metrics_listen_host, "::1");
    EXPECT_EQ(serve_options_error({"--metrics-listen", "9464"}), "--metrics-listen wants HOST:PORT, got '9464'");
    EXPECT_EQ(serve_options_error({"--metrics-listen", "h:99999"}), "--metrics-listen: '99999' is not a port number");
    EXPECT_EQ(serve_options_error({"--listen", "h:x"}), "--listen: 'x' is not a port number");
}

TEST(MetricsOptions, OffCannotBeServedOnAListener) {
    EXPECT_FALSE(parse_serve_options({"--metrics", "off"}).metrics);
    EXPECT_EQ(serve_options_error({"--metrics", "maybe"}), "--metrics wants on or off, got 'maybe'");
    EXPECT_NE(serve_options_error({"--metrics", "off", "--metrics-listen", "127.0.0.1:9464"}).find("--metrics off"),
              std::string::npos);
}

TEST(MetricsOptions, TheListenersLimitsAreSettableAndSmallerThanTheApis) {
    const DaemonLimits defaults;
    EXPECT_LT(defaults.metrics.max_connections, defaults.gateway.max_connections);
    const auto o = parse_serve_options({"--limit", "metrics.max_connections=4", "--limit", "metrics.head_timeout_ms=250"});
    EXPECT_EQ(o.limits.metrics.max_connections, 4u);
    EXPECT_EQ(o.limits.metrics.head_timeout.count(), 250);
    EXPECT_EQ(o.limits.gateway.max_connections, defaults.gateway.max_connections) << "the API's stay as they were";
    EXPECT_NE(serve_usage().find("--metrics-listen HOST:PORT"), std::string::npos);
    EXPECT_NE(serve_usage().find("metrics.max_connections"), std::string::npos);
}

}  // namespace
}  // namespace funcd
