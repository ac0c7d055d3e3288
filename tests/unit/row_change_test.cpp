#include "funcd/event_sources/row_change.hpp"

#include <gtest/gtest.h>

namespace funcd {
namespace {

TEST(RowChange, LsnIsWrittenAndReadAsPostgreSqlDoes) {
    EXPECT_EQ(format_lsn(0), "0/0");
    EXPECT_EQ(format_lsn(0x16B374D848ull), "16/B374D848");
    std::uint64_t lsn = 0;
    ASSERT_TRUE(parse_lsn("16/B374D848", lsn));
    EXPECT_EQ(lsn, 0x16B374D848ull);
    ASSERT_TRUE(parse_lsn("FFFFFFFF/FFFFFFFF", lsn));
    EXPECT_EQ(lsn, ~0ull);
    for (const char* bad : {"", "/", "16/", "/1", "16B374D848", "1G/0", "123456789/0", "1/2/3", "-1/0"})
        EXPECT_FALSE(parse_lsn(bad, lsn)) << bad;
}

TEST(RowChange, PositionsOrderByCommitThenOrdinal) {
    EXPECT_LT((ChangePosition{10, 5}), (ChangePosition{11, 0}));
    EXPECT_LT((ChangePosition{10, 1}), (ChangePosition{10, 2}));
    EXPECT_EQ((ChangePosition{10, 2}), (ChangePosition{10, 2}));
}

}  // namespace
}  // namespace funcd
