// Admission by memory: what the budget charges a worker under each admission, how a
// function's estimate learns from its workers' peaks, and what growth does to the budget.
#include "funcd/pool/memory_budget.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "funcd/registry/function_config.hpp"

namespace funcd {
namespace {

constexpr std::uint64_t kBudgetTestMiB = 1ull << 20;

TEST(MemoryEstimate, StartsAtTheInitialEstimateThenChargesTheHighestPeakSeenPlusHeadroom) {
    MemoryEstimate e(128, 40);
    EXPECT_EQ(e.new_worker_mb(), 40) << "no worker of the function was seen yet";
    EXPECT_FALSE(e.highest_peak_bytes().has_value());

    e.observe(20 * kBudgetTestMiB);
    EXPECT_EQ(e.new_worker_mb(), 20 + kObservedHeadroomMb);
    // A lower reading of another worker does not lower what a new one may need.
    e.observe(12 * kBudgetTestMiB);
    EXPECT_EQ(e.new_worker_mb(), 20 + kObservedHeadroomMb);
    EXPECT_EQ(e.highest_peak_bytes(), 20 * kBudgetTestMiB);
    // A live worker is charged its own peak, not the function's highest.
    EXPECT_EQ(e.live_worker_mb(12 * kBudgetTestMiB), 12 + kObservedHeadroomMb);
    // Part of a MB counts as a whole one.
    EXPECT_EQ(e.live_worker_mb(12 * kBudgetTestMiB + 1), 13 + kObservedHeadroomMb);
}

TEST(MemoryEstimate, NeverChargesMoreThanMemoryMb) {
    MemoryEstimate small(32, 48);
    EXPECT_EQ(small.new_worker_mb(), 32) << "the initial estimate is capped at memory_mb";

    MemoryEstimate e(128, 40);
    e.observe(125 * kBudgetTestMiB);
    EXPECT_EQ(e.new_worker_mb(), 128) << "peak plus headroom is capped at memory_mb";
    EXPECT_EQ(e.live_worker_mb(500 * kBudgetTestMiB), 128);
    EXPECT_EQ(e.live_worker_mb(0), kObservedHeadroomMb);
}

TEST(MemoryEstimate, TheInitialEstimateIsBelowTheSmallestMemoryMbAndLetsABurstThrough) {
    EXPECT_GT(kInitialWorkerEstimateMb, kObservedHeadroomMb);
    EXPECT_LT(kInitialWorkerEstimateMb, limits::kMinMemoryMb);
    // 500 first invocations within the default budget of a 24 GB host (80% of its RAM as
    // the kernel reports it: 19,284 MB), all charged before any worker could be seen.
    EXPECT_LE(500 * kInitialWorkerEstimateMb, 19'284);
}

TEST(MemoryBudget, DeclaredAdmissionChargesMemoryMbWhateverWorkersWereSeenToUse) {
    MemoryBudget budget(1000);
    EXPECT_EQ(budget.admission(), MemoryAdmission::declared);
    MemoryEstimate e(128, 40);
    EXPECT_EQ(budget.new_worker_mb(e), 128);
    e.observe(20 * kBudgetTestMiB);
    EXPECT_EQ(budget.new_worker_mb(e), 128);
    EXPECT_EQ(budget.live_worker_mb(e, 20 * kBudgetTestMiB), 128);
    EXPECT_EQ(budget.live_worker_mb(e, std::nullopt), 128);
}

TEST(MemoryBudget, ObservedAdmissionChargesTheEstimateAndLiveWorkersTheirOwnPeak) {
    MemoryBudget budget(1000, MemoryAdmission::observed);
    MemoryEstimate e(128, 40);
    EXPECT_EQ(budget.new_worker_mb(e), 40);
    EXPECT_FALSE(budget.live_worker_mb(e, std::nullopt).has_value()) << "no reading: the charge stays";
    e.observe(20 * kBudgetTestMiB);
    EXPECT_EQ(budget.new_worker_mb(e), 20 + kObservedHeadroomMb);
    EXPECT_EQ(budget.live_worker_mb(e, 60 * kBudgetTestMiB), 60 + kObservedHeadroomMb);
    EXPECT_EQ(budget.live_worker_mb(e, 300 * kBudgetTestMiB), 128);
}

// Stands in for PoolManager's evictor: ends idle workers of other pools, last first.
struct FakeEvictor {
    MemoryBudget& budget;
    std::vector<std::int64_t> idle;  // MB charged to each idle worker of other pools
    std::vector<std::int64_t> asked;  // needed_mb of each call

    void operator()(std::int64_t needed_mb) {
        asked.push_back(needed_mb);
        while (needed_mb > 0 && !idle.empty()) {
            needed_mb -= idle.back();
            budget.release(idle.back());
            idle.pop_back();
        }
    }
};

TEST(MemoryBudget, AWorkerThatGrowsPastTheLimitIsKeptButEvictsIdleWorkersAndNewOnesAreRefused) {
    MemoryBudget budget(100, MemoryAdmission::observed);
    FakeEvictor evictor{budget, {}, {}};
    budget.set_evictor([&](std::int64_t needed, const WorkerPool*) { evictor(needed); });
    ASSERT_TRUE(budget.try_charge(60, nullptr));
    ASSERT_TRUE(budget.try_charge(30, nullptr));
    EXPECT_TRUE(evictor.asked.empty()) << "it fitted: nothing evicted";

    // The 30 MB worker was seen at 42 (50 with headroom): the memory is in use, so it stays
    // charged, and the budget asks for the excess back.
    budget.recharge(30, 50, nullptr);
    EXPECT_EQ(budget.used_mb(), 110);
    ASSERT_EQ(evictor.asked.size(), 1u);
    EXPECT_EQ(evictor.asked[0], 10);

    // Nothing idle: no new worker fits, however small.
    EXPECT_FALSE(budget.try_charge(1, nullptr));
    EXPECT_EQ(budget.used_mb(), 110);

    // Once idle workers can go, a new worker fits again.
    evictor.idle = {25};
    ASSERT_TRUE(budget.try_charge(5, nullptr));
    EXPECT_EQ(budget.used_mb(), 110 - 25 + 5);
    EXPECT_EQ(evictor.asked.back(), 15);
}

TEST(MemoryBudget, AChargeThatShrinksIsAReleaseThatWakesWaiters) {
    MemoryBudget budget(100, MemoryAdmission::observed);
    int released = 0;
    budget.on_release([&] { ++released; });
    ASSERT_TRUE(budget.try_charge(40, nullptr));
    budget.recharge(40, 40, nullptr);
    EXPECT_EQ(released, 0) << "unchanged: nothing to wake";
    budget.recharge(40, 18, nullptr);
    EXPECT_EQ(budget.used_mb(), 18);
    EXPECT_EQ(released, 1);
    budget.release(18);
    EXPECT_EQ(budget.used_mb(), 0);
}

TEST(MemoryBudget, ARuntimeTemplateIsChargedOnceFromItsFirstHolderToItsLast) {
    MemoryBudget budget(100, MemoryAdmission::observed);
    FakeEvictor evictor{budget, {}, {}};
    budget.set_evictor([&](std::int64_t needed, const WorkerPool*) { evictor(needed); });
    int released = 0;
    budget.on_release([&] { ++released; });
    budget.hold_template("python:/usr/bin/python3 -I -u", 16);
    budget.hold_template("python:/usr/bin/python3 -I -u", 16);
    EXPECT_EQ(budget.used_mb(), 16) << "shared by the pools that hold it: charged once";
    budget.hold_template("node:/usr/bin/node --max-old-space-size=90", 48);
    EXPECT_EQ(budget.used_mb(), 64);
    budget.release_template("python:/usr/bin/python3 -I -u");
    EXPECT_EQ(budget.used_mb(), 64) << "one pool still holds it";
    EXPECT_EQ(released, 0);
    budget.release_template("python:/usr/bin/python3 -I -u");
    EXPECT_EQ(budget.used_mb(), 48);
    EXPECT_EQ(released, 1);
    budget.release_template("no-such-template");
    EXPECT_EQ(budget.used_mb(), 48);

    // Never refused, like growth: over the limit, idle workers of pools are asked for.
    ASSERT_TRUE(budget.try_charge(40, nullptr));
    budget.hold_template("python:/usr/bin/python3 -I -u+numpy", 46);
    EXPECT_EQ(budget.used_mb(), 134);
    ASSERT_FALSE(evictor.asked.empty());
    EXPECT_EQ(evictor.asked.back(), 34);
    EXPECT_FALSE(budget.try_charge(1, nullptr)) << "no worker fits until the budget is back within its limit";
}

TEST(MemoryBudget, ATemplatesChargeIsItsInterpretersAndItsPreloadedModules) {
    EXPECT_EQ(template_charge_mb({TemplateRuntime::python, "/usr/bin/python3", {"-I", "-u"}, {}}),
              kPythonTemplateChargeMb);
    EXPECT_EQ(template_charge_mb({TemplateRuntime::python, "/usr/bin/python3", {"-I", "-u"}, {"numpy", "PIL.Image"}}),
              kPythonTemplateChargeMb + 2 * kPreloadedModuleChargeMb);
    EXPECT_EQ(template_charge_mb({TemplateRuntime::node, "/usr/bin/node", {"--max-old-space-size=90"}, {}}),
              kNodeTemplateChargeMb);
}

}  // namespace
}  // namespace funcd
