#pragma once
// EventStore in the PostgreSQL database nodes share (funcd_async_events, funcd_dead_letters,
// funcd_event_configs, funcd_leases; pg_migrator.cpp). Each queued event names the node that
// delivers it (`owner`). A node holds a lease ("node:<id>" in funcd_leases) that it renews
// every few seconds; once a node's lease has expired (it died, or lost the database for
// longer than the lease), another node claims its events with FOR UPDATE SKIP LOCKED, so two
// rescuers never take the same event. Delivery is at least once: a node that comes back
// after its events were rescued may deliver one again, under the same request id.
#include <chrono>
#include <string>

#include "funcd/dispatch/event_store.hpp"
#include "funcd/state/pg_session.hpp"

namespace funcd {

class PostgresEventStore final : public EventStore {
public:
    // Connects now (throws PgError). The schema must be migrated. `lease`: how long a node's
    // claim lasts without renewal (renew_claims), measured by the database's clock.
    PostgresEventStore(std::string conninfo, std::string node_id, std::chrono::seconds lease);

    bool shared() const override { return true; }
    void enqueue(const AsyncEvent& e) override;
    std::vector<AsyncEvent> take_pending() override;
    void renew_claims() override;
    std::vector<AsyncEvent> rescue(std::size_t limit) override;
    void update(const AsyncEvent& e) override;
    void complete(const std::string& id, const std::optional<AsyncEvent>& follow_up) override;
    void dead_letter(const DeadLetter& d, const std::optional<AsyncEvent>& follow_up) override;
    std::vector<DeadLetter> dead_letters(const std::optional<std::string>& function, int limit) override;
    std::optional<AsyncEvent> redrive(const std::string& id, SystemTime now) override;
    bool delete_dead_letter(const std::string& id) override;
    std::size_t purge_dead_letters(SystemTime before) override;
    void drop_function(const std::string& function) override;
    std::optional<EventConfig> event_config(const std::string& function) override;
    std::vector<std::pair<std::string, EventConfig>> event_configs() override;
    void put_event_config(const std::string& function, const EventConfig& c) override;
    void delete_event_config(const std::string& function) override;

private:
    void insert_event(PgConnection& conn, const AsyncEvent& e);
    void renew(PgConnection& conn);

    PgSession session_;
    const std::string node_id_;
    const std::chrono::seconds lease_;
};

}  // namespace funcd
