#pragma once
// Asynchronous invocations: events accepted durably (EventStore) and delivered by the
// dispatcher under the same limits, metering and logs as synchronous calls. A function
// error or timeout is retried per the function's event config; a throttle is retried with
// backoff until the event is too old; an event that fails for good becomes a dead letter.
// On success or failure a destination function can receive a Lambda-style record.
// Runs on the loop; the store is reached through the blocking pool.
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/dispatch/event_store.hpp"

namespace funcd {

// Where an asynchronous event goes: "name" (what an unqualified /v1 invocation runs) or
// "name:qualifier" ($LATEST, a version or an alias).
struct AsyncTarget {
    std::string name;
    std::optional<std::string> qualifier;
};

AsyncTarget parse_async_target(std::string_view target);

struct AsyncQueueStats {
    std::size_t depth = 0;                   // queued, in flight included
    std::optional<double> oldest_age_s;      // age of the oldest queued event
};

class AsyncInvoker {
public:
    // Called on the loop once the event is committed (request id) or could not be (error).
    using Accepted = std::function<void(std::string request_id, std::exception_ptr error)>;

    AsyncInvoker(boost::asio::io_context& io, boost::asio::thread_pool& blocking, EventStore& store,
                 Dispatcher& dispatcher, Registry& registry, std::string function_arn_prefix);

    // Loads what was queued before a restart, and the event configs. Call once, before the loop runs.
    void start();
    // Stops delivering (shutdown); queued events stay in the store.
    void stop();

    // `target`: see AsyncTarget.
    void submit(std::string target, std::string payload, std::string source, Accepted accepted);
    // An event already committed to the store (a redriven dead letter).
    void add(AsyncEvent e);

    // Every queued event of the function, whatever its qualifier.
    AsyncQueueStats stats(const std::string& function) const;
    // What applies to events for `target`: its own config, else the function's, else the defaults.
    EventConfig config(const std::string& target) const;
    // The config set for exactly `target`, if any.
    std::optional<EventConfig> own_config(const std::string& target) const;
    // The targets of `function` with a config of their own.
    std::vector<std::string> configured_targets(const std::string& function) const;
    // After the store committed a change (nullopt: deleted, defaults apply).
    void set_config(const std::string& target, std::optional<EventConfig> config);
    // After the store dropped the function's events and configs (all its qualifiers).
    void function_deleted(const std::string& function);

private:
    using Clock = std::chrono::system_clock;

    void deliver_due();
    void post_deliver();
    void schedule();
    void on_result(const std::string& id, const InvocationResult& r);
    void reschedule(AsyncEvent& e, Clock::time_point next);
    void complete(const std::string& id, const InvocationResult& r);
    void fail(const std::string& id, const std::string& reason, const InvocationResult* last);
    std::optional<AsyncEvent> follow_up(const AsyncEvent& e, const std::optional<std::string>& destination,
                                        const std::string& condition, const InvocationResult* last) const;

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    EventStore& store_;
    Dispatcher& dispatcher_;
    Registry& registry_;
    std::string arn_prefix_;  // "arn:aws:lambda:<region>:<account>:function:"

    std::map<std::string, AsyncEvent> events_;                    // every queued event, by id
    std::set<std::pair<Clock::time_point, std::string>> due_;     // queued and not in flight
    std::map<std::string, int, std::less<>> in_flight_;           // per function
    std::map<std::string, std::string> delivering_;               // event id -> the function whose slot it holds
    std::map<std::string, EventConfig, std::less<>> configs_;
    boost::asio::system_timer timer_;
    bool deliver_posted_ = false;
    bool stopped_ = false;
};

}  // namespace funcd
