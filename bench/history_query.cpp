// How long a function's per-step statistics and invocation listing take over a large
// usage ledger. Fills a scratch database with RECORDS records of the measured function,
// spread evenly over a day, and as many of other functions interleaved with them (the
// (function, start) index must skip those), then times, each REPEAT times (median):
//   - stats over the whole day in 1-minute steps (1,440 steps, every record of the function),
//   - stats over one hour in 1-minute steps,
//   - the listing of the newest 1,000 invocations,
// and, as the baseline in the same run, the bare SQL scan of the day's rows the stats read
// (the same columns through the same index, nothing computed): the stats' cost over it is
// the ratio printed.
//
//   history-query [--records N] [--repeat N]
#include <sqlite3.h>
#include <stdlib.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "funcd/metering/usage_store.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double median_ms(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <class F>
double time_ms(F&& f) {
    const auto t0 = Clock::now();
    f();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::int64_t records = 1'000'000;
    int repeat = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--records")) records = std::atoll(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
    }
    spdlog::set_level(spdlog::level::warn);
    std::string tmpl = (fs::temp_directory_path() / "funcd-history-bench-XXXXXX").string();
    const fs::path dir = ::mkdtemp(tmpl.data());
    const fs::path db_path = dir / "funcd.db";
    // The store creates its schema; the rows go in through SQLite directly, in one
    // transaction (filling a million through the journal would measure the journal).
    { funcd::UsageStore create(db_path, dir / "usage.journal"); }

    const std::int64_t day_us = 86'400'000'000;
    const std::int64_t t0 = 1'767'225'600'000'000;  // 2026-01-01T00:00:00Z
    {
        sqlite3* db = nullptr;
        check(sqlite3_open(db_path.c_str(), &db), db, "open");
        check(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db, "begin");
        sqlite3_stmt* ins = nullptr;
        check(sqlite3_prepare_v2(db,
                                 "INSERT INTO usage(request_id, function, version, start_us, duration_us, billed_ms, "
                                 "memory_mb, max_memory_used_mb, init_duration_us, outcome, trace_id, trigger) "
                                 "VALUES(?1, ?2, 1, ?3, ?4, ?5, 128, 20, ?6, ?7, ?8, 'api')",
                                 -1, &ins, nullptr),
              db, "prepare");
        std::mt19937_64 rng(1);
        const char* outcomes[] = {"success", "success", "success", "success", "success",
                                  "success", "success", "function_error", "timeout", "throttled"};
        for (std::int64_t i = 0; i < 2 * records; ++i) {
            const bool measured = i % 2 == 0;
            const std::int64_t start = t0 + (i / 2) * (day_us / records);
            const std::int64_t duration = std::uniform_int_distribution<std::int64_t>(100, 2'000'000)(rng);
            const std::string id = "req-" + std::to_string(i);
            sqlite3_bind_text(ins, 1, id.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, measured ? "measured" : "other", -1, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 3, start);
            sqlite3_bind_int64(ins, 4, duration);
            sqlite3_bind_int64(ins, 5, (duration + 999) / 1000);
            if (i % 20 == 0) sqlite3_bind_int64(ins, 6, 150'000);
            else sqlite3_bind_null(ins, 6);
            sqlite3_bind_text(ins, 7, outcomes[i % 10], -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 8, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0", -1,
                              SQLITE_STATIC);
            check(sqlite3_step(ins), db, "insert");
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
        check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
        sqlite3_close(db);
    }

    funcd::UsageStoreOptions options;
    options.limits.storage_timeout = std::chrono::minutes(5);  // measured, not cut short
    funcd::UsageStore store(db_path, dir / "usage.journal", options);
    const auto since = funcd::from_unix_us(t0);
    std::vector<double> day, hour, listing, scan;
    std::int64_t counted = 0;
    for (int r = 0; r < repeat; ++r) {
        day.push_back(time_ms([&] {
            counted = 0;
            for (const auto& b : store.stats({"measured", since, since + std::chrono::hours(24), std::chrono::seconds(60)}))
                counted += b.invocations + b.throttles;
        }));
        hour.push_back(time_ms([&] {
            store.stats({"measured", since + std::chrono::hours(12), since + std::chrono::hours(13), std::chrono::seconds(60)});
        }));
        listing.push_back(time_ms([&] {
            store.invocations({"measured", std::nullopt, std::nullopt, std::nullopt, 1000});
        }));
        scan.push_back(time_ms([&] {
            sqlite3* db = nullptr;
            sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
            sqlite3_stmt* q = nullptr;
            sqlite3_prepare_v2(db,
                               "SELECT start_us, duration_us, billed_ms, memory_mb, init_duration_us, outcome FROM "
                               "usage WHERE function = 'measured' AND start_us >= ?1 AND start_us < ?2",
                               -1, &q, nullptr);
            sqlite3_bind_int64(q, 1, t0);
            sqlite3_bind_int64(q, 2, t0 + day_us);
            std::int64_t sum = 0;
            while (sqlite3_step(q) == SQLITE_ROW) sum += sqlite3_column_int64(q, 1);
            sqlite3_finalize(q);
            sqlite3_close(db);
            if (sum == 42) std::puts("");
        }));
    }
    std::printf("records of the measured function: %lld (and as many of another), counted by the stats: %lld\n",
                static_cast<long long>(records), static_cast<long long>(counted));
    std::printf("stats, 1 day in 1-minute steps:  %8.1f ms (median of %d)\n", median_ms(day), repeat);
    std::printf("stats, 1 hour in 1-minute steps: %8.1f ms\n", median_ms(hour));
    std::printf("listing, newest 1000:            %8.1f ms\n", median_ms(listing));
    std::printf("bare scan of the day's rows:     %8.1f ms; stats / scan = %.2f\n", median_ms(scan),
                median_ms(day) / median_ms(scan));
    store.stop();
    fs::remove_all(dir);
    return 0;
}
