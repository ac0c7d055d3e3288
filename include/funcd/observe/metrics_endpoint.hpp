#pragma once
// GET /metrics: the exposition of everything funcd counts and, read at scrape time from
// the parts that own them, its gauges (workers, concurrency, queues, memory, the process).
// Served on the API's listener behind the API token (ControlApi routes it here), and
// without a token on the metrics listener (--metrics-listen), whose only path it is.
// The figures are taken on the loop, where the parts that own them live; the text is
// written on the blocking pool (metrics_snapshot.hpp says why).
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/event_sources/event_source_mappings.hpp"
#include "funcd/gateway/http_types.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/metering/pricing.hpp"
#include "funcd/metering/usage_store.hpp"
#include "funcd/observe/exposition.hpp"
#include "funcd/observe/metrics.hpp"
#include "funcd/observe/metrics_snapshot.hpp"
#include "funcd/pool/memory_budget.hpp"
#include "funcd/pool/pool_manager.hpp"

namespace funcd::observe {

// Where the gauges are read from.
struct MetricsSources {
    const Dispatcher& dispatcher;
    const PoolManager& pools;
    const AsyncInvoker& async;
    const MemoryBudget& memory;
    const LogDirectory& logs;
    const UsageStore& usage;
    const EventSourceMappings* mappings = nullptr;  // null: none counted
    const SandboxLauncher* launcher = nullptr;      // null: no runtime templates counted
};

class MetricsEndpoint {
public:
    MetricsEndpoint(boost::asio::io_context& io, boost::asio::thread_pool& blocking, const Metrics& metrics,
                    MetricsSources sources, Prices prices);

    // The path it serves.
    static bool is_metrics_path(std::string_view target);
    // Answers a request for /metrics (GET or HEAD; others 405) in the format its Accept
    // header prefers: the figures are taken now, the text is written on the blocking pool,
    // and `respond` is called on the loop.
    void respond(const http::Request& req, http::Responder respond) const;
    // Every figure as it is now. On the loop.
    MetricsSnapshot snapshot() const;

    // For the metrics listener's http::Server: /metrics, or 404.
    http::HeadDecision check_head(const http::Request& head) const;
    void handle(const http::Request& req, http::Responder respond) const;

private:
    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    const Metrics& metrics_;
    MetricsSources sources_;
    Prices prices_;
};

}  // namespace funcd::observe
