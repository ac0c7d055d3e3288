// A function's invocation history and per-step statistics from the usage ledger: the
// buckets against a brute-force computation over the same random records, the listing's
// filters, throttles kept out of the usage totals, trace ids and triggers through the
// store, the journal and a migration, and the query parameters' validation.
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/gateway/invocation_history.hpp"
#include "funcd/metering/invocation_stats.hpp"
#include "funcd/metering/usage_store.hpp"
#include "usage_test_support.hpp"

namespace funcd {
namespace {

using namespace usage_testing;
using std::chrono::milliseconds;
using std::chrono::seconds;
using InvocationHistoryTest = UsageStoreTest;

// The percentile as its definition reads: the value at rank ceil(p/100 * n) of the sorted values.
std::int64_t brute_percentile(std::vector<std::int64_t> v, int p) {
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p / 100.0 * static_cast<double>(v.size()))));
    return v[rank - 1];
}

TEST(InvocationStats, NearestRankPercentile) {
    std::vector<std::int64_t> one{7};
    EXPECT_EQ(nearest_rank_percentile(one, 50), 7);
    EXPECT_EQ(nearest_rank_percentile(one, 99), 7);
    std::vector<std::int64_t> hundred;
    for (int i = 100; i >= 1; --i) hundred.push_back(i);
    EXPECT_EQ(nearest_rank_percentile(hundred, 50), 50);
    EXPECT_EQ(nearest_rank_percentile(hundred, 90), 90);
    EXPECT_EQ(nearest_rank_percentile(hundred, 99), 99);
    std::vector<std::int64_t> ten{10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
    EXPECT_EQ(nearest_rank_percentile(ten, 50), 5);
    EXPECT_EQ(nearest_rank_percentile(ten, 90), 9);
    EXPECT_EQ(nearest_rank_percentile(ten, 99), 10);
}

TEST(InvocationStats, BucketsAreAlignedToTheStepAndCoverTheRange) {
    // 00:00:30 to 00:05:00 in minutes: 00:00 (from its 30th second), 00:01 ... 00:04.
    EXPECT_EQ(StatsBuckets::bucket_count(kT0 + seconds(30), kT0 + seconds(300), seconds(60)), 5);
    EXPECT_EQ(StatsBuckets::bucket_count(kT0, kT0 + seconds(301), seconds(60)), 6);
    EXPECT_EQ(StatsBuckets::bucket_count(kT0, kT0 + seconds(1), seconds(86400)), 1);
    StatsBuckets b(kT0 + seconds(30), kT0 + seconds(300), seconds(60));
    StatsSample before;
    before.start_us = to_unix_us(kT0 + seconds(29));  // before since: not counted though its bucket is there
    b.add(before);
    StatsSample inside;
    inside.start_us = to_unix_us(kT0 + seconds(30));
    b.add(inside);
    StatsSample at_until;
    at_until.start_us = to_unix_us(kT0 + seconds(300));
    b.add(at_until);
    auto out = b.finish();
    ASSERT_EQ(out.size(), 5u);
    EXPECT_EQ(out[0].start, kT0);
    EXPECT_EQ(out[4].start, kT0 + seconds(240));
    EXPECT_EQ(out[0].invocations, 1);
    for (std::size_t i = 1; i < out.size(); ++i) EXPECT_EQ(out[i].invocations, 0);
    EXPECT_FALSE(out[1].p50_us);
}

TEST_F(InvocationHistoryTest, StatsEqualABruteForceComputationOverRandomRecords) {
    std::mt19937_64 rng(20261205);
    const std::vector<Outcome> outcomes = {Outcome::success,   Outcome::success,    Outcome::success,
                                           Outcome::success,   Outcome::function_error, Outcome::timeout,
                                           Outcome::exit_error, Outcome::init_error, Outcome::throttled};
    const SystemTime since = kT0 + seconds(37);
    const SystemTime until = kT0 + seconds(3600 - 11);
    const seconds step(300);
    std::vector<UsageRecord> records;
    {
        auto store = open();
        for (int i = 0; i < 4000; ++i) {
            // Some before since and after until, some of another function.
            const auto start = kT0 + milliseconds(std::uniform_int_distribution<std::int64_t>(-60'000, 3'660'000)(rng));
            const Outcome o = outcomes[std::uniform_int_distribution<std::size_t>(0, outcomes.size() - 1)(rng)];
            const std::int64_t duration = std::uniform_int_distribution<std::int64_t>(0, 3'000'000)(rng);
            std::optional<std::int64_t> init;
            if (std::uniform_int_distribution<int>(0, 4)(rng) == 0)
                init = std::uniform_int_distribution<std::int64_t>(100, 900'000)(rng);
            const int memory = std::uniform_int_distribution<int>(0, 1)(rng) ? 128 : 1769;
            UsageRecord r = make_record("req-" + std::to_string(i), i % 5 == 0 ? "other" : "fn", start, duration,
                                        memory, o, o == Outcome::throttled ? std::nullopt : init);
            if (o == Outcome::throttled || o == Outcome::init_error) r.billed_ms = 0;
            records.push_back(r);
            store->record(r);
        }
        const auto buckets = store->stats({"fn", since, until, step});

        // Brute force: every record, its bucket found by division from the aligned start.
        const std::int64_t step_us = 300'000'000;
        const std::int64_t first = to_unix_us(since) / step_us * step_us;
        const auto n = static_cast<std::size_t>((to_unix_us(until) - first + step_us - 1) / step_us);
        ASSERT_EQ(buckets.size(), n);
        std::vector<StatsBucket> expected(n);
        std::vector<std::vector<std::int64_t>> durations(n);
        for (const auto& r : records) {
            const std::int64_t s = to_unix_us(r.start);
            if (r.function != "fn" || r.start < since || r.start >= until) continue;
            const auto i = static_cast<std::size_t>((s - first) / step_us);
            StatsBucket& e = expected[i];
            if (r.outcome == Outcome::throttled) {
                ++e.throttles;
                continue;
            }
            ++e.invocations;
            e.errors += r.outcome == Outcome::success ? 0 : 1;
            if (r.init_duration_us) {
                ++e.cold_starts;
                e.init_duration_us_sum += *r.init_duration_us;
            }
            e.billed_ms += r.billed_ms;
            e.mb_ms += r.billed_ms * r.memory_mb;
            if (r.outcome != Outcome::init_error) durations[i].push_back(r.duration_us);
        }
        std::int64_t counted = 0;
        for (std::size_t i = 0; i < n; ++i) {
            SCOPED_TRACE("bucket " + std::to_string(i));
            EXPECT_EQ(buckets[i].start, from_unix_us(first + static_cast<std::int64_t>(i) * step_us));
            EXPECT_EQ(buckets[i].invocations, expected[i].invocations);
            EXPECT_EQ(buckets[i].errors, expected[i].errors);
            EXPECT_EQ(buckets[i].throttles, expected[i].throttles);
            EXPECT_EQ(buckets[i].cold_starts, expected[i].cold_starts);
            EXPECT_EQ(buckets[i].init_duration_us_sum, expected[i].init_duration_us_sum);
            EXPECT_EQ(buckets[i].billed_ms, expected[i].billed_ms);
            EXPECT_EQ(buckets[i].mb_ms, expected[i].mb_ms);
            ASSERT_FALSE(durations[i].empty());
            EXPECT_EQ(buckets[i].p50_us, brute_percentile(durations[i], 50));
            EXPECT_EQ(buckets[i].p90_us, brute_percentile(durations[i], 90));
            EXPECT_EQ(buckets[i].p99_us, brute_percentile(durations[i], 99));
            counted += expected[i].invocations + expected[i].throttles;
        }
        EXPECT_GT(counted, 2500) << "the random records must mostly fall in the range";
    }
}

TEST_F(InvocationHistoryTest, StatsJsonHasMoneyAndMeans) {
    StatsBucket b;
    b.start = kT0;
    b.invocations = 4;
    b.errors = 1;
    b.throttles = 2;
    b.cold_starts = 2;
    b.init_duration_us_sum = 3000;
    b.p50_us = 1500;
    b.billed_ms = 2000;
    b.mb_ms = 1024 * 1000;  // one GB-second
    const auto j = to_json(b, Prices{});
    EXPECT_EQ(j["start"], "2026-01-01T00:00:00.000Z");
    EXPECT_DOUBLE_EQ(j["init_ms_mean"].get<double>(), 1.5);
    EXPECT_DOUBLE_EQ(j["duration_ms"]["p50"].get<double>(), 1.5);
    EXPECT_TRUE(j["duration_ms"]["p90"].is_null());
    EXPECT_EQ(j["throttles"], 2);
    EXPECT_EQ(j["gb_seconds"], gb_seconds_text(1024 * 1000));
    EXPECT_EQ(j["cost_usd"], cost_usd_text(1024 * 1000, 4, Prices{}));
    b.cold_starts = 0;
    EXPECT_TRUE(to_json(b, Prices{})["init_ms_mean"].is_null());
}

TEST_F(InvocationHistoryTest, ListingIsOneFunctionsNewestFirstFilteredAndBounded) {
    auto store = open();
    for (int i = 0; i < 20; ++i) {
        auto r = make_record("r" + std::to_string(i), "fn", kT0 + seconds(i), 1000, 128,
                             i % 4 == 3 ? Outcome::throttled : i % 4 == 2 ? Outcome::function_error : Outcome::success);
        r.trace_id = "Root=1-5759e988-bd862e3fe1be46a9942727" + fmt::format("{:02}", i);
        r.trigger = i % 2 ? "async" : "api";
        store->record(r);
        store->record(make_record("o" + std::to_string(i), "other", kT0 + seconds(i), 1000, 128));
    }
    auto all = store->invocations({"fn", std::nullopt, std::nullopt, std::nullopt, 1000});
    ASSERT_EQ(all.size(), 20u) << "throttles included, the other function not";
    EXPECT_EQ(all.front().request_id, "r19");
    EXPECT_EQ(all.back().request_id, "r0");
    EXPECT_EQ(all.front().outcome, Outcome::throttled);
    EXPECT_EQ(all.front().trace_id, "Root=1-5759e988-bd862e3fe1be46a994272719");
    EXPECT_EQ(all.front().trigger, "async");

    auto window = store->invocations({"fn", kT0 + seconds(5), kT0 + seconds(10), std::nullopt, 1000});
    EXPECT_EQ(ids(window), (std::vector<std::string>{"r9", "r8", "r7", "r6", "r5"}));
    auto errors = store->invocations({"fn", std::nullopt, std::nullopt, Outcome::function_error, 1000});
    EXPECT_EQ(errors.size(), 5u);
    for (const auto& r : errors) EXPECT_EQ(r.outcome, Outcome::function_error);
    EXPECT_EQ(ids(store->invocations({"fn", std::nullopt, std::nullopt, std::nullopt, 3})),
              (std::vector<std::string>{"r19", "r18", "r17"}));

    // Throttles never ran: not in the usage records nor the totals (nor billed).
    EXPECT_EQ(store->records("fn", 1000).size(), 15u);
    EXPECT_EQ(store->report({"fn", {}, {}}).total.invocations, 15);
}

TEST_F(InvocationHistoryTest, TraceIdAndTriggerSurviveTheJournalAndARestart) {
    auto r = make_record("req-t", "fn", kT0, 1000, 128);
    r.trace_id = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    r.trigger = "schedule";
    const std::string line = line_of(r);
    EXPECT_EQ(nlohmann::json::parse(line), to_json(r));
    EXPECT_EQ(line, to_json(r).dump() + "\n");
    // As a daemon killed before its flush leaves it: only in a journal segment.
    write_segment(1, line);
    auto store = open();
    auto got = store->invocations({"fn", std::nullopt, std::nullopt, std::nullopt, 10});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].trace_id, r.trace_id);
    EXPECT_EQ(got[0].trigger, "schedule");
    // A record without them (from before) reads back with none.
    auto old = to_json(make_record("req-old", "fn", kT0, 1, 128));
    old.erase("trace_id");
    old.erase("trigger");
    auto back = usage_record_from_json(old);
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->trace_id.empty());
    EXPECT_TRUE(to_json(*back)["trace_id"].is_null());
}

TEST_F(InvocationHistoryTest, UsageTableFromBeforeTraceIdsIsMigrated) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw,
                           "CREATE TABLE usage(request_id TEXT NOT NULL, function TEXT NOT NULL, version INTEGER NOT "
                           "NULL, start_us INTEGER NOT NULL, duration_us INTEGER NOT NULL, billed_ms INTEGER NOT NULL, "
                           "memory_mb INTEGER NOT NULL, max_memory_used_mb INTEGER NOT NULL, init_duration_us INTEGER, "
                           "outcome TEXT NOT NULL, PRIMARY KEY (start_us, request_id));"
                           "CREATE INDEX usage_function_start ON usage(function, start_us);"
                           "INSERT INTO usage VALUES('old-1', 'fn', 1, 500000, 1000, 1, 128, 20, NULL, 'success');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
    auto store = open();
    auto r = make_record("new-1", "fn", from_unix_us(900'000), 1000, 128);
    r.trace_id = "Root=1-5759e988-bd862e3fe1be46a994272793";
    r.trigger = "url";
    store->record(r);
    auto got = store->invocations({"fn", std::nullopt, std::nullopt, std::nullopt, 10});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].trace_id, r.trace_id);
    EXPECT_EQ(got[0].trigger, "url");
    EXPECT_EQ(got[1].request_id, "old-1");
    EXPECT_TRUE(got[1].trace_id.empty());
    store.reset();
    EXPECT_NO_THROW(open()) << "opening a migrated table again";
}

