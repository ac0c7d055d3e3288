#include "funcd/daemon/daemon_limits.hpp"

#include <charconv>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <type_traits>

#include <fmt/format.h>

namespace funcd {
namespace {

struct Field {
    std::string_view name;
    std::string_view meaning;
    std::function<void(DaemonLimits&, std::int64_t)> set;
    std::function<std::int64_t(const DaemonLimits&)> get;
};

// A field of one part of DaemonLimits: counts and byte sizes as integers, durations in
// milliseconds or seconds (the name says "_ms" or "_s").
template <class Part, class T>
Field field(std::string_view name, std::string_view meaning, Part DaemonLimits::*part, T Part::*member) {
    Field f{name, meaning, {}, {}};
    f.set = [part, member](DaemonLimits& l, std::int64_t v) {
        if constexpr (std::is_same_v<T, std::chrono::milliseconds> || std::is_same_v<T, std::chrono::seconds>)
            (l.*part).*member = T(v);
        else
            (l.*part).*member = static_cast<T>(v);
    };
    f.get = [part, member](const DaemonLimits& l) -> std::int64_t {
        if constexpr (std::is_same_v<T, std::chrono::milliseconds> || std::is_same_v<T, std::chrono::seconds>)
            return ((l.*part).*member).count();
        else
            return static_cast<std::int64_t>((l.*part).*member);
    };
    return f;
}

const std::vector<Field>& fields() {
    static const std::vector<Field> all = {
        field("gateway.max_connections", "open HTTP connections at once; more are answered 503",
              &DaemonLimits::gateway, &http::ConnectionLimits::max_connections),
        field("gateway.header_limit", "bytes of a request head; larger heads are answered 431",
              &DaemonLimits::gateway, &http::ConnectionLimits::header_limit),
        field("gateway.head_timeout_ms", "time to send a request head (idle keep-alive included)",
              &DaemonLimits::gateway, &http::ConnectionLimits::head_timeout),
        field("gateway.body_timeout_ms", "time to send a request body", &DaemonLimits::gateway,
              &http::ConnectionLimits::body_timeout),
        field("runtime_api.max_connections_per_worker", "Runtime API connections one worker may hold",
              &DaemonLimits::runtime_api, &RuntimeApiLimits::max_connections_per_worker),
        field("runtime_api.request_deadline_ms", "time a runtime may take to send one request",
              &DaemonLimits::runtime_api, &RuntimeApiLimits::request_deadline),
        field("runtime_api.max_body_bytes_per_worker", "bytes of request bodies one worker's connections may buffer",
              &DaemonLimits::runtime_api, &RuntimeApiLimits::max_body_bytes_per_worker),
        field("runtime_api.max_stream_bytes", "bytes one streamed response may carry; more ends it with an error",
              &DaemonLimits::runtime_api, &RuntimeApiLimits::max_stream_bytes),
        field("runtime_api.stream_buffer_bytes",
              "bytes of a streamed response held for a slow caller before the runtime is no longer read",
              &DaemonLimits::runtime_api, &RuntimeApiLimits::stream_buffer_bytes),
        field("output.log_max_bytes", "size at which a function's log file rolls over", &DaemonLimits::output,
              &OutputLimits::log_max_bytes),
        field("output.log_files", "log files kept per function, the live one included", &DaemonLimits::output,
              &OutputLimits::log_files),
        field("output.invocation_bytes", "output one invocation may log; the rest is dropped and counted",
              &DaemonLimits::output, &OutputLimits::invocation_bytes),
        field("output.idle_bytes", "output a worker may log between invocations; then it is no longer read",
              &DaemonLimits::output, &OutputLimits::idle_bytes),
        field("output.telemetry_record_bytes",
              "largest piece of a runtime's telemetry record kept whole; a longer record is logged in pieces",
              &DaemonLimits::output, &OutputLimits::telemetry_record_bytes),
        field("logs.default_results", "records a logs query answers without limit", &DaemonLimits::logs,
              &LogsApiLimits::default_results),
        field("logs.max_results", "records a logs query answers at most (its limit's maximum)", &DaemonLimits::logs,
              &LogsApiLimits::max_results),
        field("logs.max_result_bytes", "bytes of records one logs answer holds; the oldest are left out",
              &DaemonLimits::logs, &LogsApiLimits::max_result_bytes),
        field("logs.max_trace_requests", "invocations of one trace whose records a logs query reads",
              &DaemonLimits::logs, &LogsApiLimits::max_trace_requests),
        field("logs.max_followers", "open follow=true log streams; more are answered 429", &DaemonLimits::logs,
              &LogsApiLimits::max_followers),
        field("logs.max_followers_per_function", "open follow=true log streams of one function; more are answered 429",
              &DaemonLimits::logs, &LogsApiLimits::max_followers_per_function),
        field("logs.follower_buffer_bytes",
              "bytes waiting for a slow log follower; records that do not fit are skipped and counted",
              &DaemonLimits::logs, &LogsApiLimits::follower_buffer_bytes),
        field("logs.heartbeat_ms", "how often a log follower gets a heartbeat comment", &DaemonLimits::logs,
              &LogsApiLimits::heartbeat_interval),
        field("metering.storage_timeout_ms",
              "how long a flush, a usage query or the last commit at shutdown waits on the database",
              &DaemonLimits::metering, &MeteringLimits::storage_timeout),
        field("metering.batch_records", "usage records committed, replayed or deleted in one transaction",
              &DaemonLimits::metering, &MeteringLimits::batch_records),
        field("metering.journal_probe_ms", "while the usage journal cannot be written, how often it is tried again",
              &DaemonLimits::metering, &MeteringLimits::journal_probe_interval),
        field("metering.journal_probe_bytes", "free journal space needed before invocations are admitted again",
              &DaemonLimits::metering, &MeteringLimits::journal_probe_bytes),
        field("metering.max_pending_records", "usage records waiting for the database; beyond it invocations get 503",
              &DaemonLimits::metering, &MeteringLimits::max_pending_records),
        field("async.queue_depth_per_function", "undelivered events per function; more are answered 429",
              &DaemonLimits::async, &AsyncLimits::queue_depth_per_function),
        field("async.max_in_flight_per_function", "deliveries of one function running at once",
              &DaemonLimits::async, &AsyncLimits::max_in_flight_per_function),
        field("async.dead_letter_retention_s", "how long dead letters are kept", &DaemonLimits::async,
              &AsyncLimits::dead_letter_retention),
        field("event_sources.max_buffered_changes",
              "changes one event source holds for its mapping; then it stops reading the database",
              &DaemonLimits::event_sources, &EventSourceLimits::max_buffered_changes),
        field("event_sources.max_buffered_bytes",
              "bytes of changes one event source holds for its mapping; then it stops reading the database",
              &DaemonLimits::event_sources, &EventSourceLimits::max_buffered_bytes),
        field("event_sources.max_transaction_bytes",
              "bytes of one database transaction a change stream holds until its commit; a larger one "
              "stops its mapping (last_error says so) until the limit is raised",
              &DaemonLimits::event_sources, &EventSourceLimits::max_transaction_bytes),
        field("event_sources.max_mappings_per_function", "event source mappings one function may have",
              &DaemonLimits::event_sources, &EventSourceLimits::max_mappings_per_function),
        field("event_sources.max_batch_bytes",
              "bytes of one batch's event; a batch is cut before it would pass them, whatever its batch_size",
              &DaemonLimits::event_sources, &EventSourceLimits::max_batch_bytes),
        field("metrics.max_connections", "open connections of the metrics listener; more are answered 503",
              &DaemonLimits::metrics, &http::ConnectionLimits::max_connections),
        field("metrics.header_limit", "bytes of a request head on the metrics listener", &DaemonLimits::metrics,
              &http::ConnectionLimits::header_limit),
        field("metrics.head_timeout_ms", "time to send a request head to the metrics listener (idle keep-alive "
              "included)", &DaemonLimits::metrics, &http::ConnectionLimits::head_timeout),
        field("metrics.body_timeout_ms", "time to send a request body to the metrics listener",
              &DaemonLimits::metrics, &http::ConnectionLimits::body_timeout),
    };
    return all;
}

}  // namespace

void set_limit(DaemonLimits& limits, std::string_view assignment) {
    const auto eq = assignment.find('=');
    if (eq == std::string_view::npos)
        throw std::invalid_argument(fmt::format("--limit wants NAME=VALUE, got '{}'", assignment));
    const std::string_view name = assignment.substr(0, eq), text = assignment.substr(eq + 1);
    for (const auto& f : fields()) {
        if (f.name != name) continue;
        std::int64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v <= 0 || v > (std::int64_t{1} << 48))
            throw std::invalid_argument(
                fmt::format("--limit {} wants a positive integer (at most 2^48), got '{}'", name, text));
        f.set(limits, v);
        return;
    }
    std::string known;
    for (const auto& f : fields()) known += fmt::format("{}{}", known.empty() ? "" : ", ", f.name);
    throw std::invalid_argument(fmt::format("--limit: no limit is named '{}' (known: {})", name, known));
}

std::vector<LimitInfo> describe_limits(const DaemonLimits& limits) {
    std::vector<LimitInfo> out;
    for (const auto& f : fields()) out.push_back({std::string(f.name), std::string(f.meaning), f.get(limits)});
    return out;
}

}  // namespace funcd
