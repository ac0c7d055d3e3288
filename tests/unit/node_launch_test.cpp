// How a Node.js worker is started: heap limits from memory_mb, NODE_PATH, and whether it
// may be forked from a runtime template.
#include <gtest/gtest.h>

#include "funcd/pool/node_launch.hpp"
#include "funcd/sandbox/template_key.hpp"

namespace funcd {
namespace {

using Flags = std::vector<std::string>;

TEST(NodeHeapFlags, FollowMemoryMb) {
    // semi = M/32 within [1, 64]; old = 0.8 M - 3 semi.
    EXPECT_EQ(node_heap_flags(128, {}), (Flags{"--max-old-space-size=90", "--max-semi-space-size=4"}));
    EXPECT_EQ(node_heap_flags(1024, {}), (Flags{"--max-old-space-size=723", "--max-semi-space-size=32"}));
    EXPECT_EQ(node_heap_flags(16, {}), (Flags{"--max-old-space-size=9", "--max-semi-space-size=1"}));
    EXPECT_EQ(node_heap_flags(10240, {}), (Flags{"--max-old-space-size=8000", "--max-semi-space-size=64"}));
}

TEST(NodeHeapFlags, TheFunctionsOwnNodeOptionsWin) {
    for (const char* options : {"--max-old-space-size=512", "--max_old_space_size=512", "--enable-source-maps "
                                "--max-semi-space-size=8", "--max-old-space-size 512"})
        EXPECT_TRUE(node_heap_flags(256, {{"NODE_OPTIONS", options}}).empty()) << options;
    // Other options, or a flag that only starts the same, leave the limits to the launcher.
    for (const char* options : {"--enable-source-maps", "--max-old-space-size-percentage=50", ""})
        EXPECT_EQ(node_heap_flags(256, {{"NODE_OPTIONS", options}}).size(), 2u) << options;
}

TEST(NodePath, LayersFirstThenTheCode) {
    EXPECT_EQ(node_path({}, 20, "", "/var/task"), "/var/task");
    EXPECT_EQ(node_path({}, 20, "/opt", "/var/task"),
              "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:/var/task");
    EXPECT_EQ(node_path({}, std::nullopt, "/opt", "/var/task"), "/opt/nodejs/node_modules:/var/task");
    EXPECT_FALSE(node_path({{"NODE_PATH", "/var/task/lib"}}, 20, "/opt", "/var/task"));
}

TEST(NodeTemplateRefusal, OnlyVariablesNodeReadsAsItStartsKeepAFunctionOffTemplates) {
    EXPECT_FALSE(node_template_refusal({}));
    EXPECT_FALSE(node_template_refusal({{"NODE_PATH", "/var/task/lib"}, {"NODE_ENV", "production"}, {"TZ", "Asia/Tokyo"},
                                        {"SECRET", "x"}, {"UV_THREADPOOL_SIZE", "8"}}));
    for (const char* name : {"NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "NODE_NO_WARNINGS", "LANG", "LC_ALL", "LC_TIME"}) {
        const auto why = node_template_refusal({{"A", "1"}, {name, "x"}});
        ASSERT_TRUE(why) << name;
        EXPECT_NE(why->find(name), std::string::npos) << *why;
    }
}

TEST(TemplateKeyId, NamesTheRuntimeTheInterpreterItsFlagsAndThePreload) {
    EXPECT_EQ((TemplateKey{TemplateRuntime::python, "/usr/bin/python3", {"-I", "-u"}, {}}.id()),
              "python:/usr/bin/python3 -I -u");
    EXPECT_EQ((TemplateKey{TemplateRuntime::python, "/usr/bin/python3", {"-I", "-u"}, {"numpy", "PIL.Image"}}.id()),
              "python:/usr/bin/python3 -I -u+numpy,PIL.Image");
    const TemplateKey small{TemplateRuntime::node, "/usr/bin/node", node_heap_flags(128, {}), {}};
    EXPECT_EQ(small.id(), "node:/usr/bin/node --max-old-space-size=90 --max-semi-space-size=4");
    EXPECT_NE(small, (TemplateKey{TemplateRuntime::node, "/usr/bin/node", node_heap_flags(256, {}), {}}))
        << "another heap size is another template";
}

}  // namespace
}  // namespace funcd
