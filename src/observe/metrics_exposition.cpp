#include "funcd/observe/metrics_snapshot.hpp"

#include <array>
#include <stdexcept>

namespace funcd::observe {
namespace {

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

constexpr std::uint64_t kBytesPerMb = 1024 * 1024;

}  // namespace

FunctionSnapshot FunctionSnapshot::of(std::string name, const FunctionMetrics& m) {
    FunctionSnapshot f;
    f.name = std::move(name);
    for (auto o : kOutcomes) f.invocations[static_cast<std::size_t>(o)] = m.invocations(o);
    for (auto r : kThrottleReasonList) f.throttles[static_cast<std::size_t>(r)] = m.throttles(r);
    for (auto r : kDeadLetterReasonList) f.dead_letters[static_cast<std::size_t>(r)] = m.dead_letters(r);
    for (auto src : kEventSourceList) f.async_events[static_cast<std::size_t>(src)] = m.accepted_events(src);
    for (std::size_t c = 0; c < kStatusClasses; ++c) f.http_responses[c] = m.http_responses(c);
    f.async_retries = m.async_retries();
    f.cold_starts = m.cold_starts();
    f.billed_mb_ms = m.billed_mb_ms();
    f.billed_requests = m.billed_requests();
    f.duration = m.duration().snapshot();
    f.billed_duration = m.billed_duration().snapshot();
    for (const auto& [runtime, h] : m.init_durations()) f.init_durations.emplace_back(runtime, h->snapshot());
    return f;
}

namespace {

template <class E>
std::size_t at(E e) {
    return static_cast<std::size_t>(e);
}

void write_functions(ExpositionWriter& w, const MetricsSnapshot& s, const Prices& prices) {
    const auto& all = s.functions;

    w.family("funcd_invocations_total", MetricType::counter,
             "Invocations by how they ended: success, function_error, timeout, crash (the worker exited or ran "
             "out of memory), init_error (the runtime failed to start), throttled (refused over a limit).");
    for (const auto& f : all)
        for (auto o : kOutcomes) w.sample({{"function", f.name}, {"outcome", label(o)}}, f.invocations[at(o)]);

    w.family("funcd_invocation_duration_seconds", MetricType::histogram,
             "Time from the event handed to the worker to its response or error (Lambda's Duration; init "
             "excluded). Every invocation but throttled and init_error ones.");
    for (const auto& f : all) w.histogram({{"function", f.name}}, f.duration);

    w.family("funcd_billed_duration_seconds", MetricType::histogram,
             "Billed duration: the duration rounded up to the millisecond, at least 1 ms.");
    for (const auto& f : all) w.histogram({{"function", f.name}}, f.billed_duration);

    w.family("funcd_cold_starts_total", MetricType::counter,
             "Invocations that waited for a new worker to start (their REPORT line has an Init Duration).");
    for (const auto& f : all) w.sample({{"function", f.name}}, f.cold_starts);

    w.family("funcd_init_duration_seconds", MetricType::histogram,
             "Init duration of cold starts: the worker's launch to its runtime's first request for an event.");
    for (const auto& f : all)
        for (const auto& [runtime, h] : f.init_durations) w.histogram({{"function", f.name}, {"runtime", runtime}}, h);

    w.family("funcd_concurrent_executions", MetricType::gauge,
             "Invocations of the function running now (admitted under its concurrency limits).");
    for (const auto& f : all) w.sample({{"function", f.name}}, f.running);

    w.family("funcd_workers", MetricType::gauge,
             "Live workers by state: starting, idle (on-demand), provisioned (ready and idle), busy.");
    for (const auto& f : all) {
        w.sample({{"function", f.name}, {"state", "starting"}}, f.workers_starting);
        w.sample({{"function", f.name}, {"state", "idle"}}, f.workers_idle);
        w.sample({{"function", f.name}, {"state", "provisioned"}}, f.workers_provisioned);
        w.sample({{"function", f.name}, {"state", "busy"}}, f.workers_busy);
    }

    w.family("funcd_throttles_total", MetricType::counter,
             "Invocations refused over a limit (429), by the limit: reserved_concurrency, account_concurrency "
             "(--max-concurrency), memory_budget, usage_storage, async_queue_full (Event invocations).");
    for (const auto& f : all)
        for (auto r : kThrottleReasonList) w.sample({{"function", f.name}, {"reason", label(r)}}, f.throttles[at(r)]);

    w.family("funcd_billed_gb_seconds_total", MetricType::counter,
             "Billed memory-time: billed duration times configured memory, in GB-seconds (1024 MB for 1 s).");
    for (const auto& f : all)
        w.sample_decimal({{"function", f.name}}, gb_seconds_text(static_cast<std::int64_t>(f.billed_mb_ms)));

    w.family("funcd_cost_usd_total", MetricType::counter,
             "Cost at the configured prices (--price-per-gb-second, --price-per-million-requests), in US dollars.");
    for (const auto& f : all) {
        std::string cost;
        try {
            cost = cost_usd_text(static_cast<std::int64_t>(f.billed_mb_ms), static_cast<std::int64_t>(f.billed_requests),
                                 prices);
        } catch (const std::overflow_error&) {
            cost = "+Inf";  // beyond about 10^10 dollars
        }
        w.sample_decimal({{"function", f.name}}, cost);
    }

    w.family("funcd_http_trigger_responses_total", MetricType::counter,
             "Answers of the function's URL and routes, by status class (2xx, 4xx, 5xx...).");
    for (const auto& f : all)
        for (std::size_t c = 0; c < kStatusClasses; ++c)
            w.sample({{"function", f.name}, {"code", status_class_label(c)}}, f.http_responses[c]);

    w.family("funcd_log_bytes_dropped_total", MetricType::counter,
             "Bytes of the function's output dropped: over an invocation's or an idle worker's output budget, "
             "or lost to a failed write.");
    for (const auto& f : all) w.sample({{"function", f.name}}, f.log_bytes_dropped);
}

void write_async(ExpositionWriter& w, const MetricsSnapshot& s) {
    const auto& all = s.functions;

    w.family("funcd_async_events_total", MetricType::counter,
             "Asynchronous events accepted for the function, by what sent them: api (/v1), lambda_api (Lambda's "
             "Invoke), schedule (a schedule fired), file (a file trigger saw a file), other.");
    for (const auto& f : all)
        for (auto src : kEventSourceList)
            w.sample({{"function", f.name}, {"source", label(src)}}, f.async_events[at(src)]);

    w.family("funcd_async_queue_depth", MetricType::gauge,
             "Asynchronous events of the function accepted and not yet done (queued, retrying or running).");
    for (const auto& f : all) w.sample({{"function", f.name}}, f.async_queue_depth);

    w.family("funcd_async_event_age_seconds", MetricType::gauge,
             "Age of the function's oldest asynchronous event not yet done (0: none).");
    for (const auto& f : all) w.sample({{"function", f.name}}, f.async_oldest_age_s);

    w.family("funcd_async_retries_total", MetricType::counter,
             "Asynchronous events queued again after a failed attempt (function error, timeout, crash).");
    for (const auto& f : all) w.sample({{"function", f.name}}, f.async_retries);

    w.family("funcd_dead_letters_total", MetricType::counter,
             "Asynchronous events moved to the dead letters, by reason: retries_exhausted, event_age_exceeded, "
             "resource_not_found (the version or alias is gone).");
    for (const auto& f : all)
        for (auto r : kDeadLetterReasonList)
            w.sample({{"function", f.name}, {"reason", label(r)}}, f.dead_letters[at(r)]);

    w.family("funcd_async_events_dropped_total", MetricType::counter,
             "Accepted asynchronous events discarded without delivery or dead letter: their function was deleted.");
    w.sample({}, s.async_events_dropped);
}

void write_event_sources(ExpositionWriter& w, const MetricsSnapshot& s) {
    w.family("funcd_event_source_records_total", MetricType::counter,
             "Records an event source mapping delivered to its function (since its runner started).");
    for (const auto& m : s.mappings) w.sample({{"function", m.function}, {"mapping", m.mapping}}, m.records_delivered);
    w.family("funcd_event_source_batches_total", MetricType::counter,
             "Batches of an event source mapping by outcome: succeeded, or failed (given up on: a dead letter).");
    for (const auto& m : s.mappings) {
        w.sample({{"function", m.function}, {"mapping", m.mapping}, {"outcome", "succeeded"}}, m.batches_succeeded);
        w.sample({{"function", m.function}, {"mapping", m.mapping}, {"outcome", "failed"}}, m.batches_failed);
    }
    w.family("funcd_event_source_invocation_errors_total", MetricType::counter,
             "Invocations of an event source mapping's batches that failed (function error, timeout, crash, "
             "reported batch item failures).");
    for (const auto& m : s.mappings) w.sample({{"function", m.function}, {"mapping", m.mapping}}, m.invocation_errors);
    w.family("funcd_event_source_throttles_total", MetricType::counter,
             "Invocations of an event source mapping's batches refused by a limit and tried again.");
    for (const auto& m : s.mappings) w.sample({{"function", m.function}, {"mapping", m.mapping}}, m.throttles);
    w.family("funcd_event_source_lag_bytes", MetricType::gauge,
             "WAL bytes between the database's newest position and what the mapping acknowledged.");
    for (const auto& m : s.mappings) w.sample({{"function", m.function}, {"mapping", m.mapping}}, m.lag_bytes);
    w.family("funcd_event_source_age_seconds", MetricType::gauge,
             "Age of the oldest change a mapping read and has not delivered (Lambda's IteratorAge; 0: none).");
    for (const auto& m : s.mappings) w.sample({{"function", m.function}, {"mapping", m.mapping}}, m.age_s);
}

void write_daemon(ExpositionWriter& w, const MetricsSnapshot& s) {
    w.family("funcd_invocations_waiting", MetricType::gauge,
             "Invocations waiting for capacity (a concurrency limit or the memory budget), up to --queue-wait-ms.");
    w.sample({}, s.invocations_waiting);

    w.family("funcd_launch_duration_seconds", MetricType::histogram,
             "Time to launch a worker's sandbox (namespaces, cgroup, root, seccomp) up to its runtime's exec.");
    w.histogram({}, s.launch_duration);

    w.family("funcd_memory_budget_bytes", MetricType::gauge,
             "The memory budget (--memory-budget-mb): limit, and used (what admission charges live workers and "
             "runtime templates).");
    w.sample({{"state", "limit"}}, static_cast<std::uint64_t>(s.memory_budget_limit_mb) * kBytesPerMb);
    w.sample({{"state", "used"}}, static_cast<std::uint64_t>(s.memory_budget_used_mb) * kBytesPerMb);

    w.family("funcd_runtime_templates", MetricType::gauge,
             "Live runtime templates that workers are forked from, by runtime (one per interpreter and flags, "
             "and per set of preloaded modules).");
    w.sample({{"runtime", "python"}}, s.python_templates);
    w.sample({{"runtime", "node"}}, s.node_templates);

    w.family("funcd_usage_records_pending", MetricType::gauge,
             "Usage records journaled and waiting to be committed to the database (the journal's lag).");
    w.sample({}, s.usage_records_pending);

    w.family("funcd_build_info", MetricType::info, "The funcd build serving these metrics.");
    w.sample({{"version", FUNCD_VERSION}}, std::uint64_t{1});

    const ProcessStats& p = s.process;
    auto single = [&](std::string_view name, MetricType type, std::string_view help, auto value) {
        if (!value) return;
        w.family(name, type, help);
        w.sample({}, *value);
    };
    single("process_cpu_seconds_total", MetricType::counter, "User and system CPU time of the daemon, in seconds.",
           p.cpu_seconds);
    single("process_resident_memory_bytes", MetricType::gauge, "Resident memory of the daemon.", p.resident_bytes);
    single("process_virtual_memory_bytes", MetricType::gauge, "Virtual memory of the daemon.", p.virtual_bytes);
    single("process_open_fds", MetricType::gauge, "Open file descriptors of the daemon.", p.open_fds);
    single("process_max_fds", MetricType::gauge, "The daemon's limit of open file descriptors.", p.max_fds);
    single("process_threads", MetricType::gauge, "Threads of the daemon.", p.threads);
    single("process_start_time_seconds", MetricType::gauge,
           "Start time of the daemon since the Unix epoch, in seconds.", p.start_time_seconds);
}

}  // namespace

std::string write_exposition(const MetricsSnapshot& s, ExpositionFormat format, const Prices& prices) {
    ExpositionWriter w(format);
    write_functions(w, s, prices);
    write_async(w, s);
    write_event_sources(w, s);
    write_daemon(w, s);
    return std::move(w).finish();
}

}  // namespace funcd::observe
