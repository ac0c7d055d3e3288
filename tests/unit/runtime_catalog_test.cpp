// Which interpreter runs each runtime identifier, the version reported, what is refused.
#include <gtest/gtest.h>

#include "funcd/pool/runtime_catalog.hpp"

namespace funcd {
namespace {

RuntimeCatalog with_node(const std::string& version, const std::string& path = "/usr/bin/node") {
    return RuntimeCatalog({"/usr/bin/python3", "3.11.2"}, {}, {path, version});
}

TEST(RuntimeCatalog, OlderAndSameMajorsRunOnTheHostsNode) {
    const auto c = with_node("20.20.2");
    for (const char* id : {"nodejs", "nodejs18.x", "nodejs20.x"}) EXPECT_FALSE(c.refusal(id)) << id;
    EXPECT_EQ(c.runtime_version("nodejs18.x"), "nodejs:20.20.2");
    EXPECT_EQ(c.runtime_version("nodejs"), "nodejs:20.20.2");
    EXPECT_EQ(c.node_major(), 20);
    EXPECT_FALSE(c.refusal("python3.12"));
    EXPECT_FALSE(c.refusal("provided.al2023"));
}

TEST(RuntimeCatalog, NewerMajorsAreRefusedNamingTheHostsVersion) {
    const auto c = with_node("20.20.2");
    for (const char* id : {"nodejs22.x", "nodejs24.x"}) {
        auto why = c.refusal(id);
        ASSERT_TRUE(why) << id;
        EXPECT_NE(why->find(std::string("runtime ") + id + " asks for Node.js"), std::string::npos) << *why;
        EXPECT_NE(why->find("this host runs Node.js 20.20.2 (/usr/bin/node)"), std::string::npos) << *why;
    }
    EXPECT_FALSE(with_node("24.1.0").refusal("nodejs24.x"));
}

TEST(RuntimeCatalog, NoUsableNodeRefusesEveryNodeIdentifier) {
    for (const auto& c : {with_node("", ""), with_node("", "/usr/local/bin/node"), with_node("16.20.2")}) {
        for (const char* id : {"nodejs", "nodejs18.x", "nodejs20.x"}) EXPECT_TRUE(c.refusal(id)) << id;
        EXPECT_FALSE(c.refusal("python3"));
    }
    EXPECT_NE(with_node("16.20.2").refusal("nodejs18.x")->find("needs Node.js 18 or later"), std::string::npos);
}

TEST(RuntimeCatalog, DebiansNodeRunsNodejs18) {
    const auto c = with_node("18.19.0");
    EXPECT_FALSE(c.refusal("nodejs"));
    EXPECT_FALSE(c.refusal("nodejs18.x"));
    EXPECT_NE(c.refusal("nodejs20.x")->find("this host runs Node.js 18.19.0"), std::string::npos);
}

TEST(RuntimeCatalog, VersionHashNamesTheInterpreter) {
    EXPECT_NE(with_node("20.20.2").runtime_version_hash("nodejs20.x"),
              with_node("20.20.1").runtime_version_hash("nodejs20.x"));
    EXPECT_NE(with_node("20.20.2").runtime_version_hash("nodejs20.x"),
              with_node("20.20.2", "/opt/node/bin/node").runtime_version_hash("nodejs20.x"));
    EXPECT_EQ(with_node("20.20.2").runtime_version_hash("nodejs18.x"),
              with_node("20.20.2").runtime_version_hash("nodejs20.x"));
    EXPECT_EQ(with_node("20.20.2").runtime_version("python3.11"), "python:3.11.2");
}

}  // namespace
TEST(RuntimeCatalog, OnlyModulesTheDaemonAllowsMayBePreloaded) {
    RuntimeCatalog c = with_node("20.1.0");
    EXPECT_FALSE(c.preload_refusal({}));
    auto why = c.preload_refusal({"numpy"});
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("'numpy'"), std::string::npos) << *why;
    EXPECT_NE(why->find("--preload-modules"), std::string::npos) << *why;
    c.allow_preload({"numpy", "PIL.Image"});
    EXPECT_FALSE(c.preload_refusal({"PIL.Image", "numpy"}));
    why = c.preload_refusal({"numpy", "PIL"});
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("'PIL'"), std::string::npos) << *why;
}

}  // namespace funcd
