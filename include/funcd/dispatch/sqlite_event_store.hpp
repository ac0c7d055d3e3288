#pragma once
// EventStore on the single host's SQLite database (funcd.db): async_events, dead_letters,
// event_configs. Every event is this node's; there is nothing to claim or rescue.
#include <filesystem>
#include <mutex>

#include "funcd/dispatch/event_store.hpp"
#include "funcd/registry/sqlite.hpp"

namespace funcd {

class SqliteEventStore final : public EventStore {
public:
    explicit SqliteEventStore(const std::filesystem::path& db_path);

    bool shared() const override { return false; }
    void enqueue(const AsyncEvent& e) override;
    std::vector<AsyncEvent> take_pending() override;
    void renew_claims() override {}
    std::vector<AsyncEvent> rescue(std::size_t) override { return {}; }
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
    void insert_event(const AsyncEvent& e);

    std::mutex mutex_;
    sqlite::Database db_;
};

}  // namespace funcd
