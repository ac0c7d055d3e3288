// `funcd serve`'s --node-id and --advertise-url (GET /v1/cluster), and their environment.
#include <stdlib.h>

#include <stdexcept>

#include <gtest/gtest.h>

#include "funcd/daemon/options.hpp"
#include "serve_options_error.hpp"

namespace funcd {
namespace {

using testing::serve_options_error;

TEST(NodeOptions, UnsetByDefaultSoTheDaemonNamesTheNodeAfterItsHost) {
    const auto o = parse_serve_options({});
    EXPECT_TRUE(o.node_id.empty());
    EXPECT_TRUE(o.advertise_url.empty());
}

TEST(NodeOptions, AnIdIsAHostLikeNameAndAUrlIsHttpWithAHost) {
    const auto o = parse_serve_options({"--node-id", "edge-2.eu_west", "--advertise-url=https://10.0.0.2:8443"});
    EXPECT_EQ(o.node_id, "edge-2.eu_west");
    EXPECT_EQ(o.advertise_url, "https://10.0.0.2:8443");
    EXPECT_EQ(parse_serve_options({"--advertise-url", "http://[fd00::2]:8080"}).advertise_url, "http://[fd00::2]:8080");
    const std::string too_long(65, 'a');
    for (const std::string& bad : {std::string(), std::string("two words"), std::string("slash/y"),
                                   std::string("n\xc3\xa9"), too_long}) {
        const std::string error = serve_options_error({"--node-id", bad});
        EXPECT_NE(error.find("--node-id must be 1 to 64 letters"), std::string::npos) << bad << ": " << error;
    }
    for (const char* bad : {"ftp://x", "node-2:8080", "http://", "/relative", "http//x"}) {
        const std::string error = serve_options_error({"--advertise-url", bad});
        EXPECT_NE(error.find("--advertise-url must be an http:// or https:// URL with a host"), std::string::npos)
            << bad << ": " << error;
    }
}

TEST(NodeOptions, TheEnvironmentSetsBothAndFlagsWin) {
    ::setenv("FUNCD_NODE_ID", "from-env", 1);
    ::setenv("FUNCD_ADVERTISE_URL", "http://from-env:8080", 1);
    const auto env = parse_serve_options({});
    const auto flags = parse_serve_options({"--node-id", "from-flag"});
    const std::string bad = serve_options_error({});
    ::setenv("FUNCD_NODE_ID", "not ok", 1);
    const std::string bad_env = serve_options_error({});
    ::unsetenv("FUNCD_NODE_ID");
    ::unsetenv("FUNCD_ADVERTISE_URL");
    EXPECT_EQ(env.node_id, "from-env");
    EXPECT_EQ(env.advertise_url, "http://from-env:8080");
    EXPECT_EQ(flags.node_id, "from-flag");
    EXPECT_EQ(bad, "");
    EXPECT_NE(bad_env.find("FUNCD_NODE_ID must be"), std::string::npos) << bad_env;
}

}  // namespace
}  // namespace funcd
