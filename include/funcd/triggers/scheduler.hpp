#pragma once
// Fires schedules: each enabled schedule queues an asynchronous invocation of its
// function at every time its expression names (UTC). Fires missed while the daemon was
// down are not replayed: after a start, the next fire is the first one after now.
//
// Every node runs the same timers, and a fire happens once across them: the node holding the
// "scheduler" lease (the leader) takes each fire at its time, and the store's unique key on
// (schedule, fire time) lets only the first taker queue the event (TriggerStore::claim_fire).
// The others ask for it kFollowerDelay later, so a tick whose leader died is still fired.
// On a single host this node always leads. Runs on the loop; the store is reached through
// the blocking pool.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/state/lease_store.hpp"
#include "funcd/triggers/schedule_expression.hpp"
#include "funcd/triggers/trigger_store.hpp"

namespace funcd {

struct ScheduleStatus {
    ScheduleDefinition definition;
    std::optional<std::chrono::system_clock::time_point> next_fire;
    std::optional<std::chrono::system_clock::time_point> last_fire;
};

class Scheduler {
public:
    Scheduler(boost::asio::io_context& io, boost::asio::thread_pool& blocking, AsyncInvoker& invoker,
              TriggerStore& store, LeaseStore& leases, std::string node_id, std::string region,
              std::string account_id);

    // Starts taking and renewing the leadership. Call once the loop is about to run.
    void start();
    // Stops firing; the leadership, when held, is given up.
    void stop();

    // Adds or replaces a schedule (its expression already validated).
    void set(ScheduleDefinition definition);
    void remove(const std::string& function, const std::string& name);
    void function_deleted(const std::string& function);

    std::vector<ScheduleStatus> list(const std::string& function) const;
    // Every schedule's definition (to compare with the store's).
    std::vector<ScheduleDefinition> definitions() const;
    std::optional<ScheduleStatus> get(const std::string& function, const std::string& name) const;

    // The event a schedule without `input` sends: EventBridge's "Scheduled Event".
    nlohmann::json scheduled_event(const ScheduleDefinition& s, std::chrono::system_clock::time_point at) const;

private:
    using Key = std::pair<std::string, std::string>;  // function, name
    struct Entry {
        ScheduleDefinition definition;
        ScheduleExpression expression;
        std::optional<std::chrono::system_clock::time_point> next_fire;
        std::optional<std::chrono::system_clock::time_point> last_fire;
        std::unique_ptr<boost::asio::system_timer> timer;
    };

    void arm(const Key& key, Entry& e);
    void fire(const Key& key);
    // Asks the store for the fire at `at` and queues the event if this node got it.
    void take_fire(const ScheduleDefinition& definition, std::chrono::system_clock::time_point at);
    void renew_leadership();
    static ScheduleStatus status(const Entry& e);

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    AsyncInvoker& invoker_;
    TriggerStore& store_;
    LeaseStore& leases_;
    std::string node_id_;
    std::string region_;
    std::string account_id_;
    std::map<Key, Entry> entries_;
    bool leader_ = false;
    bool stopped_ = false;
    boost::asio::steady_timer lease_timer_;
};

}  // namespace funcd
