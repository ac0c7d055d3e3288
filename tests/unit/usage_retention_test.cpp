// Usage retention: kept forever by default; with a retention, older records are deleted in
// bounded batches.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include "usage_test_support.hpp"

namespace funcd {
namespace {

using namespace usage_testing;
using std::chrono::days;
using std::chrono::seconds;
using UsageRetentionTest = UsageStoreTest;

// Five records 40 days old and one a day old.
SystemTime record_ages(UsageStore& store) {
    const SystemTime now = std::chrono::system_clock::now();
    for (int i = 1; i <= 5; ++i)
        store.record(make_record("old" + std::to_string(i), "f", now - days(40) + seconds(i), 10, 128));
    store.record(make_record("recent", "f", now - days(1), 10, 128));
    store.flush();
    return now;
}

TEST_F(UsageRetentionTest, KeptForeverByDefault) {
    auto store = open();
    const SystemTime now = record_ages(*store);
    EXPECT_EQ(store->apply_retention(now + days(10'000)), 0);
    EXPECT_EQ(store->report({}).total.invocations, 6);
}

TEST_F(UsageRetentionTest, OlderRecordsAreDeleted) {
    UsageStoreOptions options;
    options.retention = days(30);
    auto store = open(options);
    const SystemTime now = record_ages(*store);
    EXPECT_EQ(store->apply_retention(now), 5);
    EXPECT_EQ(ids(store->records(std::nullopt, 10)), std::vector<std::string>{"recent"});
    EXPECT_EQ(store->apply_retention(now), 0);
}

TEST_F(UsageRetentionTest, DeletesInBoundedBatchesOldestFirst) {
    UsageStoreOptions options;
    options.retention = days(30);
    options.limits.batch_records = 2;
    auto store = open(options);
    const SystemTime now = record_ages(*store);
    // The third oldest cannot be deleted: the batch of the two before it is already done.
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h,
                           "CREATE TRIGGER keep BEFORE DELETE ON usage WHEN OLD.request_id = 'old3' "
                           "BEGIN SELECT RAISE(ABORT, 'kept'); END;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    EXPECT_THROW(store->apply_retention(now), std::exception);
    using V = std::vector<std::string>;
    EXPECT_EQ(ids(store->records(std::nullopt, 10)), (V{"recent", "old5", "old4", "old3"}));
    ASSERT_EQ(sqlite3_exec(h, "DROP TRIGGER keep", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(h);
    EXPECT_EQ(store->apply_retention(now), 3);
    EXPECT_EQ(ids(store->records(std::nullopt, 10)), V{"recent"});
}

}  // namespace
}  // namespace funcd
