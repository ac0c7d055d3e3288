#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "funcd/metering/pricing.hpp"
#include "funcd/metering/usage_record.hpp"
#include "funcd/metering/usage_store.hpp"
#include "usage_test_support.hpp"

namespace funcd {
namespace {

using namespace usage_testing;
using std::chrono::milliseconds;
using std::chrono::seconds;
using MeteringStoreTest = UsageStoreTest;

TEST(BilledMs, RoundsUpToWholeMillisecondsWithOneMillisecondMinimum) {
    EXPECT_EQ(billed_ms_for(0), 1);
    EXPECT_EQ(billed_ms_for(1), 1);
    EXPECT_EQ(billed_ms_for(1000), 1);
    EXPECT_EQ(billed_ms_for(1001), 2);
    EXPECT_EQ(billed_ms_for(123456), 124);
}

TEST(Outcome, RoundTripsThroughText) {
    for (Outcome o : {Outcome::success, Outcome::function_error, Outcome::timeout, Outcome::exit_error,
                      Outcome::init_error, Outcome::throttled})
        EXPECT_EQ(parse_outcome(to_string(o)), o);
    EXPECT_EQ(to_string(Outcome::throttled), "throttled");
    EXPECT_EQ(to_string(Outcome::function_error), "function_error");
    EXPECT_EQ(parse_outcome("Success"), std::nullopt);
    EXPECT_EQ(parse_outcome(""), std::nullopt);
}

TEST(UsageJson, RecordShapeAndRoundTrip) {
    auto cold = make_record("req-1", "fn", kT0 + milliseconds(5), 1500, 256, Outcome::timeout, 2500);
    auto j = to_json(cold);
    EXPECT_EQ(j["start"], "2026-01-01T00:00:00.005Z");
    EXPECT_EQ(j["start_us"], to_unix_us(kT0) + 5000);
    EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 1.5);
    EXPECT_EQ(j["billed_ms"], 2);
    EXPECT_EQ(j["init_duration_us"], 2500);
    EXPECT_DOUBLE_EQ(j["init_duration_ms"].get<double>(), 2.5);
    EXPECT_EQ(j["outcome"], "timeout");

    auto back = usage_record_from_json(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->request_id, "req-1");
    EXPECT_EQ(back->function, "fn");
    EXPECT_EQ(back->version, 3);
    EXPECT_EQ(back->start, cold.start);
    EXPECT_EQ(back->duration_us, 1500);
    EXPECT_EQ(back->billed_ms, 2);
    EXPECT_EQ(back->memory_mb, 256);
    EXPECT_EQ(back->max_memory_used_mb, 42);
    EXPECT_EQ(back->init_duration_us, 2500);
    EXPECT_EQ(back->outcome, Outcome::timeout);

