#pragma once
// Durable state of asynchronous invocations: queued events, dead letters, and each
// function's event config. An event is committed before its caller hears 202 and deleted
// only after it was handled, so an accepted event survives a crash (at least once). One
// interface, two backends: SQLite on a single host (sqlite_event_store.hpp), PostgreSQL
// shared by nodes (postgres_event_store.hpp), where each event is claimed by the node that
// delivers it and rescued by another when that node stops renewing its claim;
// tests/state/event_store_conformance.hpp holds them to the same behaviour.
//
// Thread-safe; every call may wait on disk or the network, so the loop calls it through the
// blocking pool (start-up aside).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/dispatch/event_config.hpp"

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
    virtual ~EventStore() = default;

    // Whether other nodes share the store: then this node renews its claims and rescues
    // theirs (AsyncInvoker does, every few seconds), and reads their event configs again.
    virtual bool shared() const = 0;

    // Queues `e`, claimed by this node.
    virtual void enqueue(const AsyncEvent& e) = 0;
    // At start: the events this node is to deliver (claimed for it), oldest first.
    virtual std::vector<AsyncEvent> take_pending() = 0;
    // Renews this node's claim on its events (shared stores; else nothing to do).
    virtual void renew_claims() = 0;
    // Claims up to `limit` events of nodes that stopped renewing their claims, oldest first
    // (shared stores; else none): a dead node's events are delivered by the others.
    virtual std::vector<AsyncEvent> rescue(std::size_t limit) = 0;

    // Saves a retry's new state.
    virtual void update(const AsyncEvent& e) = 0;
    // The event is done: removed, and `follow_up` (a destination's event) queued, in one
    // transaction.
    virtual void complete(const std::string& id, const std::optional<AsyncEvent>& follow_up) = 0;
    // The event failed for good: moved to the dead letters, `follow_up` queued.
    virtual void dead_letter(const DeadLetter& d, const std::optional<AsyncEvent>& follow_up) = 0;

    // Newest first.
    virtual std::vector<DeadLetter> dead_letters(const std::optional<std::string>& function, int limit) = 0;
    // Moves a dead letter back into the queue as a fresh event (attempts and age reset).
    virtual std::optional<AsyncEvent> redrive(const std::string& id, SystemTime now) = 0;
    virtual bool delete_dead_letter(const std::string& id) = 0;
    // Removes dead letters that failed before `before`; returns how many.
    virtual std::size_t purge_dead_letters(SystemTime before) = 0;

    // The function was deleted: its queued events and its config go (dead letters stay).
    virtual void drop_function(const std::string& function) = 0;

    virtual std::optional<EventConfig> event_config(const std::string& function) = 0;
    virtual std::vector<std::pair<std::string, EventConfig>> event_configs() = 0;
    virtual void put_event_config(const std::string& function, const EventConfig& c) = 0;
    virtual void delete_event_config(const std::string& function) = 0;
};

}  // namespace funcd
