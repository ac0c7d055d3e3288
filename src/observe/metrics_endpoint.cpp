#include "funcd/observe/metrics_endpoint.hpp"

#include <array>

#include "funcd/gateway/api_request.hpp"
#include "funcd/observe/process_stats.hpp"

namespace funcd::observe {
namespace {

// /metrics takes no body.
constexpr std::size_t kNoBody = 0;

constexpr std::array kOutcomes = {InvocationOutcome::success,  InvocationOutcome::function_error,
                                  InvocationOutcome::timeout,  InvocationOutcome::crash,
                                  InvocationOutcome::init_error, InvocationOutcome::throttled};
constexpr std::array kThrottleReasonList = {ThrottleReason::reserved_concurrency, ThrottleReason::account_concurrency,
                                            ThrottleReason::memory_budget, ThrottleReason::usage_storage,
                                            ThrottleReason::async_queue_full};
constexpr std::array kDeadLetterReasonList = {DeadLetterReason::retries_exhausted,
                                              DeadLetterReason::event_age_exceeded,
                                              DeadLetterReason::resource_not_found};

constexpr std::array kEventSourceList = {EventSource::api, EventSource::lambda_api, EventSource::schedule,
                                         EventSource::file, EventSource::other};

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

constexpr std::uint64_t kBytesPerMb = 1024 * 1024;

}  // namespace

MetricsEndpoint::MetricsEndpoint(const Metrics& metrics, MetricsSources sources, Prices prices)
    : metrics_(metrics), sources_(sources), prices_(prices) {}

bool MetricsEndpoint::is_metrics_path(std::string_view target) { return path_of(target) == "/metrics"; }

http::Response MetricsEndpoint::respond(const http::Request& req) const {
    if (req.method != "GET" && req.method != "HEAD") return api::method_not_allowed(req.method, "GET");
    const ExpositionFormat format = negotiate_format(req.header("accept"));
    http::Response r;
    r.status = 200;
    r.content_type = std::string(content_type(format));
    r.body = render(format);
    return r;
}

http::HeadDecision MetricsEndpoint::check_head(const http::Request&) const {
    return http::HeadDecision::read_body(kNoBody);
}

void MetricsEndpoint::handle(const http::Request& req, const http::Responder& respond) const {
    if (!is_metrics_path(req.target))
        return respond(api::error_response(404, "NotFoundException",
                                           "no route for " + req.target + "; this listener serves only /metrics"));
    respond(this->respond(req));
}

std::string MetricsEndpoint::render(ExpositionFormat format) const {
    ExpositionWriter w(format);
    write_functions(w);
    write_async(w);
    write_daemon(w);
    return std::move(w).finish();
}

void MetricsEndpoint::write_functions(ExpositionWriter& w) const {
    const auto& all = metrics_.functions.all();

    w.family("funcd_invocations_total", MetricType::counter,
             "Invocations by how they ended: success, function_error, timeout, crash (the worker exited or ran "
             "out of memory), init_error (the runtime failed to start), throttled (refused over a limit).");
    for (const auto& [name, m] : all)
        for (auto o : kOutcomes) w.sample({{"function", name}, {"outcome", label(o)}}, m->invocations(o));

    w.family("funcd_invocation_duration_seconds", MetricType::histogram,
             "Time from the event handed to the worker to its response or error (Lambda's Duration; init "
             "excluded). Every invocation but throttled and init_error ones.");
    for (const auto& [name, m] : all) w.histogram({{"function", name}}, m->duration().snapshot());

    w.family("funcd_billed_duration_seconds", MetricType::histogram,
             "Billed duration: the duration rounded up to the millisecond, at least 1 ms.");
    for (const auto& [name, m] : all) w.histogram({{"function", name}}, m->billed_duration().snapshot());

    w.family("funcd_cold_starts_total", MetricType::counter,
             "Invocations that waited for a new worker to start (their REPORT line has an Init Duration).");
    for (const auto& [name, m] : all) w.sample({{"function", name}}, m->cold_starts());

    w.family("funcd_init_duration_seconds", MetricType::histogram,
             "Init duration of cold starts: the worker's launch to its runtime's first request for an event.");
    for (const auto& [name, m] : all)
        for (const auto& [runtime, h] : m->init_durations())
            w.histogram({{"function", name}, {"runtime", runtime}}, h->snapshot());

    w.family("funcd_concurrent_executions", MetricType::gauge,
             "Invocations of the function running now (admitted under its concurrency limits).");
    for (const auto& [name, m] : all)
        w.sample({{"function", name}}, static_cast<std::int64_t>(sources_.dispatcher.running(name)));

    w.family("funcd_workers", MetricType::gauge,
             "Live workers by state: starting, idle (on-demand), provisioned (ready and idle), busy.");
    for (const auto& [name, m] : all) {
        const WorkerStates s = sources_.pools.worker_states(name);
        w.sample({{"function", name}, {"state", "starting"}}, static_cast<std::uint64_t>(s.starting));
        w.sample({{"function", name}, {"state", "idle"}}, static_cast<std::uint64_t>(s.idle));
        w.sample({{"function", name}, {"state", "provisioned"}}, static_cast<std::uint64_t>(s.provisioned));
        w.sample({{"function", name}, {"state", "busy"}}, static_cast<std::uint64_t>(s.busy));
    }

    w.family("funcd_throttles_total", MetricType::counter,
             "Invocations refused over a limit (429), by the limit: reserved_concurrency, account_concurrency "
             "(--max-concurrency), memory_budget, usage_storage, async_queue_full (Event invocations).");
    for (const auto& [name, m] : all)
        for (auto r : kThrottleReasonList) w.sample({{"function", name}, {"reason", label(r)}}, m->throttles(r));

    w.family("funcd_billed_gb_seconds_total", MetricType::counter,
             "Billed memory-time: billed duration times configured memory, in GB-seconds (1024 MB for 1 s).");
    for (const auto& [name, m] : all)
        w.sample_decimal({{"function", name}}, gb_seconds_text(static_cast<std::int64_t>(m->billed_mb_ms())));

    w.family("funcd_cost_usd_total", MetricType::counter,
             "Cost at the configured prices (--price-per-gb-second, --price-per-million-requests), in US dollars.");
    for (const auto& [name, m] : all) {
        std::string cost;
        try {
            cost = cost_usd_text(static_cast<std::int64_t>(m->billed_mb_ms()),
                                 static_cast<std::int64_t>(m->billed_requests()), prices_);
        } catch (const std::overflow_error&) {
            cost = "+Inf";  // beyond about 10^10 dollars
        }
        w.sample_decimal({{"function", name}}, cost);
    }

    w.family("funcd_http_trigger_responses_total", MetricType::counter,
             "Answers of the function's URL and routes, by status class (2xx, 4xx, 5xx...).");
    for (const auto& [name, m] : all)
        for (std::size_t c = 1; c < kStatusClasses; ++c)
            w.sample({{"function", name}, {"code", status_class_label(c)}}, m->http_responses(c));

    w.family("funcd_log_bytes_dropped_total", MetricType::counter,
             "Bytes of the function's output dropped: over an invocation's or an idle worker's output budget, "
             "or lost to a failed write.");
    for (const auto& [name, m] : all) w.sample({{"function", name}}, sources_.logs.dropped_bytes(name));
}

void MetricsEndpoint::write_async(ExpositionWriter& w) const {
    const auto& all = metrics_.functions.all();

    w.family("funcd_async_events_total", MetricType::counter,
             "Asynchronous events accepted for the function, by what sent them: api (/v1), lambda_api (Lambda's "
             "Invoke), schedule (a schedule fired), file (a file trigger saw a file), other.");
    for (const auto& [name, m] : all)
        for (auto src : kEventSourceList) w.sample({{"function", name}, {"source", label(src)}}, m->accepted_events(src));

    w.family("funcd_async_queue_depth", MetricType::gauge,
             "Asynchronous events of the function accepted and not yet done (queued, retrying or running).");
    for (const auto& [name, m] : all)
        w.sample({{"function", name}}, static_cast<std::uint64_t>(sources_.async.stats(name).depth));

    w.family("funcd_async_event_age_seconds", MetricType::gauge,
             "Age of the function's oldest asynchronous event not yet done (0: none).");
    for (const auto& [name, m] : all) w.sample({{"function", name}}, sources_.async.stats(name).oldest_age_s.value_or(0.0));

    w.family("funcd_async_retries_total", MetricType::counter,
             "Asynchronous events queued again after a failed attempt (function error, timeout, crash).");
    for (const auto& [name, m] : all) w.sample({{"function", name}}, m->async_retries());

    w.family("funcd_dead_letters_total", MetricType::counter,
             "Asynchronous events moved to the dead letters, by reason: retries_exhausted, event_age_exceeded, "
             "resource_not_found (the version or alias is gone).");
    for (const auto& [name, m] : all)
        for (auto r : kDeadLetterReasonList) w.sample({{"function", name}, {"reason", label(r)}}, m->dead_letters(r));

    w.family("funcd_async_events_dropped_total", MetricType::counter,
             "Accepted asynchronous events discarded without delivery or dead letter: their function was deleted.");
    w.sample({}, metrics_.async_events_dropped.value());
}

void MetricsEndpoint::write_daemon(ExpositionWriter& w) const {
    w.family("funcd_invocations_waiting", MetricType::gauge,
             "Invocations waiting for capacity (a concurrency limit or the memory budget), up to --queue-wait-ms.");
    w.sample({}, static_cast<std::uint64_t>(sources_.dispatcher.waiting()));

    w.family("funcd_launch_duration_seconds", MetricType::histogram,
             "Time to launch a worker's sandbox (namespaces, cgroup, root, seccomp) up to its runtime's exec.");
    w.histogram({}, metrics_.launch_duration.snapshot());

    w.family("funcd_memory_budget_bytes", MetricType::gauge,
             "The memory budget (--memory-budget-mb): limit, and used (memory_mb of every live worker).");
    w.sample({{"state", "limit"}}, static_cast<std::uint64_t>(sources_.memory.limit_mb()) * kBytesPerMb);
    w.sample({{"state", "used"}}, static_cast<std::uint64_t>(sources_.memory.used_mb()) * kBytesPerMb);

    w.family("funcd_usage_records_pending", MetricType::gauge,
             "Usage records journaled and waiting to be committed to the database (the journal's lag).");
    w.sample({}, static_cast<std::uint64_t>(sources_.usage.pending_records()));

    w.family("funcd_build_info", MetricType::info, "The funcd build serving these metrics.");
    w.sample({{"version", FUNCD_VERSION}}, std::uint64_t{1});

    const ProcessStats p = read_process_stats();
    auto gauge = [&](std::string_view name, MetricType type, std::string_view help, auto value) {
        if (!value) return;
        w.family(name, type, help);
        w.sample({}, *value);
    };
    gauge("process_cpu_seconds_total", MetricType::counter, "User and system CPU time of the daemon, in seconds.",
          p.cpu_seconds);
    gauge("process_resident_memory_bytes", MetricType::gauge, "Resident memory of the daemon.", p.resident_bytes);
    gauge("process_virtual_memory_bytes", MetricType::gauge, "Virtual memory of the daemon.", p.virtual_bytes);
    gauge("process_open_fds", MetricType::gauge, "Open file descriptors of the daemon.", p.open_fds);
    gauge("process_max_fds", MetricType::gauge, "The daemon's limit of open file descriptors.", p.max_fds);
    gauge("process_threads", MetricType::gauge, "Threads of the daemon.", p.threads);
    gauge("process_start_time_seconds", MetricType::gauge, "Start time of the daemon since the Unix epoch, in seconds.",
          p.start_time_seconds);
}

}  // namespace funcd::observe
