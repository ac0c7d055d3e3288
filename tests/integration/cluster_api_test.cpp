// GET /v1/cluster through the real daemon: on a single host, the one node, named and
// reachable as its flags say, alive, reporting the workers it runs with its heartbeats.
#include <gtest/gtest.h>

#include <unistd.h>

#include <future>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const char* kClusterNapPy = R"(import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
)";

TEST(ClusterApi, ASingleHostIsOneNodeNamedAndReachableAsItsFlagsSay) {
    Daemon d({"--node-id", "node-7", "--advertise-url", "http://node-7.internal:8080"});
    auto r = d.api("GET", "/v1/cluster");
    ASSERT_EQ(r.status, 200) << r.body;
    json doc = r.json();
    EXPECT_EQ(doc["node"], "node-7");
    ASSERT_EQ(doc["nodes"].size(), 1u) << doc.dump();
    const json& n = doc["nodes"][0];
    EXPECT_EQ(n["id"], "node-7");
    EXPECT_EQ(n["advertise_url"], "http://node-7.internal:8080");
    EXPECT_EQ(n["state"], "alive");
    EXPECT_EQ(n["self"], true);
    EXPECT_LT(n["heartbeat_age_s"].get<double>(), 15.0);
    EXPECT_EQ(n["load"]["workers"], 0);
    EXPECT_FALSE(n["version"].get<std::string>().empty());

    // A worker kept busy is in the load of a later heartbeat (one every 5 s).
    ASSERT_EQ(d.deploy("nap", python_settings({{"timeout_s", 30}}), python_zip(kClusterNapPy)).status, 201);
    auto busy = std::async(std::launch::async, [&] { return d.invoke("nap", R"({"sleep": 8})"); });
    EXPECT_TRUE(eventually(
        [&] {
            const json now = d.api("GET", "/v1/cluster").json();
            return now["nodes"][0]["load"]["workers"].get<int>() >= 1 && now["nodes"][0]["load"]["running"].get<int>() >= 1;
        },
        12s))
        << d.api("GET", "/v1/cluster").body;
    EXPECT_EQ(busy.get().status, 200);
}

TEST(ClusterApi, ByDefaultTheNodeIsTheHostNamedAtItsListenAddress) {
    Daemon d;
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    const json n = d.api("GET", "/v1/cluster").json()["nodes"][0];
    EXPECT_EQ(n["id"], host);
    EXPECT_EQ(n["advertise_url"], "http://127.0.0.1:" + std::to_string(d.port()));
    // The API's rules: a token, and GET only.
    EXPECT_EQ(http_request(d.port(), "GET", "/v1/cluster").status, 401);
    EXPECT_EQ(d.api("DELETE", "/v1/cluster").status, 405);
}

}  // namespace
}  // namespace funcd::testing
