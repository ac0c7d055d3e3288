// The usage journal: segments that roll at each commit, replay in bounded batches, torn tails.
#include <sqlite3.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "funcd/metering/usage_journal.hpp"
#include "usage_test_support.hpp"

namespace funcd {
namespace {

using namespace usage_testing;
using std::chrono::seconds;
using UsageJournalTest = UsageStoreTest;

std::size_t lines(const std::string& text) { return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')); }

void exec_sql(const fs::path& db, const std::string& sql) {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(h);
}

TEST_F(UsageJournalTest, StaysBoundedUnderSteadyLoad) {
    // Records keep arriving while the flusher commits, so the flusher never catches up
    // exactly: the journal must still shed what is committed.
    auto store = open();
    std::atomic<std::uint64_t> recorded{0};
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (std::uint64_t i = 0; !done; ++i) {
            store->record(make_record("s" + std::to_string(i), "f", kT0 + std::chrono::microseconds(i), 10, 128));
            recorded = i + 1;
            // A steady stream (some thousands a second), not a flood the flusher cannot match.
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    });
    struct Join {
        std::atomic<bool>& done;
        std::thread& t;
        ~Join() {
            done = true;
            if (t.joinable()) t.join();
        }
    } join{done, writer};

    std::size_t max_segments = 0;
    for (int round = 0; round < 6; ++round) {
        while (recorded < (round + 1) * 200u) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const std::uint64_t before = recorded;
        store->flush();
        max_segments = std::max(max_segments, segments(journal()).size());
        const std::size_t held = lines(journal_text(journal()));
        const std::uint64_t after = recorded;
        // Whatever was recorded before the flush is committed, and its segments are gone.
        // (+1: the writer's counter trails the record being appended at that moment.)
        EXPECT_LE(held, after - before + 1) << "round " << round << ": the journal holds committed records";
    }
    done = true;
    writer.join();
    EXPECT_EQ(static_cast<std::uint64_t>(store->report({}).total.invocations), recorded.load());
    EXPECT_EQ(journal_text(journal()), "");
    EXPECT_LE(max_segments, 3u) << "committed segments are deleted";
}

TEST_F(UsageJournalTest, TornTailIsSkippedAndTheNextSegmentKept) {
    const std::string r1 = line_of(make_record("t1", "f", kT0, 10, 128));
    const std::string r2 = line_of(make_record("t2", "f", kT0 + seconds(1), 10, 128));
    const std::string r3 = line_of(make_record("t3", "f", kT0 + seconds(2), 10, 128));
    const std::string r4 = line_of(make_record("t4", "f", kT0 + seconds(3), 10, 128));
    const std::string r5 = line_of(make_record("t5", "f", kT0 + seconds(4), 10, 128));
    // A write cut short by a full disk: the segment ends in a fragment, the next record
    // went to the next segment.
    write_segment(7, r1 + r2 + r3.substr(0, 100));
    write_segment(8, r4);
    // As an earlier version wrote after a failed write: a fragment with the next record
    // glued to it on one line. The record is recovered, the fragment skipped.
    write_segment(9, r3.substr(0, 57) + r5);

    auto store = open();
    using V = std::vector<std::string>;
    EXPECT_EQ(ids(store->records(std::nullopt, 10)), (V{"t5", "t4", "t2", "t1"}));
    EXPECT_EQ(journal_text(journal()), "");
}

TEST_F(UsageJournalTest, ReaderReportsWhatItSkipped) {
    const std::string r1 = line_of(make_record("a", "f", kT0, 10, 128));
    const std::string r2 = line_of(make_record("b", "f", kT0, 10, 128));
    write_segment(0, std::string(100'000, 'x') + "\n" + "garbage\n\n" + r1 + r2.substr(0, 80) + r2 + r1.substr(0, 30));
    std::vector<std::string> seen;
    const auto stats = UsageJournal::read(segments(journal()).at(0), [&](UsageRecord r) { seen.push_back(r.request_id); });
    EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(stats.records, 2u);
    EXPECT_EQ(stats.skipped_lines, 3u) << "the over-long line, the garbage, the fragment before b";
    EXPECT_EQ(stats.torn_tail_bytes, 30u);
}

TEST_F(UsageJournalTest, ReplayCommitsInBoundedBatches) {
    open().reset();  // the table
    // The fifth record cannot be inserted: everything before its batch must stay committed.
    exec_sql(db(), "CREATE TRIGGER poison BEFORE INSERT ON usage WHEN NEW.request_id = 'r5' "
                   "BEGIN SELECT RAISE(ABORT, 'poisoned record'); END;");
    std::string text;
    for (int i = 1; i <= 6; ++i) text += line_of(make_record("r" + std::to_string(i), "f", kT0 + seconds(i), 10, 128));
    write_segment(3, text);

    UsageStoreOptions options;
    options.limits.batch_records = 2;
    EXPECT_THROW(open(options), std::exception);
    EXPECT_EQ(journal_text(journal()), text) << "a segment is only deleted once all of it is committed";

    exec_sql(db(), "DROP TRIGGER poison");
    // Batches of two: r1..r4 were committed before r5 failed.
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &h), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM usage", -1, &q, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(q, 0), 4);
    sqlite3_finalize(q);
    sqlite3_close(h);

    // The next start replays the whole segment again: nothing lost, nothing doubled.
    auto store = open(options);
    EXPECT_EQ(store->report({}).total.invocations, 6);
    EXPECT_EQ(journal_text(journal()), "");
}

}  // namespace
}  // namespace funcd
