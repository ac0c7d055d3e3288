#pragma once
// SharedUsageLedger in the PostgreSQL database nodes share (funcd_usage). A thread of its own
// ships this node's records from its SQLite ledger every kShipInterval (and a query ships
// first, see UsageStore); where it got to is kept in that database (usage_shipped), so a
// restart goes on from there, and a batch shipped again counts once (the key).
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "funcd/metering/shared_usage_ledger.hpp"
#include "funcd/registry/sqlite.hpp"
#include "funcd/state/pg_session.hpp"

namespace funcd {

class PostgresUsageLedger final : public SharedUsageLedger {
public:
    // `local_db`: this node's SQLite database, whose `usage` table UsageStore fills.
    // Connects now (throws PgError). Call start() to ship in the background.
    PostgresUsageLedger(std::string conninfo, std::string node_id, const std::filesystem::path& local_db);
    ~PostgresUsageLedger() override;

    void start();
    void stop();

    void ship(std::chrono::steady_clock::time_point deadline) override;
    UsageReport report(const UsageQuery& q) override;
    std::vector<UsageRecord> records(const std::optional<std::string>& function, int limit) override;
    std::vector<UsageRecord> invocations(const InvocationQuery& q) override;
    std::vector<UsageRecord> trace_invocations(std::string_view root, const std::optional<std::string>& function,
                                               int limit) override;
    std::vector<StatsBucket> stats(const StatsQuery& q) override;
    std::int64_t apply_retention(SystemTime cutoff) override;

private:
    // Ships one batch; false when there was nothing to ship. Under ship_mutex_.
    bool ship_batch();

    PgSession session_;
    const std::string node_id_;
    std::timed_mutex ship_mutex_;  // one shipper at a time; guards local_
    sqlite::Database local_;
    std::mutex wait_mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread shipper_;
};

}  // namespace funcd
