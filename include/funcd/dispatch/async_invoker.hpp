#pragma once
// Asynchronous invocations: events accepted durably (EventStore) and delivered by the
// dispatcher under the same limits, metering and logs as synchronous calls. A function
// error or timeout is retried per the function's event config; a throttle is retried with
// backoff until the event is too old; an event that fails for good becomes a dead letter.
// On success or failure a destination function can receive a Lambda-style record.
// Each function has its own queue, bounded (AsyncLimits::queue_depth_per_function: more
// Event invocations are refused 429) and with its own cap of deliveries in flight, so a
// deep backlog of one function costs the others nothing and delivery does work in
// proportion to the events delivered, not to the backlog.
// Runs on the loop; the store is reached through the blocking pool. With a store other
// nodes share, every kClaimInterval it renews its claim on its events, takes over those of
// nodes whose claims expired, and reads the event configs again (others may have changed them).
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/async_limits.hpp"
#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/dispatch/event_store.hpp"
#include "funcd/observe/metrics.hpp"

namespace funcd {

// Where an asynchronous event goes: "name" (what an unqualified /v1 invocation runs) or
// "name:qualifier" ($LATEST, a version or an alias).
struct AsyncTarget {
    std::string name;
    std::optional<std::string> qualifier;
};

AsyncTarget parse_async_target(std::string_view target);

// What became of a submitted event.
class AcceptResult {
public:
    enum class Kind { accepted, queue_full, storage_full, store_unavailable, not_stored };

    static AcceptResult accepted(std::string request_id, std::string trace_id) {
        AcceptResult r{Kind::accepted, std::move(request_id), {}};
        r.trace_id_ = std::move(trace_id);
        return r;
    }
    // The function's queue holds its limit of undelivered events (Lambda's 429 shape).
    static AcceptResult queue_full(std::string message) { return {Kind::queue_full, {}, std::move(message)}; }
    // The store could not commit it (it was not accepted): the disk is full, or another failure.
    static AcceptResult storage_full(std::string message) { return {Kind::storage_full, {}, std::move(message)}; }
    // The store cannot be reached now (the shared database is down): nothing was queued,
    // and the caller may send it again, to this node or another (503).
    static AcceptResult store_unavailable(std::string message) {
        return {Kind::store_unavailable, {}, std::move(message)};
    }
    static AcceptResult not_stored(std::string message) { return {Kind::not_stored, {}, std::move(message)}; }

    bool ok() const { return kind_ == Kind::accepted; }
    Kind kind() const { return kind_; }
    const std::string& request_id() const { return request_id_; }
    // The trace id every attempt of the accepted event carries.
    const std::string& trace_id() const { return trace_id_; }
    const std::string& message() const { return message_; }

private:
    AcceptResult(Kind kind, std::string id, std::string message)
        : kind_(kind), request_id_(std::move(id)), message_(std::move(message)) {}
    Kind kind_;
    std::string request_id_;
    std::string message_;
    std::string trace_id_;
};

// Lambda's Reason for a refused Event invocation whose function's queue is full.
inline constexpr std::string_view kQueueFullReason = "AsyncQueueDepthExceeded";

struct AsyncQueueStats {
    std::size_t depth = 0;                   // queued, in flight included
    std::optional<double> oldest_age_s;      // age of the oldest queued event
};

class AsyncInvoker {
public:
    // Called on the loop, later, with what became of the event.
    using Accepted = std::function<void(const AcceptResult&)>;

    // `metrics`: where retries, dead letters and refusals are counted; null: nowhere.
    AsyncInvoker(boost::asio::io_context& io, boost::asio::thread_pool& blocking, EventStore& store,
                 Dispatcher& dispatcher, Registry& registry, std::string function_arn_prefix, AsyncLimits limits,
                 observe::Metrics* metrics = nullptr);

    // Loads what was queued before a restart, and the event configs. Call once, before the loop runs.
    void start();
    // Stops delivering (shutdown); queued events stay in the store.
    void stop();

    // `target`: see AsyncTarget. `trace_id`: the caller's (validated, trace_id.hpp); empty:
    // a new one. Every attempt, and a destination's event, carry it.
    void submit(std::string target, std::string payload, std::string source, Accepted accepted,
                std::string trace_id = {});
    // An event already committed to the store (a redriven dead letter). Not held to the
    // queue's depth limit: it was accepted once already.
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

    // One function's events (all its qualifiers).
    struct Queue {
        std::set<std::pair<Clock::time_point, std::string>> due;  // queued and not in flight
        std::multiset<Clock::time_point> received;                // of every event held, for the oldest's age
        std::size_t depth = 0;  // events held (queued or in flight) plus accepts being committed
        int in_flight = 0;
    };
    using QueuePtr = std::shared_ptr<Queue>;

    QueuePtr& queue_of(const std::string& target);
    // Takes a committed event into its queue; `reserved`: its depth was counted at submit.
    void insert(AsyncEvent e, bool reserved);
    // Drops an event from memory (delivered, dead-lettered, or its function gone).
    void forget(std::map<std::string, AsyncEvent>::iterator ev);
    void deliver_due();
    void deliver_from(const std::string& function, Queue& q, Clock::time_point now);
    void post_deliver();
    void schedule();
    void purge_dead_letters();
    // Shared stores: renew, rescue, re-read configs; then again after kClaimInterval.
    void tend_claims();
    void on_result(const std::string& id, const InvocationResult& r);
    void reschedule(AsyncEvent& e, Clock::time_point next);
    void complete(const std::string& id, const InvocationResult& r);
    void fail(const std::string& id, const std::string& reason, const InvocationResult* last);
    // The metrics record of the function an event target names; null when not counted.
    std::shared_ptr<observe::FunctionMetrics> metrics_of(std::string_view target) const;
    std::optional<AsyncEvent> follow_up(const AsyncEvent& e, const std::optional<std::string>& destination,
                                        const std::string& condition, const InvocationResult* last) const;

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    EventStore& store_;
    Dispatcher& dispatcher_;
    Registry& registry_;
    std::string arn_prefix_;  // "arn:aws:lambda:<region>:<account>:function:"
    AsyncLimits limits_;
    observe::Metrics* metrics_;

    std::map<std::string, AsyncEvent> events_;                 // every queued event, by id
    std::map<std::string, QueuePtr, std::less<>> queues_;      // by function name
    // Event id -> the queue whose in-flight slot it holds. A function deleted meanwhile drops
    // its entries, so a function created again under the name starts with every slot free.
    std::map<std::string, QueuePtr> delivering_;
    std::map<std::string, EventConfig, std::less<>> configs_;
    boost::asio::system_timer timer_;
    boost::asio::system_timer purge_timer_;
    boost::asio::system_timer claim_timer_;
    bool deliver_posted_ = false;
    bool stopped_ = false;
};

}  // namespace funcd
