// Lambda's Invoke and the deprecated InvokeAsync: the same dispatcher, limits, metering
// and workers as /v1 invocations, answered the way Lambda answers.
#include <fmt/format.h>

#include "funcd/common/base64.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/trace_id.hpp"
#include "funcd/lambda_api/event_stream.hpp"
#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// Lambda's limit on X-Amz-Client-Context (botocore's model: base64, up to 3,583 bytes).
constexpr std::size_t kMaxClientContextBytes = 3583;

std::string label_of(std::int64_t version) {
    return version == kLatestVersion ? std::string(kLatestLabel) : std::to_string(version);
}

// The version an invocation runs, as Lambda resolves it: unqualified is $LATEST.
FunctionPtr target_version(const FunctionRecord& r, const FunctionRef& ref) {
    if (!ref.qualifier) return r.latest;
    return resolve(r, *Qualifier::parse(*ref.qualifier), uniform_draw());
}

void check_json_payload(std::string& payload) {
    // Lambda hands an empty payload to the function as {}.
    if (payload.empty()) {
        payload = "{}";
        return;
    }
    // Checked without building the document: the payload may be megabytes, and this is the loop.
    if (!json::accept(payload))
        throw LambdaError::invalid_content("Could not parse request body into json: Could not parse payload into json: "
                                           "the payload is not valid JSON");
}

// An Event invocation that was not queued: a full queue is Lambda's throttle (429), a
// store that failed is the service's error.
LambdaError async_refusal(const AcceptResult& result) {
    if (result.kind() == AcceptResult::Kind::queue_full)
        return LambdaError::throttled(result.message(), std::string(kQueueFullReason));
    if (result.kind() == AcceptResult::Kind::storage_full) return LambdaError(507, "InsufficientStorage", result.message());
    if (result.kind() == AcceptResult::Kind::store_unavailable) return LambdaError::unavailable(result.message());
    return LambdaError::service(result.message());
}

constexpr std::string_view kEventStreamContentType = "application/vnd.amazon.eventstream";

// InvokeComplete's body: nothing on success; the error's type and message otherwise.
std::string complete_json(std::string_view error_type, std::string_view error_document, const std::string* log_tail) {
    json j = json::object();
    if (!error_type.empty()) {
        j["ErrorCode"] = error_type;
        const json doc = json::parse(error_document, nullptr, false);
        j["ErrorDetails"] = doc.is_object() && doc.contains("errorMessage") && doc["errorMessage"].is_string()
                                ? doc["errorMessage"].get<std::string>()
                                : std::string(error_document);
    }
    if (log_tail) j["LogResult"] = base64_encode(*log_tail);
    return j.dump();
}

// Re-frames a function's stream as InvokeWithResponseStream's events, as the caller takes
// them: a PayloadChunk per piece read, InvokeComplete at the end. The framed stream's
// backpressure reaches the function's: nothing is read from it while the framed one is full.
class EventStreamRelay : public std::enable_shared_from_this<EventStreamRelay> {
public:
    EventStreamRelay(std::shared_ptr<ResponseStream> from, std::shared_ptr<ResponseStream> to)
        : from_(std::move(from)), to_(std::move(to)) {}

    void pump() {
        for (;;) {
            if (to_->cancelled()) return from_->cancel();
            if (to_->full()) return to_->when_drained([self = shared_from_this()] { self->pump(); });
            const std::string_view data = from_->readable();
            if (!data.empty()) {
                to_->write(payload_chunk_event(data));
                from_->consume(data.size());
                continue;
            }
            switch (from_->state()) {
                case ResponseStream::State::open:
                    return from_->when_readable([self = shared_from_this()] { self->pump(); });
                case ResponseStream::State::complete:
                    to_->write(invoke_complete_event(complete_json({}, {}, nullptr)));
                    return to_->finish();
                case ResponseStream::State::failed:
                    to_->write(invoke_complete_event(complete_json(from_->error_type(), from_->error_body(), nullptr)));
                    return to_->finish();
            }
        }
    }

private:
    std::shared_ptr<ResponseStream> from_;
    std::shared_ptr<ResponseStream> to_;
};

}  // namespace

