#include "funcd/observe/function_metrics.hpp"

#include "funcd/metering/pricing.hpp"

namespace funcd::observe {

std::string_view label(InvocationOutcome o) {
    switch (o) {
        case InvocationOutcome::success: return "success";
        case InvocationOutcome::function_error: return "function_error";
        case InvocationOutcome::timeout: return "timeout";
        case InvocationOutcome::crash: return "crash";
        case InvocationOutcome::init_error: return "init_error";
        case InvocationOutcome::throttled: return "throttled";
    }
    return "unknown";
}

InvocationOutcome outcome_of(Outcome o) {
    switch (o) {
        case Outcome::success: return InvocationOutcome::success;
        case Outcome::function_error: return InvocationOutcome::function_error;
        case Outcome::timeout: return InvocationOutcome::timeout;
        case Outcome::exit_error: return InvocationOutcome::crash;
        case Outcome::init_error: return InvocationOutcome::init_error;
        case Outcome::throttled: return InvocationOutcome::throttled;
    }
    return InvocationOutcome::crash;
}

std::string_view label(ThrottleReason r) {
    switch (r) {
        case ThrottleReason::reserved_concurrency: return "reserved_concurrency";
        case ThrottleReason::account_concurrency: return "account_concurrency";
        case ThrottleReason::memory_budget: return "memory_budget";
        case ThrottleReason::usage_storage: return "usage_storage";
        case ThrottleReason::async_queue_full: return "async_queue_full";
    }
    return "unknown";
}

ThrottleReason throttle_reason_of(std::string_view lambda_reason) {
    if (lambda_reason == "ReservedFunctionConcurrentInvocationLimitExceeded")
        return ThrottleReason::reserved_concurrency;
    if (lambda_reason == "ConcurrentInvocationLimitExceeded") return ThrottleReason::account_concurrency;
    if (lambda_reason == "UsageStorageUnavailable") return ThrottleReason::usage_storage;
    if (lambda_reason == "AsyncQueueDepthExceeded") return ThrottleReason::async_queue_full;
    return ThrottleReason::memory_budget;
}

std::string_view label(DeadLetterReason r) {
    switch (r) {
        case DeadLetterReason::retries_exhausted: return "retries_exhausted";
        case DeadLetterReason::event_age_exceeded: return "event_age_exceeded";
        case DeadLetterReason::resource_not_found: return "resource_not_found";
    }
    return "unknown";
}

DeadLetterReason dead_letter_reason_of(std::string_view reason) {
    if (reason == "EventAgeExceeded") return DeadLetterReason::event_age_exceeded;
    if (reason == "ResourceNotFound") return DeadLetterReason::resource_not_found;
    return DeadLetterReason::retries_exhausted;
}

std::string_view label(EventSource s) {
    switch (s) {
        case EventSource::api: return "api";
        case EventSource::lambda_api: return "lambda_api";
        case EventSource::schedule: return "schedule";
        case EventSource::file: return "file";
        case EventSource::other: return "other";
    }
    return "other";
}

EventSource event_source_of(std::string_view source) {
    const std::string_view kind = source.substr(0, source.find(':'));
    if (kind == "api") return EventSource::api;
    if (kind == "lambda-api") return EventSource::lambda_api;
    if (kind == "schedule") return EventSource::schedule;
    if (kind == "file") return EventSource::file;
    return EventSource::other;
}

std::string_view status_class_label(std::size_t index) {
    static constexpr std::string_view kLabels[kStatusClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    return index < kStatusClasses ? kLabels[index] : "5xx";
}

FunctionMetrics::FunctionMetrics() : duration_(kDurationBucketsUs), billed_duration_(kDurationBucketsUs) {}

void FunctionMetrics::completed(const CompletedInvocation& c) {
    invocations_[static_cast<std::size_t>(outcome_of(c.outcome))].add();
    billed_requests_.add();
    // An event never handed to a worker has no duration (and bills nothing): it would
    // only pull the duration histograms towards zero.
    if (c.outcome != Outcome::init_error) {
        duration_.observe_us(c.duration_us);
        billed_duration_.observe_us(c.billed_ms * 1000);
        billed_mb_ms_.add(static_cast<std::uint64_t>(mb_ms(c.billed_ms, c.memory_mb)));
    }
    if (c.init_duration_us) {
        cold_starts_.add();
        init_duration(c.runtime).observe_us(*c.init_duration_us);
    }
}

void FunctionMetrics::throttled(ThrottleReason r) {
    // An Event invocation refused at its queue never became an invocation.
    if (r != ThrottleReason::async_queue_full) invocations_[static_cast<std::size_t>(InvocationOutcome::throttled)].add();
    throttles_[static_cast<std::size_t>(r)].add();
}

Histogram& FunctionMetrics::init_duration(std::string_view runtime) {
    for (auto& [name, h] : init_durations_)
        if (name == runtime) return *h;
    // Only on a cold start of a runtime this function had not cold-started before.
    return *init_durations_.emplace_back(std::string(runtime), std::make_unique<Histogram>(kDurationBucketsUs)).second;
}

}  // namespace funcd::observe
