// Trace ids: X-Amzn-Trace-Id and W3C traceparent read and validated, new ids in AWS's form.
#include <chrono>
#include <regex>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "funcd/common/trace_id.hpp"

namespace funcd {
namespace {

const std::regex kNewId("Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0");

TEST(TraceId, AmznHeaderIsKeptWithItsFields) {
    EXPECT_EQ(parse_amzn_trace_header("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
              "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
    // Root alone, Root not first, spaces around fields, a trailing ';', fields load balancers add.
    EXPECT_EQ(parse_amzn_trace_header("Root=1-5759e988-bd862e3fe1be46a994272793"),
              "Root=1-5759e988-bd862e3fe1be46a994272793");
    EXPECT_EQ(parse_amzn_trace_header("Sampled=0; Root=1-5759e988-bd862e3fe1be46a994272793 ;Self=1-67891233-abcdef;"),
              "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0;Self=1-67891233-abcdef");
    EXPECT_EQ(parse_amzn_trace_header("Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=a87bd80c:1|68fd508a:5"),
              "Root=1-5759e988-bd862e3fe1be46a994272793;Lineage=a87bd80c:1|68fd508a:5");
}

TEST(TraceId, MalformedAmznHeadersAreRefused) {
    for (const char* bad : {
             "",                                                          // nothing
             "Parent=53995c3f42cd8ad8;Sampled=1",                         // no Root
             "Root=1-5759e988-bd862e3fe1be46a99427279",                   // Root one digit short
             "Root=1-5759e988-bd862e3fe1be46a9942727933",                 // one too many
             "Root=2-5759e988-bd862e3fe1be46a994272793",                  // unknown version
             "Root=1-5759E988-bd862e3fe1be46a994272793",                  // upper case
             "Root=1-5759e988_bd862e3fe1be46a994272793",                  // separator
             "Root=1-5759e98g-bd862e3fe1be46a994272793",                  // not hex
             "Root=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272794",  // two Roots
             "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f",  // short Parent
             "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=yes",      // Sampled not 0, 1 or ?
             "Root=1-5759e988-bd862e3fe1be46a994272793;junk",             // a field without '='
             "Root=1-5759e988-bd862e3fe1be46a994272793;Self=a b",         // a space inside a value
             "Root=1-5759e988-bd862e3fe1be46a994272793;Self=\"x\"",       // a quote (would need escaping)
             "Root=1-5759e988-bd862e3fe1be46a994272793;Self=\x01",        // a control character
             "Root=1-5759e988-bd862e3fe1be46a994272793\nX-Injected: 1",   // a header injection
         })
        EXPECT_FALSE(parse_amzn_trace_header(bad)) << bad;
    // Unbounded length: refused past kMaxTraceHeaderBytes, even when well formed.
    std::string long_header = "Root=1-5759e988-bd862e3fe1be46a994272793;Self=" + std::string(kMaxTraceHeaderBytes, 'a');
    EXPECT_FALSE(parse_amzn_trace_header(long_header));
    std::string just_fits = "Root=1-5759e988-bd862e3fe1be46a994272793;Self=";
    just_fits += std::string(kMaxTraceHeaderBytes - just_fits.size(), 'a');
    EXPECT_TRUE(parse_amzn_trace_header(just_fits));
}

TEST(TraceId, TraceparentBecomesAnAwsTraceId) {
    EXPECT_EQ(trace_from_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
              "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1");
    EXPECT_EQ(trace_from_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),
              "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=0");
    // A later version's header is read by its version-00 prefix.
    EXPECT_EQ(trace_from_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03-what-comes-next"),
              "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1");
    for (const char* bad : {
             "",
             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",       // no flags
             "00-00000000000000000000000000000000-b7ad6b7169203331-01",   // zero trace id
             "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",   // zero parent id
             "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   // forbidden version
             "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",   // upper case
             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", // version 00 has nothing more
             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",   // flags not hex
         })
        EXPECT_FALSE(trace_from_traceparent(bad)) << bad;
    EXPECT_FALSE(trace_from_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-" +
                                        std::string(kMaxTraceHeaderBytes, 'a')));
}

TEST(TraceId, NewIdsAreInAwsFormWithTheTimeAndDistinct) {
    std::set<std::string> seen;
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    for (int i = 0; i < 1000; ++i) {
        const std::string id = new_trace_id();
        ASSERT_TRUE(std::regex_match(id, kNewId)) << id;
        EXPECT_TRUE(parse_amzn_trace_header(id)) << "a new id must pass its own validation: " << id;
        seen.insert(id);
    }
    EXPECT_EQ(seen.size(), 1000u);
    // The Root's second part is the time, in Unix seconds (X-Ray rejects ids too far from now).
    const std::string id = new_trace_id();
    const long long secs = std::stoll(id.substr(7, 8), nullptr, 16);
    EXPECT_LE(std::llabs(secs - now), 5);
}

TEST(TraceId, TheCallersHeaderElseTraceparentElseNew) {
    const std::string amzn = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const std::string w3c = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    EXPECT_EQ(trace_id_for(amzn, w3c), amzn);
    EXPECT_EQ(trace_id_for("", w3c), "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1");
    EXPECT_EQ(trace_id_for("garbage", w3c), "Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=b7ad6b7169203331;Sampled=1");
    EXPECT_TRUE(std::regex_match(trace_id_for("", ""), kNewId));
    EXPECT_TRUE(std::regex_match(trace_id_for("Root=bad", "00-bad"), kNewId));
    EXPECT_TRUE(std::regex_match(trace_id_for(std::string(100000, 'R'), ""), kNewId));
}

TEST(TraceId, RootIsFoundWhereverItIs) {
    EXPECT_EQ(trace_root("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
              "1-5759e988-bd862e3fe1be46a994272793");
    EXPECT_EQ(trace_root("Sampled=1;Root=1-5759e988-bd862e3fe1be46a994272793"), "1-5759e988-bd862e3fe1be46a994272793");
    EXPECT_EQ(trace_root("Parent=53995c3f42cd8ad8"), "");
    EXPECT_EQ(trace_root(""), "");
}

}  // namespace
}  // namespace funcd
