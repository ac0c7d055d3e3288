#pragma once
// The seam between an event source mapping (batching, invoking, retrying, checkpointing)
// and the database it reads changes from. The PostgreSQL implementation streams a logical
// replication slot; tests of the mapping's delivery rules use a scripted one.
//
// Pull model, so that a mapping whose function is slow or throttled holds the database
// back instead of the daemon's memory: the source buffers at most a bounded number of
// changes and reads no further until the mapping asks for more. Everything runs on the
// daemon's loop; handlers are called on it, never inline from the call that asked.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "funcd/event_sources/row_change.hpp"

namespace funcd {

struct ChangeSourceStatus {
    bool connected = false;
    std::string last_error;                        // why the last connection failed or ended; empty when none
    std::optional<std::uint64_t> server_wal_end;   // the newest WAL position the server reported
    std::optional<std::uint64_t> last_received;    // the newest change position read from the stream
    // What the server may forget: the acknowledged commits, and, when nothing read is waiting
    // for the mapping, everything up to the server's last report (WAL of other tables).
    std::optional<std::uint64_t> confirmed;
    std::optional<std::chrono::system_clock::time_point> last_commit_time;  // of the newest change read
};

class ChangeSource {
public:
    using ReadHandler = std::function<void(std::error_code, std::vector<RowChange>)>;

    virtual ~ChangeSource() = default;

    // Starts reading (connecting, and reconnecting with backoff after a failure) with the
    // first change after `after`: changes at or before it were delivered already and are
    // skipped, even when the server sends them again.
    virtual void start(ChangePosition after) = 0;

    // Completes once at least one change is buffered, with up to `max_changes` of them in
    // order; or with an error when the source is stopped. One read outstanding at a time.
    virtual void read(std::size_t max_changes, ReadHandler handler) = 0;

    // Every transaction that commits at or before `commit_lsn` was delivered: the server
    // may forget it (PostgreSQL: the slot's confirmed flush position).
    virtual void acknowledge(std::uint64_t commit_lsn) = 0;

    virtual ChangeSourceStatus status() const = 0;

    // Ends reading; an outstanding read completes with operation_aborted.
    virtual void stop() = 0;
};

}  // namespace funcd
