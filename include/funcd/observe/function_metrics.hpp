#pragma once
// Everything counted about one function, by the parts that decide it: the dispatcher (every
// invocation's outcome, durations, cold starts, throttles, billed memory-time) and the
// asynchronous invoker (retries, dead letters). Created when the function is deployed or
// loaded; the invoke path holds a reference and only adds.
//
// Labels stay bounded: one record per function, and each label below is a small enum.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "funcd/metering/usage_record.hpp"
#include "funcd/observe/counter.hpp"
#include "funcd/observe/histogram.hpp"

namespace funcd::observe {

// The `outcome` label of funcd_invocations_total: the usage record's outcomes (exit_error
// is a worker that crashed or ran out of memory mid-invocation) and throttles.
enum class InvocationOutcome { success, function_error, timeout, crash, init_error, throttled };
inline constexpr std::size_t kInvocationOutcomes = 6;
std::string_view label(InvocationOutcome o);
InvocationOutcome outcome_of(Outcome o);

// The `reason` label of funcd_throttles_total.
enum class ThrottleReason {
    reserved_concurrency,  // the function's reserved concurrency (or 0: disabled)
    account_concurrency,   // --max-concurrency, the unreserved share of it
    memory_budget,         // no room for another worker in --memory-budget-mb
    usage_storage,         // usage records cannot be made durable
    async_queue_full,      // an Event invocation refused: its function's queue is full
};
inline constexpr std::size_t kThrottleReasons = 5;
std::string_view label(ThrottleReason r);
// From Lambda's Reason string the dispatcher answers with (TooManyRequestsException).
ThrottleReason throttle_reason_of(std::string_view lambda_reason);

// The `reason` label of funcd_dead_letters_total.
enum class DeadLetterReason { retries_exhausted, event_age_exceeded, resource_not_found };
inline constexpr std::size_t kDeadLetterReasons = 3;
std::string_view label(DeadLetterReason r);
// From the reason the asynchronous invoker records (RetriesExhausted, ...).
DeadLetterReason dead_letter_reason_of(std::string_view reason);

// The `source` label of funcd_async_events_total: what sent an asynchronous event.
enum class EventSource { api, lambda_api, schedule, file, other };
inline constexpr std::size_t kEventSources = 5;
std::string_view label(EventSource s);
// From the source the asynchronous invoker is given ("api", "lambda-api", "schedule:NAME", "file:NAME").
EventSource event_source_of(std::string_view source);

// The `code` label of funcd_http_trigger_responses_total: a status class.
inline constexpr std::size_t kStatusClasses = 5;  // 1xx to 5xx
std::string_view status_class_label(std::size_t index);  // 0 -> "1xx"

// One invocation that ran (or failed to start): what the dispatcher knows when it completes.
struct CompletedInvocation {
    Outcome outcome = Outcome::success;
    std::int64_t duration_us = 0;
    std::int64_t billed_ms = 0;
    int memory_mb = 0;
    std::optional<std::int64_t> init_duration_us;  // the invocation waited for a cold start
    std::string_view runtime;                      // "python3.12", "provided.al2023", ...
};

class FunctionMetrics {
public:
    FunctionMetrics();

    // Once per invocation, on the loop, when its result is known.
    void completed(const CompletedInvocation& c);
    void throttled(ThrottleReason r);
    // Asynchronous events of the function (the asynchronous invoker, on the loop).
    void async_retried() { async_retries_.add(); }
    void dead_lettered(DeadLetterReason r) { dead_letters_[static_cast<std::size_t>(r)].add(); }
    void async_accepted(EventSource s) { async_accepted_[static_cast<std::size_t>(s)].add(); }
    // An answer of the function's URL or routes (the HTTP trigger, on the loop).
    void http_answered(int status) {
        if (status >= 100 && status < 600) http_responses_[static_cast<std::size_t>(status / 100 - 1)].add();
    }

    std::uint64_t invocations(InvocationOutcome o) const { return invocations_[static_cast<std::size_t>(o)].value(); }
    std::uint64_t throttles(ThrottleReason r) const { return throttles_[static_cast<std::size_t>(r)].value(); }
    std::uint64_t dead_letters(DeadLetterReason r) const { return dead_letters_[static_cast<std::size_t>(r)].value(); }
    std::uint64_t async_retries() const { return async_retries_.value(); }
    std::uint64_t accepted_events(EventSource s) const { return async_accepted_[static_cast<std::size_t>(s)].value(); }
    std::uint64_t http_responses(std::size_t status_class) const { return http_responses_[status_class].value(); }
    std::uint64_t cold_starts() const { return cold_starts_.value(); }
    // Billed memory-time in MB-milliseconds, and the invocations billed as requests (every
    // one that was not throttled, as in the usage records): with prices, GB-s and cost.
    std::uint64_t billed_mb_ms() const { return billed_mb_ms_.value(); }
    std::uint64_t billed_requests() const { return billed_requests_.value(); }
    const Histogram& duration() const { return duration_; }
    const Histogram& billed_duration() const { return billed_duration_; }
    // Init durations by runtime, in the order the runtimes first cold-started. A function's
    // runtime changes only when it is redeployed, so this holds one or two entries.
    const std::vector<std::pair<std::string, std::unique_ptr<Histogram>>>& init_durations() const {
        return init_durations_;
    }

private:
    Histogram& init_duration(std::string_view runtime);

    std::array<Counter, kInvocationOutcomes> invocations_;
    std::array<Counter, kThrottleReasons> throttles_;
    std::array<Counter, kDeadLetterReasons> dead_letters_;
    Counter async_retries_;
    std::array<Counter, kEventSources> async_accepted_;
    std::array<Counter, kStatusClasses> http_responses_;
    Counter cold_starts_;
    Counter billed_mb_ms_;
    Counter billed_requests_;
    Histogram duration_;
    Histogram billed_duration_;
    std::vector<std::pair<std::string, std::unique_ptr<Histogram>>> init_durations_;
};

}  // namespace funcd::observe
