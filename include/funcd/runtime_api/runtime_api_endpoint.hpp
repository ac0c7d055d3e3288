#pragma once
// The AWS Lambda Runtime API (2018-06-01) served on one worker's listening socket.
// Every connection accepted on that socket belongs to that worker, so requests need no
// other identification. HTTP framing lives here; what the requests mean lives in the
// worker (RuntimeApiHandler).
//
// What one worker's runtime can make the daemon hold is bounded (RuntimeApiLimits): its
// open connections, the time it takes to send one request, and the bytes of request
// bodies buffered across its connections, which grow only as the bytes arrive.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "funcd/common/unique_fd.hpp"
#include "funcd/runtime_api/response_stream.hpp"
#include "funcd/runtime_api/runtime_api_limits.hpp"

namespace funcd {

// The event a parked `GET /invocation/next` is answered with. The strings are views: the
// caller keeps them alive for the duration of deliver(), which copies what it sends.
struct EventDelivery {
    std::string_view request_id;
    std::int64_t deadline_ms = 0;  // Unix epoch milliseconds
    std::string_view function_arn;
    std::string_view trace_id;
    std::shared_ptr<const std::string> payload;  // shared while it is written, not copied
    // The caller's client context (Lambda's X-Amz-Client-Context, decoded JSON on one
    // line); empty: none. Sent as Lambda-Runtime-Client-Context.
    std::string_view client_context;
};

// A parked `next` request. deliver() returns false when the connection is gone, in
// which case the event was not handed over.
class NextWaiter {
public:
    virtual ~NextWaiter() = default;
    virtual bool deliver(const EventDelivery& event) = 0;
};

struct RuntimeReply {
    int status = 202;
    std::string body;  // JSON
};

class RuntimeApiHandler {
public:
    virtual ~RuntimeApiHandler() = default;
    // The runtime asks for work; answer now or keep the waiter until there is some.
    virtual void on_next(std::shared_ptr<NextWaiter> waiter) = 0;
    // `content_type`: the request's Content-Type (empty: none).
    virtual RuntimeReply on_response(std::string_view request_id, std::string body,
                                     std::string_view content_type) = 0;
    // `error_type` is the Lambda-Runtime-Function-Error-Type header (may be empty). A
    // buffered streaming response that ended with error trailers arrives here too, its
    // error body decoded from base64.
    virtual RuntimeReply on_error(std::string_view request_id, std::string_view error_type,
                                  std::string body) = 0;
    virtual RuntimeReply on_init_error(std::string_view error_type, std::string body) = 0;

    // Response streaming (Lambda-Runtime-Function-Response-Mode: streaming). The head of a
    // streamed response has arrived: the stream its body is to be written to as it arrives,
    // or null to buffer the body whole and answer it through on_response/on_error (the
    // caller wants the whole response, or the request is not for the invocation in progress).
    virtual std::shared_ptr<ResponseStream> on_response_stream(std::string_view /*request_id*/,
                                                               std::string_view /*content_type*/) {
        return nullptr;
    }
    // A streamed body has ended. `error_type` empty: it is complete; otherwise the
    // runtime's error trailers, `error_body` decoded from base64.
    virtual RuntimeReply on_stream_end(std::string_view /*request_id*/, std::string_view /*error_type*/,
                                       std::string /*error_body*/) {
        return {202, R"({"status":"OK"})"};
    }
    // The connection carrying a stream ended before the body did.
    virtual void on_stream_broken(std::string_view /*request_id*/) {}
};

// What the endpoint holds right now, for its owner's accounting and for tests.
struct RuntimeApiUsage {
    std::size_t connections = 0;  // open, the runtime's own AF_UNIX one included
    std::size_t body_bytes = 0;   // allocated for request bodies still being received
};

// Accepts connections on `listener` and serves the Runtime API to them until close(),
// and on `connection` too when given: a connected AF_UNIX stream socket whose other end
// the runtime was started with (see LaunchedWorker::runtime_api_connection).
// Holds the handler weakly: once the worker is gone, requests get 500 and the
// connection is closed.
//
// `peer_uid`: the listener is reachable by more than the worker (the host's loopback), and
// only TCP connections from sockets owned by this host uid are served; any other is closed
// as soon as it is accepted, before a byte of it is read (see tcp_peer_uid()).
class RuntimeApiEndpoint {
public:
    RuntimeApiEndpoint(boost::asio::io_context& io, const RuntimeApiLimits& limits, UniqueFd listener,
                       std::weak_ptr<RuntimeApiHandler> handler, UniqueFd connection = {},
                       std::optional<uid_t> peer_uid = std::nullopt);
    ~RuntimeApiEndpoint();
    RuntimeApiEndpoint(const RuntimeApiEndpoint&) = delete;
    RuntimeApiEndpoint& operator=(const RuntimeApiEndpoint&) = delete;

    // Stops accepting and closes every open connection.
    void close();

    RuntimeApiUsage usage() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace funcd
