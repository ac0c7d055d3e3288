#pragma once
// GET /metrics: the exposition of everything funcd counts and, read at scrape time from
// the parts that own them, its gauges (workers, concurrency, queues, memory, the process).
// Served on the API's listener behind the API token (ControlApi routes it here), and
// without a token on the metrics listener (--metrics-listen), whose only path it is.
// Runs on the loop, as every part it reads does.
#include <string>
#include <string_view>

#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/gateway/http_types.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/metering/pricing.hpp"
#include "funcd/metering/usage_store.hpp"
#include "funcd/observe/exposition.hpp"
#include "funcd/observe/metrics.hpp"
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
};

class MetricsEndpoint {
public:
    MetricsEndpoint(const Metrics& metrics, MetricsSources sources, Prices prices);

    // The path it serves.
    static bool is_metrics_path(std::string_view target);
    // The answer to a request for /metrics (GET or HEAD; others 405), in the format its
    // Accept header prefers.
    http::Response respond(const http::Request& req) const;
    // The exposition in `format`.
    std::string render(ExpositionFormat format) const;

    // For the metrics listener's http::Server: /metrics, or 404.
    http::HeadDecision check_head(const http::Request& head) const;
    void handle(const http::Request& req, const http::Responder& respond) const;

private:
    void write_functions(ExpositionWriter& w) const;
    void write_async(ExpositionWriter& w) const;
    void write_daemon(ExpositionWriter& w) const;

    const Metrics& metrics_;
    MetricsSources sources_;
    Prices prices_;
};

}  // namespace funcd::observe
