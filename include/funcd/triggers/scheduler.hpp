#pragma once
// Fires schedules: each enabled schedule queues an asynchronous invocation of its
// function at every time its expression names (UTC). Fires missed while the daemon was
// down are not replayed: after a start, the next fire is the first one after now.
// Runs on the loop.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/system_timer.hpp>

#include "funcd/dispatch/async_invoker.hpp"
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
    Scheduler(boost::asio::io_context& io, AsyncInvoker& invoker, std::string region, std::string account_id);

    // Adds or replaces a schedule (its expression already validated).
    void set(ScheduleDefinition definition);
    void remove(const std::string& function, const std::string& name);
    void function_deleted(const std::string& function);

    std::vector<ScheduleStatus> list(const std::string& function) const;
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
    static ScheduleStatus status(const Entry& e);

    boost::asio::io_context& io_;
    AsyncInvoker& invoker_;
    std::string region_;
    std::string account_id_;
    std::map<Key, Entry> entries_;
};

}  // namespace funcd
