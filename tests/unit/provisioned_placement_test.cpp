// Where provisioned workers run among nodes sharing the state (ProvisionedPlacement): the
// split every node computes from the same heartbeat reports.
#include "funcd/state/provisioned_placement.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <algorithm>
#include <numeric>
#include <set>

namespace funcd {
namespace {

using namespace std::chrono_literals;

NodeRecord node(const std::string& id, nlohmann::json traffic, nlohmann::json ready = nlohmann::json::object()) {
    NodeRecord r;
    r.report.id = id;
    r.report.load = {{"workers", 0}, {"traffic", std::move(traffic)}, {"provisioned_ready", std::move(ready)}};
    return r;
}

// Each node's share of `requested` when every node reads `live`.
std::vector<int> shares(const std::vector<NodeRecord>& live, const std::string& function, int requested) {
    std::vector<int> out;
    for (const auto& r : live) {
        ProvisionedPlacement p(r.report.id, true);
        p.update(live);
        out.push_back(p.share(function, requested));
    }
    return out;
}

TEST(Apportion, LargestRemainderTiesToTheLowerIndex) {
    EXPECT_EQ(apportion(10, {1, 1}), (std::vector<int>{5, 5}));
    EXPECT_EQ(apportion(3, {1, 1}), (std::vector<int>{2, 1}));
    EXPECT_EQ(apportion(5, {0.95, 0.05}), (std::vector<int>{5, 0}));
    EXPECT_EQ(apportion(4, {1, 2, 1}), (std::vector<int>{1, 2, 1}));
    EXPECT_EQ(apportion(1, {0, 0, 3}), (std::vector<int>{0, 0, 1}));
    EXPECT_EQ(apportion(7, {1, 1, 1}), (std::vector<int>{3, 2, 2}));
    EXPECT_EQ(apportion(0, {1, 1}), (std::vector<int>{0, 0}));
    EXPECT_EQ(apportion(3, {0, 0}), (std::vector<int>{0, 0}));
}

TEST(ProvisionedPlacement, ASingleHostKeepsEveryWorker) {
    ProvisionedPlacement p("only", false);
    EXPECT_EQ(p.share("f", 3), 3);
    p.update({node("only", nlohmann::json::object())});
    EXPECT_EQ(p.share("f", 3), 3);
    EXPECT_EQ(p.ready_elsewhere("f", "$LATEST"), 0u);
}

TEST(ProvisionedPlacement, SharedStateKeepsNoneUntilTheNodesAreKnown) {
    ProvisionedPlacement p("a", true);
    EXPECT_EQ(p.share("f", 3), 0);
}

TEST(ProvisionedPlacement, AFunctionNobodyServedGoesWholeToOneNodeByItsName) {
    const std::vector<NodeRecord> live{node("a", {}), node("b", {}), node("c", {})};
    std::set<std::size_t> homes;
    for (const std::string f : {"resize", "thumb", "mail", "report", "audit", "ingest", "score", "feed"}) {
        const auto s = shares(live, f, 4);
        EXPECT_EQ(std::accumulate(s.begin(), s.end(), 0), 4) << f;
        EXPECT_EQ(std::count(s.begin(), s.end(), 4), 1) << f << ": one node has them all";
        homes.insert(static_cast<std::size_t>(std::find(s.begin(), s.end(), 4) - s.begin()));
    }
    EXPECT_GT(homes.size(), 1u) << "functions spread over the nodes";
}

TEST(ProvisionedPlacement, TheSplitFollowsWhereEachNodeSaysTheInvocationsWent) {
    const std::vector<NodeRecord> live{node("a", {{"f", 10.0}}), node("b", {{"f", 30.0}, {"g", 1.0}}),
                                       node("c", {{"g", 2.5}})};
    EXPECT_EQ(shares(live, "f", 4), (std::vector<int>{1, 3, 0}));
    EXPECT_EQ(shares(live, "f", 1), (std::vector<int>{0, 1, 0}));
    EXPECT_EQ(shares(live, "g", 2), (std::vector<int>{0, 1, 1}));
    // A node whose own heartbeat is not among the live ones keeps none.
    ProvisionedPlacement lost("d", true);
    lost.update(live);
    EXPECT_EQ(lost.share("f", 4), 0);
}

TEST(ProvisionedPlacement, ReportsFadeByHalfEveryHalfLifeAndAddWhatStartedSince) {
    ProvisionedPlacement p("a", true);
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    const auto all = [](const std::string&) { return true; };
    auto r = p.report({{"f", 10}}, {{"f", {{"$LATEST", 2}}}, {"g", {{"1", 0}}}}, all, t0);
    EXPECT_DOUBLE_EQ(r["traffic"]["f"].get<double>(), 10.0);
    EXPECT_EQ(r["provisioned_ready"], nlohmann::json({{"f", {{"$LATEST", 2}}}})) << "none ready: not reported";
    r = p.report({{"f", 10}}, {}, all, t0 + kTrafficHalfLife);
    EXPECT_DOUBLE_EQ(r["traffic"]["f"].get<double>(), 5.0);
    r = p.report({{"f", 14}, {"g", 1}}, {}, all, t0 + 2 * kTrafficHalfLife);
    EXPECT_DOUBLE_EQ(r["traffic"]["f"].get<double>(), 6.5);
    EXPECT_DOUBLE_EQ(r["traffic"]["g"].get<double>(), 1.0);
    // Only functions with provisioned concurrency are reported; the others are still counted.
    const auto only_g = [](const std::string& f) { return f == "g"; };
    r = p.report({{"f", 14}, {"g", 1}}, {}, only_g, t0 + 2 * kTrafficHalfLife);
    EXPECT_EQ(r["traffic"], nlohmann::json({{"g", 1.0}}));
    r = p.report({{"f", 14}, {"g", 1}}, {}, all, t0 + 3 * kTrafficHalfLife);
    EXPECT_DOUBLE_EQ(r["traffic"]["f"].get<double>(), 3.25);
}

TEST(ProvisionedPlacement, ReadyWorkersElsewhereAreTheOtherNodesReports) {
    ProvisionedPlacement p("a", true);
    p.update({node("a", {}, {{"f", {{"$LATEST", 2}}}}), node("b", {}, {{"f", {{"$LATEST", 1}, {"3", 4}}}}),
              node("c", {}, {{"f", {{"$LATEST", 1}}}})});
    EXPECT_EQ(p.ready_elsewhere("f", "$LATEST"), 2u);
    EXPECT_EQ(p.ready_elsewhere("f", "3"), 4u);
    EXPECT_EQ(p.ready_elsewhere("g", "$LATEST"), 0u);
}

}  // namespace
}  // namespace funcd
