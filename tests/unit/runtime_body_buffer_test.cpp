// A Runtime API request body against its worker's budget (funcd::BodyBuffer): whatever it is
// charged, an allocation that would take the worker past its budget is refused.
#include <gtest/gtest.h>

#include <string>

#include "funcd/runtime_api/runtime_body_buffer.hpp"

namespace funcd {
namespace {

// Another connection of the worker holds all of the budget but `left` bytes.
BodyBudget budget_with(std::size_t left) {
    constexpr std::size_t kLimit = 7 * 1024 * 1024;
    return BodyBudget{kLimit, kLimit - left};
}

// The allocation for a body declared as exactly what is left also holds a terminating NUL:
// one byte more than the budget. Found by the runtime_request_parser fuzz target (tests/fuzz).
TEST(RuntimeBodyBuffer, TheTerminatingNulCountsAgainstTheBudget) {
    BodyBudget budget = budget_with(600);
    const std::size_t before = budget.used;
    BodyBuffer body(budget);
    EXPECT_FALSE(body.append(std::string(100, 'x'), /*ceiling=*/600));
    EXPECT_EQ(budget.used, before);

    BodyBudget roomy = budget_with(601);
    BodyBuffer fits(roomy);
    EXPECT_TRUE(fits.append(std::string(100, 'x'), /*ceiling=*/600));
    EXPECT_EQ(roomy.used, roomy.limit);
}

// A body declared smaller than twice the string's inline buffer is allocated at that size.
TEST(RuntimeBodyBuffer, ASmallAllocationIsChargedAsItIsRoundedUp) {
    BodyBudget budget = budget_with(25);
    const std::size_t before = budget.used;
    BodyBuffer body(budget);
    EXPECT_FALSE(body.append(std::string(16, 'x'), /*ceiling=*/20));
    EXPECT_EQ(budget.used, before);
    EXPECT_LE(budget.used, budget.limit);
}

TEST(RuntimeBodyBuffer, WhatABodyIsChargedIsGivenBack) {
    BodyBudget budget{1024 * 1024, 0};
    {
        BodyBuffer body(budget);
        ASSERT_TRUE(body.append(std::string(5000, 'x'), 100'000));
        EXPECT_GT(budget.used, 5000u);
        EXPECT_LE(budget.used, budget.limit);
        EXPECT_EQ(body.take(), std::string(5000, 'x'));
        EXPECT_EQ(budget.used, 0u);
        ASSERT_TRUE(body.append(std::string(100, 'y'), 100));
    }
    EXPECT_EQ(budget.used, 0u);
}

}  // namespace
}  // namespace funcd