template <class F>
std::string bad_request(F&& f) {
    try {
        f();
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
        return e.what();
    }
    ADD_FAILURE() << "accepted";
    return {};
}

TEST(InvocationHistoryParams, Step) {
    EXPECT_EQ(parse_stats_step("60s"), seconds(60));
    EXPECT_EQ(parse_stats_step("60"), seconds(60));
    EXPECT_EQ(parse_stats_step("5m"), seconds(300));
    EXPECT_EQ(parse_stats_step("1h"), seconds(3600));
    EXPECT_EQ(parse_stats_step("1d"), seconds(86400));
    EXPECT_EQ(parse_stats_step("1s"), seconds(1));
    for (const char* bad : {"", "0s", "-5s", "s", "60x", "1.5m", "2d", "86401s", "99999999999999999999s", " 60s", "60 s"})
        EXPECT_NE(bad_request([&] { parse_stats_step(bad); }).find("step must be"), std::string::npos) << bad;
}

TEST(InvocationHistoryParams, Listing) {
    auto q = parse_invocation_query("fn", api::parse_target("/v1/functions/fn/invocations"));
    EXPECT_EQ(q.limit, 100);
    EXPECT_FALSE(q.since);
    EXPECT_FALSE(q.outcome);
    q = parse_invocation_query("fn", api::parse_target("/v1/functions/fn/invocations?since=2026-01-01T00:00:00Z&"
                                                       "until=2026-01-02T00:00:00Z&outcome=throttled&limit=1000"));
    EXPECT_EQ(q.since, kT0);
    EXPECT_EQ(q.until, kT0 + std::chrono::hours(24));
    EXPECT_EQ(q.outcome, Outcome::throttled);
    EXPECT_EQ(q.limit, 1000);
    auto bad = [](const std::string& query) {
        return bad_request([&] { parse_invocation_query("fn", api::parse_target("/v1/functions/fn/invocations?" + query)); });
    };
    EXPECT_NE(bad("limit=0").find("limit"), std::string::npos);
    EXPECT_NE(bad("limit=1001").find("limit"), std::string::npos);
    EXPECT_NE(bad("limit=ten").find("limit"), std::string::npos);
    EXPECT_NE(bad("outcome=failed").find("outcome must be one of"), std::string::npos);
    EXPECT_NE(bad("since=yesterday").find("since must be an RFC 3339 time"), std::string::npos);
    EXPECT_NE(bad("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z").find("must be before until"),
              std::string::npos);
    EXPECT_NE(bad("since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z").find("must be before until"),
              std::string::npos);
    EXPECT_NE(bad("functon=fn").find("functon"), std::string::npos);
}

