#pragma once
// Durable state of asynchronous invocations in SQLite: queued events, dead letters, and
// each function's event config. An event is committed before its caller hears 202 and
// deleted only after it was handled, so an accepted event survives a crash (at least
// once). Thread-safe; every call may wait on disk, so the loop calls it through the
// blocking pool (start-up aside).
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/dispatch/event_config.hpp"
#include "funcd/registry/sqlite.hpp"

namespace funcd {

struct AsyncEvent {
    std::string id;  // the request id, the same for every attempt
    std::string function;
    std::string payload;
    SystemTime received;
    SystemTime next_attempt;
    int attempts = 0;   // attempts that ran and failed
    int throttles = 0;  // attempts refused by a limit (not counted as retries)
    nlohmann::json errors = nlohmann::json::array();  // one entry per failed attempt
    std::string source;  // "api", "schedule:<name>", "file:<trigger>", "destination:<function>"
    // Every attempt and the destination's event carry it; empty only for events queued by
    // an earlier version (a new one is made at each delivery then).
    std::string trace_id;
};

struct DeadLetter {
    AsyncEvent event;
    SystemTime failed;
    std::string reason;  // RetriesExhausted, EventAgeExceeded
};

class EventStore {
public:
    explicit EventStore(const std::filesystem::path& db_path);

    void enqueue(const AsyncEvent& e);
    std::vector<AsyncEvent> pending();
    // Saves a retry's new state.
    void update(const AsyncEvent& e);
    // The event is done: removed, and `follow_up` (a destination's event) queued, in one
    // transaction.
    void complete(const std::string& id, const std::optional<AsyncEvent>& follow_up);
    // The event failed for good: moved to the dead letters, `follow_up` queued.
    void dead_letter(const DeadLetter& d, const std::optional<AsyncEvent>& follow_up);

    // Newest first.
    std::vector<DeadLetter> dead_letters(const std::optional<std::string>& function, int limit);
    // Moves a dead letter back into the queue as a fresh event (attempts and age reset).
    std::optional<AsyncEvent> redrive(const std::string& id, SystemTime now);
    bool delete_dead_letter(const std::string& id);
    // Removes dead letters that failed before `before`; returns how many.
    std::size_t purge_dead_letters(SystemTime before);

    // The function was deleted: its queued events and its config go (dead letters stay).
    void drop_function(const std::string& function);

    std::optional<EventConfig> event_config(const std::string& function);
    std::vector<std::pair<std::string, EventConfig>> event_configs();
    void put_event_config(const std::string& function, const EventConfig& c);
    void delete_event_config(const std::string& function);

private:
    void insert_event(const AsyncEvent& e);

    std::mutex mutex_;
    sqlite::Database db_;
};

}  // namespace funcd
