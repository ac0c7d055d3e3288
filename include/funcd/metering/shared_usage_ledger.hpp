#pragma once
// The usage ledger nodes share (--state postgres://): every node's records, summed and
// listed across nodes. Each node still makes its records durable locally first (the
// journal, then its own SQLite ledger, usage_store.hpp) and ships them from there in
// batches, so a node that loses the shared database loses no record: it ships them once the
// database is back. A record is keyed by its start and request id, the same key as in the
// local ledger, so shipping a batch twice (a crash between shipping and noting it) counts
// nothing twice.
//
// Calls block on the database: never the loop.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "funcd/metering/invocation_stats.hpp"
#include "funcd/metering/usage_record.hpp"
#include "funcd/metering/usage_store.hpp"

namespace funcd {

// Adds one function's totals to a report: its row, and the grand total. Both ledgers build
// their reports with it.
inline void add_function_totals(UsageReport& report, UsageTotals t) {
    report.total.invocations += t.invocations;
    report.total.errors += t.errors;
    report.total.cold_starts += t.cold_starts;
    report.total.duration_us += t.duration_us;
    report.total.billed_ms += t.billed_ms;
    report.total.mb_ms += t.mb_ms;
    report.functions.push_back(std::move(t));
}

class SharedUsageLedger {
public:
    virtual ~SharedUsageLedger() = default;

    // Ships what this node committed locally and has not shipped yet. Throws
    // ApiError::storage_unavailable (503) when that cannot be done by `deadline`.
    virtual void ship(std::chrono::steady_clock::time_point deadline) = 0;

    // As UsageStore's queries, over every node's records.
    virtual UsageReport report(const UsageQuery& q) = 0;
    virtual std::vector<UsageRecord> records(const std::optional<std::string>& function, int limit) = 0;
    virtual std::vector<UsageRecord> invocations(const InvocationQuery& q) = 0;
    virtual std::vector<UsageRecord> trace_invocations(std::string_view root,
                                                       const std::optional<std::string>& function, int limit) = 0;
    virtual std::vector<StatsBucket> stats(const StatsQuery& q) = 0;
    // Deletes this node's records that started before `cutoff`; returns how many.
    virtual std::int64_t apply_retention(SystemTime cutoff) = 0;
};

}  // namespace funcd
