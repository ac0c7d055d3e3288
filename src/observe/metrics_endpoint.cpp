#include "funcd/observe/metrics_endpoint.hpp"

#include <algorithm>

#include "funcd/gateway/api_request.hpp"

namespace funcd::observe {
namespace {

// /metrics takes no body.
constexpr std::size_t kNoBody = 0;

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

MetricsEndpoint::MetricsEndpoint(boost::asio::io_context& io, boost::asio::thread_pool& blocking,
                                 const Metrics& metrics, MetricsSources sources, Prices prices)
    : io_(io), blocking_(blocking), metrics_(metrics), sources_(sources), prices_(prices) {}

bool MetricsEndpoint::is_metrics_path(std::string_view target) { return path_of(target) == "/metrics"; }

MetricsSnapshot MetricsEndpoint::snapshot() const {
    MetricsSnapshot s;
    s.functions.reserve(metrics_.functions.all().size());
    for (const auto& [name, m] : metrics_.functions.all()) {
        FunctionSnapshot f = FunctionSnapshot::of(name, *m);
        f.running = static_cast<std::uint64_t>(std::max(0, sources_.dispatcher.running(name)));
        const WorkerStates w = sources_.pools.worker_states(name);
        f.workers_starting = w.starting;
        f.workers_idle = w.idle;
        f.workers_provisioned = w.provisioned;
        f.workers_busy = w.busy;
        const AsyncQueueStats q = sources_.async.stats(name);
        f.async_queue_depth = q.depth;
        f.async_oldest_age_s = q.oldest_age_s.value_or(0.0);
        f.log_bytes_dropped = sources_.logs.dropped_bytes(name);
        s.functions.push_back(std::move(f));
    }
    if (sources_.mappings)
        for (const auto& v : sources_.mappings->list()) {
            const MappingRunnerStatus& st = v.status;
            s.mappings.push_back({v.config.function, v.config.name, st.records_delivered, st.batches_succeeded,
                                  st.batches_failed, st.invocation_errors, st.throttles, st.lag_bytes.value_or(0),
                                  st.seconds_behind});
        }
    s.async_events_dropped = metrics_.async_events_dropped.value();
    s.invocations_waiting = sources_.dispatcher.waiting();
    s.launch_duration = metrics_.launch_duration.snapshot();
    s.memory_budget_limit_mb = sources_.memory.limit_mb();
    s.memory_budget_used_mb = sources_.memory.used_mb();
    s.usage_records_pending = sources_.usage.pending_records();
    if (sources_.launcher)
        for (const auto& [id, pid] : sources_.launcher->templates())
            ++(id.starts_with("node:") ? s.node_templates : s.python_templates);
    return s;
}

void MetricsEndpoint::respond(const http::Request& req, http::Responder respond) const {
    if (req.method != "GET" && req.method != "HEAD") return respond(api::method_not_allowed(req.method, "GET"));
    const ExpositionFormat format = negotiate_format(req.header("accept"));
    api::offload(io_, blocking_, std::move(respond), [s = snapshot(), format, prices = prices_]() mutable {
        // /proc reads are system calls: here, off the loop, too.
        s.process = read_process_stats();
        http::Response r;
        r.status = 200;
        r.content_type = std::string(content_type(format));
        r.body = write_exposition(s, format, prices);
        return r;
    });
}

http::HeadDecision MetricsEndpoint::check_head(const http::Request&) const {
    return http::HeadDecision::read_body(kNoBody);
}

void MetricsEndpoint::handle(const http::Request& req, http::Responder respond) const {
    if (!is_metrics_path(req.target))
        return respond(api::error_response(404, "NotFoundException",
                                           "no route for " + req.target + "; this listener serves only /metrics"));
    this->respond(req, std::move(respond));
}

}  // namespace funcd::observe