TEST(InvocationHistoryParams, Stats) {
    const SystemTime now = kT0 + std::chrono::hours(5);
    auto q = parse_stats_query("fn", api::parse_target("/v1/functions/fn/stats"), now);
    EXPECT_EQ(q.until, now);
    EXPECT_EQ(q.since, now - std::chrono::hours(1));
    EXPECT_EQ(q.step, seconds(60));
    q = parse_stats_query("fn", api::parse_target("/v1/functions/fn/stats?since=2026-01-01T00:00:00Z&step=1h"), now);
    EXPECT_EQ(q.since, kT0);
    EXPECT_EQ(q.until, now);
    EXPECT_EQ(q.step, seconds(3600));
    // 1440 steps are answered, 1441 are not.
    EXPECT_NO_THROW(parse_stats_query(
        "fn", api::parse_target("/v1/functions/fn/stats?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z&step=1m"),
        now));
    auto bad = [&](const std::string& query) {
        return bad_request([&] { parse_stats_query("fn", api::parse_target("/v1/functions/fn/stats?" + query), now); });
    };
    EXPECT_NE(bad("since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:01Z&step=1m").find("at most 1440"),
              std::string::npos);
    EXPECT_NE(bad("step=0").find("step must be"), std::string::npos);
    EXPECT_NE(bad("since=2026-01-01T06:00:00Z").find("must be before until"), std::string::npos) << "since after now";
    EXPECT_NE(bad("until=junk").find("until must be an RFC 3339 time"), std::string::npos);
    EXPECT_NE(bad("limit=5").find("limit"), std::string::npos);
}

}  // namespace
}  // namespace funcd
