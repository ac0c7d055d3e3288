#pragma once
// The one place an invocation's lifecycle runs through, whatever triggered it:
// admission under the concurrency limits, the pool, metering, and the answer.
//
// Limits (Lambda's semantics): a function with reserved concurrency runs at most that
// many invocations at once and always has that many available; the others share what
// is left of the global limit. An invocation over a limit, or one that needs a new
// worker the memory budget cannot fit, waits in one bounded FIFO for up to the queue
// wait, then is throttled (429). With several nodes sharing the state, a function's
// reserved concurrency is its limit across them: each node allows its share,
// ceil(reserved / live nodes) (set_live_nodes).
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "funcd/dispatch/invocation.hpp"
#include "funcd/metering/usage_store.hpp"
#include "funcd/observe/function_metrics_table.hpp"
#include "funcd/pool/pool_manager.hpp"
#include "funcd/registry/registry.hpp"

namespace funcd {

// What an invocation carries besides its payload.
struct InvokeOptions {
    // Kept across the attempts of an asynchronous event; new if not given.
    std::optional<std::string> request_id;
    // The trace id (trace_id.hpp), validated by whoever took it from a header; new if empty.
    std::string trace_id;
    // What started it, for the usage ledger: api, lambda, url, route, async, schedule, file,
    // destination.
    std::string trigger = "api";
    std::string invoked_arn;     // see Invocation
    std::string client_context;  // see Invocation
    bool capture_log = false;    // see Invocation
    std::function<void(const Invocation&, std::shared_ptr<ResponseStream>)> on_stream;  // see Invocation
};

struct DispatchOptions {
    int max_concurrency = 1000;                 // Lambda's default account quota
    std::chrono::milliseconds queue_wait{100};  // 0: throttle at once
    bool metering = true;
};

class Dispatcher {
public:
    using Done = std::function<void(const Invocation&, InvocationResult)>;

    // `metrics`: where every invocation's outcome is counted; null: nothing is (--metrics off).
    Dispatcher(boost::asio::io_context& io, Registry& registry, PoolManager& pools, UsageStore& usage,
               DispatchOptions options, observe::FunctionMetricsTable* metrics = nullptr);

    // The version an unqualified /v1 invocation runs (FunctionRecord::default_target), or
    // the one `qualifier` names. Throws ApiError: 404 unknown function or version, 503
    // shutting down.
    FunctionPtr admit(std::string_view function, const Qualifier* qualifier = nullptr) const;
    // Throws ApiError(503) once new invocations are refused: shutting down, or usage
    // records cannot be made durable (ApiError::storage_unavailable, naming why).
    void check_accepting() const;
    // Starts an invocation of an admitted function; `done` is called on the loop once
    // the result is metered, or with `throttled` set. Never throws for the client's input.
    void invoke(FunctionPtr fn, std::string payload, Done done, InvokeOptions options);
    void invoke(FunctionPtr fn, std::string payload, Done done, std::optional<std::string> request_id = {}) {
        invoke(std::move(fn), std::move(payload), std::move(done), InvokeOptions{std::move(request_id)});
    }

    // Reserved concurrency changed (deploy, delete, settings): recount the reservations.
    void reservations_changed();
    // How many nodes are alive (this one included), as the cluster's heartbeats say.
    void set_live_nodes(int nodes);
    // A worker became idle or memory was freed: waiting invocations may start now.
    void capacity_freed();

    // New invocations are refused from now on.
    void stop_accepting() { accepting_ = false; }
    std::size_t in_flight() const { return in_flight_; }
    std::size_t waiting() const { return waiting_.size(); }
    int running(const std::string& function) const;
    // Invocations of every function running now.
    int running_total() const { return running_total_; }

private:
    enum class Limit { none, disabled, reserved, global, memory, storage };
    struct Waiting {
        InvocationPtr inv;
        std::chrono::steady_clock::time_point deadline;
        Limit limit;
    };

    std::optional<std::string> metering_refusal() const;
    Limit try_start(InvocationPtr& inv);
    void finished(Invocation& inv);
    void throttle(InvocationPtr inv, Limit limit);
    static std::string_view throttle_reason(Limit limit);
    std::string throttle_message(const FunctionConfig& c, Limit limit) const;
    void pump();
    void arm_queue_timer();

    boost::asio::io_context& io_;
    Registry& registry_;
    PoolManager& pools_;
    UsageStore& usage_;
    DispatchOptions options_;
    observe::FunctionMetricsTable* metrics_;
    bool accepting_ = true;
    std::size_t in_flight_ = 0;  // accepted and not yet answered, waiting ones included

    std::map<std::string, int, std::less<>> running_;  // per function
    int running_total_ = 0;
    int running_unreserved_ = 0;
    int reserved_total_ = 0;  // this node's share of every function's reservation
    int live_nodes_ = 1;
    // This node's share of a limit set for the whole cluster.
    int node_share(int cluster_limit) const;
    std::deque<Waiting> waiting_;
    boost::asio::steady_timer queue_timer_;
    bool pump_posted_ = false;
};

}  // namespace funcd
