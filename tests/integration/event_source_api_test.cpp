// Event source mappings through the real daemon, against no PostgreSQL: a valid mapping
// whose server cannot be reached is refused 400 naming that, bad ones 400 naming the field,
// unknown ones 404; the connection's password appears in no answer and not in the daemon's
// log. (Mappings that work are tested against a real server: postgres_mapping_test.cpp.)
#include <gtest/gtest.h>

#include "daemon_harness.hpp"

namespace funcd::testing {
namespace {

using nlohmann::json;

TEST(EventSourceApi, MappingsThatCannotWorkAreRefusedClearly) {
    Daemon d;
    ASSERT_EQ(d.deploy("orders", {{"runtime", "python3"}, {"handler", "app.handler"}},
                       python_zip("def handler(e, c):\n    return 1\n"))
                  .status,
              201);
    const json body{{"type", "postgres"},
                    // Port 1: nothing listens there, so the connection is refused at once.
                    {"connection", "host=127.0.0.1 port=1 dbname=shop user=app password=hunter2-secret connect_timeout=5"},
                    {"tables", {"public.orders"}}};
    const std::string path = "/v1/functions/orders/event-sources/orders";

    const HttpResult refused = d.api("PUT", path, body.dump());
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_EQ(refused.json()["error"]["type"], "InvalidParameterValueException");
    EXPECT_NE(refused.json()["error"]["message"].get<std::string>().find("PostgreSQL"), std::string::npos)
        << refused.body;

    json bad = body;
    bad["batch_size"] = 20000;
    const HttpResult invalid = d.api("PUT", path, bad.dump());
    EXPECT_EQ(invalid.status, 400) << invalid.body;
    EXPECT_NE(invalid.body.find("batch_size"), std::string::npos) << invalid.body;
    bad = body;
    bad["tabels"] = {"public.orders"};
    EXPECT_EQ(d.api("PUT", path, bad.dump()).status, 400);

    EXPECT_EQ(d.api("GET", path).status, 404);
    EXPECT_EQ(d.api("PUT", "/v1/functions/nobody/event-sources/orders", body.dump()).status, 404);
    const HttpResult list = d.api("GET", "/v1/functions/orders/event-sources");
    ASSERT_EQ(list.status, 200) << list.body;
    EXPECT_EQ(list.json()["event_sources"], json::array());

    for (const HttpResult* r : {&refused, &invalid}) EXPECT_EQ(r->body.find("hunter2"), std::string::npos) << r->body;
    EXPECT_EQ(d.log().find("hunter2"), std::string::npos) << "the password is never logged";
}

}  // namespace
}  // namespace funcd::testing