void LambdaApi::invoke_with_response_stream(const CallPtr& call, const FunctionRef& ref) {
    FunctionRecordPtr r = record_for(*call, ref);
    FunctionPtr fn = target_version(*r, ref);
    if (!fn) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, ref.qualifier.value_or("")));
    std::string type(call->req.header("x-amz-invocation-type"));
    if (type.empty()) type = "RequestResponse";
    if (type != "RequestResponse" && type != "DryRun")
        throw validation_error(type, "invocationType", "Member must satisfy enum value set: [RequestResponse, DryRun]");
    const std::string_view log_type = call->req.header("x-amz-log-type");
    if (!log_type.empty() && log_type != "None" && log_type != "Tail")
        throw validation_error(std::string(log_type), "logType", "Member must satisfy enum value set: [None, Tail]");
    std::string payload = std::move(call->req.body);
    check_json_payload(payload);
    dispatcher_.check_accepting();
    if (type == "DryRun") return call->reply_empty(204);

    InvokeOptions options;
    options.request_id = call->request_id;
    options.invoked_arn = arn(*call, ref.name, ref.qualifier.value_or(""));
    options.capture_log = log_type == "Tail";
    options.trace_id = trace_id_for(call->req.header("x-amzn-trace-id"), call->req.header("traceparent"));
    options.trigger = "lambda";
    auto streamed = std::make_shared<bool>(false);
    const std::size_t buffer_bytes = options_.stream_buffer_bytes;
    options.on_stream = [call, streamed, buffer_bytes](const Invocation& inv, std::shared_ptr<ResponseStream> from) {
        *streamed = true;
        auto to = std::make_shared<ResponseStream>(buffer_bytes, std::string(kEventStreamContentType));
        http::Response out{200, {}, {}, std::string(kEventStreamContentType)};
        out.headers.emplace_back("X-Amz-Executed-Version", inv.function->label());
        out.stream = to;
        call->reply(std::move(out));
        std::make_shared<EventStreamRelay>(std::move(from), std::move(to))->pump();
    };
    dispatcher_.invoke(fn, std::move(payload), [call, streamed](const Invocation& inv, InvocationResult res) {
        if (*streamed) return;  // answered by the stream
        if (res.throttled) return call->fail(LambdaError::throttled(res.body, *res.throttled));
        // A function that did not stream: its whole answer as one chunk, then the end.
        std::string body;
        const bool ok = res.outcome == Outcome::success;
        if (ok && !res.body.empty()) body += payload_chunk_event(res.body);
        body += invoke_complete_event(complete_json(ok ? std::string_view() : std::string_view(res.error_type),
                                                    ok ? std::string_view() : std::string_view(res.body),
                                                    inv.capture_log ? &res.log_tail : nullptr));
        http::Response out{200, {}, std::move(body), std::string(kEventStreamContentType)};
        out.headers.emplace_back("X-Amz-Executed-Version", label_of(res.version));
        call->reply(std::move(out));
    }, std::move(options));
}

