#pragma once
// One invocation's data as it travels dispatcher -> pool -> worker and back.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "funcd/metering/usage_record.hpp"
#include "funcd/registry/registry.hpp"
#include "funcd/runtime_api/response_stream.hpp"

namespace funcd {

struct InvocationResult {
    Outcome outcome = Outcome::success;
    // success: the function's result bytes; errors: a Lambda-style error document
    // {"errorMessage", "errorType", ...}.
    // A streamed response's bytes went to the stream (Invocation::on_stream), not here.
    std::string body;
    // success: the Content-Type the runtime gave its response (empty: none).
    std::string content_type;
    std::string error_type;  // empty on success
    std::int64_t version = 0;
    SystemTime start;
    std::int64_t duration_us = 0;
    std::optional<std::int64_t> init_duration_us;  // set on the invocation that cold-started a worker
    std::uint64_t max_memory_used_bytes = 0;
    // Set when the invocation never ran because a limit was hit: Lambda's throttle reason
    // (ReservedFunctionConcurrentInvocationLimitExceeded, ...); `body` is the message.
    std::optional<std::string> throttled;
    // With Invocation::capture_log: the invocation's log lines, START to REPORT, at most
    // the last kMaxLogTailBytes (Lambda's X-Amz-Log-Result).
    std::string log_tail;
};

// Lambda returns the last 4 KB of an invocation's log with LogType Tail.
inline constexpr std::size_t kMaxLogTailBytes = 4096;

struct Invocation {
    std::string request_id;
    std::string trace_id;
    std::string trigger;  // InvokeOptions::trigger
    std::shared_ptr<const std::string> payload;
    FunctionPtr function;
    std::chrono::steady_clock::time_point received;
    // The ARN the caller named (an alias's, say); empty: the version's own.
    std::string invoked_arn;
    // Lambda's client context, passed to the runtime; empty: none.
    std::string client_context;
    // Keep the invocation's log lines for the caller (InvocationResult::log_tail).
    bool capture_log = false;
    std::string captured_log;
    // Called exactly once, on the event loop.
    std::function<void(InvocationResult)> done;
    // Set by a caller that takes a streamed response as it is produced (Lambda's response
    // streaming): called on the loop when the runtime begins to stream its response, before
    // `done`, which then carries no body. Without it a streamed response is buffered whole,
    // within the payload limit, like any other.
    std::function<void(const Invocation&, std::shared_ptr<ResponseStream>)> on_stream;
    // Which concurrency counts the dispatcher charged it to while it runs.
    struct {
        bool running = false;
        bool unreserved = false;
    } admission;
};

using InvocationPtr = std::shared_ptr<Invocation>;

// {"errorMessage": message, "errorType": type}
std::string error_document(std::string_view type, std::string_view message);

}  // namespace funcd