    auto warm = to_json(make_record("req-2", "fn", kT0, 10, 128));
    EXPECT_TRUE(warm["init_duration_us"].is_null());
    EXPECT_TRUE(warm["init_duration_ms"].is_null());
    auto warm_back = usage_record_from_json(warm);
    ASSERT_TRUE(warm_back);
    EXPECT_FALSE(warm_back->init_duration_us);
}

TEST(UsageJson, JournalLineIsTheRecordsJsonOnOneLine) {
    const std::vector<UsageRecord> records = {
        make_record("8f5a1c1e-0000-4000-8000-000000000001", "fn", kT0 + milliseconds(5), 1500, 256, Outcome::timeout,
                    2500),
        make_record("req-2", "fn_2-b", kT0, 10, 128),
        make_record("req-3", "fn", kT0 + seconds(7), 3'000'000, 10240, Outcome::function_error, 1'000'001),
        make_record("req-4", "fn", kT0, 0, 128, Outcome::init_error, 0),
        make_record("req-5", "fn", from_unix_us(-1'500), 7, 128),  // before 1970
        // Not plain ASCII: escaped, and invalid UTF-8 replaced rather than refused.
        make_record("req-\"6\"", "f\\n\xff", kT0, 123, 128),
    };
    for (const auto& r : records) {
        const std::string text = line_of(r);
        ASSERT_FALSE(text.empty());
        EXPECT_EQ(text.back(), '\n');
        EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
        const auto parsed = nlohmann::json::parse(text, nullptr, false);
        ASSERT_FALSE(parsed.is_discarded()) << text;
        const auto expected = nlohmann::json::parse(
            to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        EXPECT_EQ(parsed, expected) << text;
        if (r.function == "fn") {
            EXPECT_EQ(text, expected.dump() + "\n");  // byte for byte, too
        }
    }
}

TEST(UsageJson, MalformedIsRejected) {
    const auto good = to_json(make_record("req", "fn", kT0, 10, 128));
    EXPECT_FALSE(usage_record_from_json(nlohmann::json::array()));
    for (const char* key : {"request_id", "function", "version", "duration_us", "billed_ms", "memory_mb",
                            "max_memory_used_mb", "outcome"}) {
        auto j = good;
        j.erase(key);
        EXPECT_FALSE(usage_record_from_json(j)) << key;
    }
    auto bad = good;
    bad["outcome"] = "exploded";
    EXPECT_FALSE(usage_record_from_json(bad));
    bad = good;
    bad["duration_us"] = "10";
    EXPECT_FALSE(usage_record_from_json(bad));
    bad = good;
    bad["init_duration_us"] = 1.5;
    EXPECT_FALSE(usage_record_from_json(bad));
}

TEST(UsageJson, TotalsShape) {
    // 2 invocations, 3 ms billed at 128 MB and... 256,000 MB-ms = 0.25 GB-s.
    UsageTotals t{.name = "fn", .invocations = 2, .errors = 1, .cold_starts = 1, .duration_us = 1500,
                  .billed_ms = 3, .mb_ms = 256'000};
    auto named = to_json(t, Prices{}, true);
    EXPECT_EQ(named["name"], "fn");
    EXPECT_EQ(named["invocations"], 2);
    EXPECT_EQ(named["errors"], 1);
    EXPECT_EQ(named["cold_starts"], 1);
    EXPECT_DOUBLE_EQ(named["duration_ms"].get<double>(), 1.5);
    EXPECT_EQ(named["billed_ms"], 3);
    // Money and GB-seconds are exact decimal strings: 0.25 * 0.0000166667 + 2 * 0.0000002.
    EXPECT_EQ(named["gb_seconds"], "0.25");
    EXPECT_EQ(named["cost_usd"], "0.000004566675");
    EXPECT_FALSE(to_json(t, Prices{}, false).contains("name"));
}

// Four invocations over two functions, one second apart, with hand-computed totals below.
void record_sample(UsageStore& store) {
    store.record(make_record("r1", "a", kT0, 100'000, 512, Outcome::success, 250'000));
    store.record(make_record("r2", "a", kT0 + seconds(1), 1'500, 512, Outcome::function_error));
    store.record(make_record("r3", "b", kT0 + seconds(2), 10'000, 1024, Outcome::timeout, 80'000));
    store.record(make_record("r4", "b", kT0 + seconds(3), 999, 128));
}

TEST_F(MeteringStoreTest, ReportTotalsAndPerFunctionSplit) {
    auto store = open();
    record_sample(*store);
    auto rep = store->report({});

    ASSERT_EQ(rep.functions.size(), 2u);
    const auto& a = rep.functions[0];
    EXPECT_EQ(a.name, "a");
    EXPECT_EQ(a.invocations, 2);
    EXPECT_EQ(a.errors, 1);
    EXPECT_EQ(a.cold_starts, 1);
    EXPECT_EQ(a.duration_us, 101'500);
    EXPECT_EQ(a.billed_ms, 102);
    EXPECT_EQ(a.mb_ms, 102 * 512);
    // 0.102 s * 0.5 GB = 0.051 GB-s; 0.051 * 0.0000166667 + 2 * 0.0000002, to the last digit.
    EXPECT_EQ(to_json(a, Prices{}, true)["gb_seconds"], "0.051");
    EXPECT_EQ(to_json(a, Prices{}, true)["cost_usd"], "0.0000012500017");

    const auto& b = rep.functions[1];
    EXPECT_EQ(b.name, "b");
    EXPECT_EQ(b.invocations, 2);
    EXPECT_EQ(b.errors, 1);
    EXPECT_EQ(b.cold_starts, 1);
    EXPECT_EQ(b.duration_us, 10'999);
    EXPECT_EQ(b.billed_ms, 11);
    EXPECT_EQ(b.mb_ms, 10 * 1024 + 1 * 128);
    EXPECT_EQ(to_json(b, Prices{}, true)["gb_seconds"], "0.010125");

    EXPECT_EQ(rep.total.name, "");
    EXPECT_EQ(rep.total.invocations, 4);
    EXPECT_EQ(rep.total.errors, 2);
    EXPECT_EQ(rep.total.cold_starts, 2);
    EXPECT_EQ(rep.total.billed_ms, 113);
    EXPECT_EQ(rep.total.mb_ms, 102 * 512 + 10 * 1024 + 128);
    // 0.061125 * 0.0000166667 + 4 * 0.0000002 = 0.0000010187520375 + 0.0000008.
    EXPECT_EQ(to_json(rep.total, Prices{}, false)["gb_seconds"], "0.061125");
    EXPECT_EQ(to_json(rep.total, Prices{}, false)["cost_usd"], "0.0000018187520375");
}

TEST_F(MeteringStoreTest, EveryNonSuccessOutcomeIsAnError) {
    auto store = open();
    store->record(make_record("s", "f", kT0, 10, 128, Outcome::success));
    store->record(make_record("e1", "f", kT0, 10, 128, Outcome::function_error));
    store->record(make_record("e2", "f", kT0, 10, 128, Outcome::timeout));
    store->record(make_record("e3", "f", kT0, 10, 128, Outcome::exit_error));
    store->record(make_record("e4", "f", kT0, 10, 128, Outcome::init_error, 5000));
    auto rep = store->report({});
    EXPECT_EQ(rep.total.invocations, 5);
    EXPECT_EQ(rep.total.errors, 4);
    EXPECT_EQ(rep.total.cold_starts, 1);
}

TEST_F(MeteringStoreTest, ReportFilters) {
    auto store = open();
    record_sample(*store);

    auto only_a = store->report({.function = "a"});
    ASSERT_EQ(only_a.functions.size(), 1u);
    EXPECT_EQ(only_a.functions[0].name, "a");
    EXPECT_EQ(only_a.total.invocations, 2);

    // since is inclusive, until exclusive: r2 (t0+1s) and r3 (t0+2s).
    auto window = store->report({.since = kT0 + seconds(1), .until = kT0 + seconds(3)});
    ASSERT_EQ(window.functions.size(), 2u);
    EXPECT_EQ(window.functions[0].invocations, 1);
    EXPECT_EQ(window.functions[0].billed_ms, 2);
    EXPECT_EQ(window.functions[1].invocations, 1);
    EXPECT_EQ(window.functions[1].billed_ms, 10);
    EXPECT_EQ(window.total.invocations, 2);

    auto one_us_before = store->report({.until = kT0 + seconds(3) - std::chrono::microseconds(1)});
    EXPECT_EQ(one_us_before.total.invocations, 3);
    auto b_late = store->report({.function = "b", .since = kT0 + seconds(3)});
    EXPECT_EQ(b_late.total.invocations, 1);
    EXPECT_EQ(b_late.total.billed_ms, 1);

    auto none = store->report({.function = "missing"});
    EXPECT_TRUE(none.functions.empty());
    EXPECT_EQ(none.total.invocations, 0);
    EXPECT_EQ(to_json(none.total, Prices{}, false)["cost_usd"], "0");
}

TEST_F(MeteringStoreTest, RecordsNewestFirstWithLimit) {
    auto store = open();
    record_sample(*store);
    // Same start as r4: ties are broken by request id, descending.
    store->record(make_record("r5", "b", kT0 + seconds(3), 10, 128));

    using V = std::vector<std::string>;
    EXPECT_EQ(ids(store->records(std::nullopt, 10)), (V{"r5", "r4", "r3", "r2", "r1"}));
    EXPECT_EQ(ids(store->records(std::nullopt, 2)), (V{"r5", "r4"}));
    EXPECT_EQ(ids(store->records("a", 10)), (V{"r2", "r1"}));
    EXPECT_EQ(ids(store->records(std::nullopt, 0)), (V{"r5"}));
    EXPECT_EQ(store->records(std::nullopt, 1'000'000).size(), 5u);

    auto r3 = store->records("b", 3).at(2);
    EXPECT_EQ(r3.request_id, "r3");
    EXPECT_EQ(r3.start, kT0 + seconds(2));
    EXPECT_EQ(r3.duration_us, 10'000);
    EXPECT_EQ(r3.memory_mb, 1024);
    EXPECT_EQ(r3.init_duration_us, 80'000);
    EXPECT_EQ(r3.outcome, Outcome::timeout);
}

TEST_F(MeteringStoreTest, FlushCommitsAndEmptiesTheJournal) {
    auto store = open();
    record_sample(*store);
    store->flush();
    EXPECT_EQ(journal_text(journal()), "");
    // Reopening reads the same rows from SQLite without anything left to replay.
    store.reset();
    EXPECT_EQ(open()->report({}).total.invocations, 4);
}

TEST_F(MeteringStoreTest, SurvivesSigkillAndReplaysWithoutDuplicates) {
    // Make sure the table exists so the child can lock the database before recording.
    open().reset();

    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        try {
            UsageStore store(db(), journal());
            // Hold SQLite's write lock from another connection so the flusher cannot commit
            // before the kill: the records can only survive through the journal.
            sqlite3* blocker = nullptr;
            if (sqlite3_open(db().c_str(), &blocker) != SQLITE_OK ||
                sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
                ::_exit(2);
            store.record(make_record("k1", "f", kT0, 1000, 128));
            store.record(make_record("k2", "f", kT0 + seconds(1), 2000, 128, Outcome::timeout));
            store.record(make_record("k3", "g", kT0 + seconds(2), 3000, 256, Outcome::success, 700));
            ::raise(SIGKILL);
        } catch (...) {
        }
        ::_exit(3);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    ASSERT_EQ(WTERMSIG(status), SIGKILL);

    const std::string text = journal_text(journal());
    ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 3);

    {
        auto store = open();
        EXPECT_EQ(journal_text(journal()), "") << "replayed segments are deleted";
        using V = std::vector<std::string>;
        EXPECT_EQ(ids(store->records(std::nullopt, 10)), (V{"k3", "k2", "k1"}));
        auto rep = store->report({});
        EXPECT_EQ(rep.total.invocations, 3);
        EXPECT_EQ(rep.total.errors, 1);
        EXPECT_EQ(rep.total.cold_starts, 1);
    }
    // As after a crash between the commit and the deletion: the same lines replayed again.
    write_segment(1000, text);
    {
        auto store = open();
        EXPECT_EQ(store->report({}).total.invocations, 3);
    }
    EXPECT_EQ(open()->report({}).total.invocations, 3);
}

TEST_F(MeteringStoreTest, JournalFileOfAnEarlierVersionIsReplayed) {
    // Before segments the journal was one file at the same path, its last line possibly torn.
    const std::string full1 = line_of(make_record("t1", "f", kT0, 10, 128));
    const std::string full2 = line_of(make_record("t2", "f", kT0 + seconds(1), 10, 128));
    const std::string torn = line_of(make_record("t3", "f", kT0 + seconds(2), 10, 128));
    std::ofstream(journal(), std::ios::binary) << full1 << full2 << torn.substr(0, torn.size() / 2);

    auto store = open();
    ASSERT_TRUE(fs::is_directory(journal()));
    EXPECT_EQ(journal_text(journal()), "");
    using V = std::vector<std::string>;
    EXPECT_EQ(ids(store->records(std::nullopt, 10)), (V{"t2", "t1"}));

    store->record(make_record("t4", "f", kT0 + seconds(3), 10, 128));
    store.reset();
    EXPECT_EQ(ids(open()->records(std::nullopt, 10)), (V{"t4", "t2", "t1"}));
}

TEST_F(MeteringStoreTest, MalformedJournalLineIsSkipped) {
    write_segment(0, "not json\n" + line_of(make_record("m1", "f", kT0, 10, 128)) + "{\"request_id\":\"m2\"}\n");
    EXPECT_EQ(ids(open()->records(std::nullopt, 10)), std::vector<std::string>{"m1"});
}

TEST_F(MeteringStoreTest, ConcurrentRecords) {
    constexpr int kThreads = 4;
    constexpr int kPerThread = 500;
    auto store = open();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPerThread; ++i)
                store->record(make_record("c" + std::to_string(t) + "-" + std::to_string(i),
                                          "fn" + std::to_string(t), kT0 + milliseconds(i), 1000, 128));
        });
    for (auto& th : threads) th.join();

    auto rep = store->report({});
    EXPECT_EQ(rep.total.invocations, kThreads * kPerThread);
    ASSERT_EQ(rep.functions.size(), static_cast<std::size_t>(kThreads));
    for (const auto& f : rep.functions) EXPECT_EQ(f.invocations, kPerThread);
    EXPECT_EQ(rep.total.billed_ms, kThreads * kPerThread);
}

}  // namespace
}  // namespace funcd