void LambdaApi::invoke(const CallPtr& call, const FunctionRef& ref) {
    FunctionRecordPtr r = record_for(*call, ref);
    FunctionPtr fn = target_version(*r, ref);
    if (!fn) throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, ref.qualifier.value_or("")));

    std::string type(call->req.header("x-amz-invocation-type"));
    if (type.empty()) type = "RequestResponse";
    if (type != "RequestResponse" && type != "Event" && type != "DryRun")
        throw validation_error(type, "invocationType", "Member must satisfy enum value set: [Event, RequestResponse, DryRun]");
    const std::string_view log_type = call->req.header("x-amz-log-type");
    if (!log_type.empty() && log_type != "None" && log_type != "Tail")
        throw validation_error(std::string(log_type), "logType", "Member must satisfy enum value set: [None, Tail]");

    std::string payload = std::move(call->req.body);
    check_json_payload(payload);
    if (type == "Event" && payload.size() > limits::kMaxAsyncPayloadBytes)
        throw LambdaError::too_large(fmt::format("{} byte payload is too large for the Event invocation type (limit {} bytes)",
                                                 payload.size(), limits::kMaxAsyncPayloadBytes));
    dispatcher_.check_accepting();
    if (type == "DryRun") return call->reply_empty(204);
    if (type == "Event") {
        // Queued for the version the caller named; unqualified is $LATEST.
        const std::string target = ref.name + ":" + ref.qualifier.value_or(std::string(kLatestLabel));
        async_.submit(
            target, std::move(payload), "lambda-api",
            [call](const AcceptResult& result) {
                if (!result.ok()) return call->fail(async_refusal(result));
                call->request_id = result.request_id();
                call->reply_empty(202);
            },
            trace_id_for(call->req.header("x-amzn-trace-id"), call->req.header("traceparent")));
        return;
    }

    InvokeOptions options;
    // The request's id is the invocation's: one id from the caller's header to the runtime.
    options.request_id = call->request_id;
    options.invoked_arn = arn(*call, ref.name, ref.qualifier.value_or(""));
    options.capture_log = log_type == "Tail";
    options.trace_id = trace_id_for(call->req.header("x-amzn-trace-id"), call->req.header("traceparent"));
    options.trigger = "lambda";
    if (auto context = call->req.header("x-amz-client-context"); !context.empty()) {
        auto decoded = base64_decode(context);
        if (context.size() > kMaxClientContextBytes || !decoded || !json::accept(*decoded))
            throw LambdaError::invalid_parameter("Client context must be a valid Base64-encoded JSON object of at most " +
                                                 std::to_string(kMaxClientContextBytes) + " bytes.");
        // One line: it travels as a header of the Runtime API's next event.
        options.client_context = json::parse(*decoded).dump();
    }
    dispatcher_.invoke(fn, std::move(payload), [call](const Invocation& inv, InvocationResult res) {
        if (res.throttled) return call->fail(LambdaError::throttled(res.body, *res.throttled));
        http::Response out{200, {}, std::move(res.body), "application/json"};
        out.headers.reserve(4);
        out.headers.emplace_back("X-Amz-Executed-Version", label_of(res.version));
        out.headers.emplace_back("X-Amzn-Trace-Id", inv.trace_id);
        // Whatever went wrong in the function (an init failure included) is its error, not the API's.
        if (res.outcome != Outcome::success) out.headers.emplace_back("X-Amz-Function-Error", "Unhandled");
        if (inv.capture_log) out.headers.emplace_back("X-Amz-Log-Result", base64_encode(res.log_tail));
        call->reply(std::move(out));
    }, std::move(options));
}

void LambdaApi::invoke_async(const CallPtr& call, const FunctionRef& ref) {
    FunctionRecordPtr r = record_for(*call, ref);
    if (!target_version(*r, ref))
        throw LambdaError::not_found("Function not found: " + arn(*call, ref.name, ref.qualifier.value_or("")));
    std::string payload = std::move(call->req.body);
    check_json_payload(payload);
    dispatcher_.check_accepting();
    const std::string target = ref.name + ":" + ref.qualifier.value_or(std::string(kLatestLabel));
    async_.submit(
        target, std::move(payload), "lambda-api",
        [call](const AcceptResult& result) {
            if (!result.ok()) return call->fail(async_refusal(result));
            call->request_id = result.request_id();
            call->reply(202, {{"Status", 202}});
        },
        trace_id_for(call->req.header("x-amzn-trace-id"), call->req.header("traceparent")));
}

}  // namespace funcd
