// The Runtime API's request parser (funcd::RuntimeRequestParser), its body buffer charged to
// the worker's budget (funcd::BodyBuffer) and its routing (funcd::runtime_route_of), fed the
// way the endpoint feeds them (src/runtime_api/runtime_api_endpoint.cpp): what has arrived
// and is not consumed, again after every read, one fresh parser per request on a
// connection whose target string and body buffer are reused.
//
// Invariants:
// - the worker's body budget is never exceeded, what a body holds allocated is at most
//   twice what has arrived of it (never what a Content-Length merely declared), and the
//   budget is back to zero once the connection's buffer is gone;
// - a parsed body is exactly the declared Content-Length and within the payload limit;
// - a response or error route carries a non-empty request id without '/', taken from the
//   request's own path;
// - a streamed response (Lambda-Runtime-Function-Response-Mode: streaming on a response
//   route, handed to a funcd::ResponseStream once its head is parsed, as the endpoint does)
//   never exceeds the stream's limit, and its bytes and trailers do not depend on the split;
// - the outcome does not depend on how the bytes are split across reads: the same requests,
//   an error alike; only the kind of error in a malformed head may differ (see below).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include "../fuzz_check.hpp"
#include "../piece_feed.hpp"
#include "funcd/runtime_api/response_stream.hpp"
#include "funcd/runtime_api/runtime_body_buffer.hpp"
#include "funcd/runtime_api/runtime_request_parser.hpp"
#include "funcd/runtime_api/runtime_route.hpp"

namespace {

using funcd::fuzz::PieceFeed;
using funcd::BodyBudget;
using funcd::BodyBuffer;
using funcd::RuntimeRequestParser;
using funcd::RuntimeRouteKind;
namespace bhttp = boost::beast::http;

// The daemon's default (RuntimeApiLimits::max_body_bytes_per_worker): one body at the payload
// limit fits, so how the bytes are split cannot change whether a body is accepted.
constexpr std::size_t kBudget = 7 * 1024 * 1024;
// The body buffer's first allocation (kFirstBodyAllocation in runtime_body_buffer.cpp) plus
// the terminating NUL every std::string allocation has.
constexpr std::size_t kFirstAllocation = 4 * 1024 + 1;
// What a finished body may keep allocated for the connection's next request
// (kKeptBodyAllocation in runtime_body_buffer.cpp, plus its NUL).
constexpr std::size_t kKeptAllocation = 64 * 1024 + 1;
constexpr int kMaxRequests = 8;
// A streamed response's limit here: small, so that the fuzzer reaches it (the daemon's is
// RuntimeApiLimits::max_stream_bytes, 200 MiB).
constexpr std::uint64_t kStreamLimit = 16 * 1024;

struct Parsed {
    std::string method, target, body, error_type, request_id;
    RuntimeRouteKind route = RuntimeRouteKind::not_found;
    bool keep_alive = false;
    bool streamed = false;
    std::string trailer_error_type, trailer_error_body;

    bool operator==(const Parsed&) const = default;
};

struct Outcome {
    std::vector<Parsed> requests;
    std::string error;
    bool ran_out = false;  // the stream ended in the middle of a request
    bool over_budget = false;

    bool same_refusal(const Outcome& o) const { return over_budget == o.over_budget; }
};

std::string describe(const Outcome& o) {
    std::string out = std::to_string(o.requests.size()) + " requests, error '" + o.error + "'";
    for (const auto& r : o.requests) out += "\n  " + r.method + " " + r.target + " body " + std::to_string(r.body.size());
    return out;
}

void check_budget(const BodyBudget& budget) {
    FUZZ_CHECK(budget.used <= budget.limit,
               "bodies hold " + std::to_string(budget.used) + " bytes, budget " + std::to_string(budget.limit));
}

// Parses `stream` delivered in pieces of `piece` bytes (0: all at once), with `other` bytes
// of the budget already held by another connection of the same worker.
Outcome parse(std::string_view stream, std::size_t piece, std::size_t other) {
    Outcome out;
    BodyBudget budget{kBudget, other};
    {
        std::string target;
        BodyBuffer body(budget);
        std::string buffer;
        PieceFeed feed(stream, piece);
        for (int r = 0; r < kMaxRequests; ++r) {
            RuntimeRequestParser parser(target, body);
            // What the connection's buffer kept from its previous request (reset() gives back
            // only large allocations).
            const std::size_t carried = budget.used - other;
            FUZZ_CHECK(carried <= kKeptAllocation, "a finished body keeps " + std::to_string(carried) + " bytes");
            boost::system::error_code ec;
            std::size_t arrived = 0;  // body bytes the parser has been given at most
            bool stopped = false;
            std::optional<funcd::ResponseStream> streamed;
            for (;;) {
                while (!buffer.empty() && !parser.is_done()) {
                    const bool in_body = parser.is_header_done();
                    if (in_body && !streamed && parser.streaming &&
                        funcd::runtime_route_of(parser.method_string, target).kind == RuntimeRouteKind::response) {
                        streamed.emplace(kBudget, parser.content_type);
                        parser.stream_to(*streamed, kStreamLimit);
                    }
                    const std::size_t used = parser.put(boost::asio::buffer(buffer), ec);
                    FUZZ_CHECK(used <= buffer.size(), "consumed more than it was given");
                    if (in_body || parser.is_header_done()) arrived += used;
                    buffer.erase(0, used);
                    check_budget(budget);
                    const std::size_t held = budget.used - other;
                    FUZZ_CHECK(held <= std::max({kFirstAllocation, 2 * arrived + 1, carried}),
                               "a body holds " + std::to_string(held) + " bytes after " + std::to_string(arrived) +
                                   " arrived");
                    if (ec == bhttp::error::need_more) ec = {};
                    if (ec || used == 0) break;
                }
                if (ec || parser.is_done()) break;
                if (!feed.receive(buffer)) {
                    out.ran_out = parser.got_some();
                    stopped = true;
                    break;
                }
            }
            if (stopped) break;
            if (ec) {
                out.error = ec.message();
                out.over_budget = parser.over_budget;
                if (parser.over_budget) FUZZ_CHECK(ec == bhttp::error::buffer_overflow, "over budget as " + out.error);
                break;
            }
            if (streamed) FUZZ_CHECK(streamed->total_bytes() <= kStreamLimit, "a stream past its limit");
            const auto route = funcd::runtime_route_of(parser.method_string, target);
            Parsed p{parser.method_string, target, {}, parser.error_type, std::string(route.request_id), route.kind,
                     parser.keep_alive(), streamed.has_value(), parser.trailer_error_type, parser.trailer_error_body};
            if (streamed) {
                p.body = std::string(streamed->readable());
                FUZZ_CHECK(p.body.size() == streamed->total_bytes(), "a stream lost bytes");
                FUZZ_CHECK(budget.used - other <= carried, "a streamed body was buffered");
            } else if (route.kind == RuntimeRouteKind::response || route.kind == RuntimeRouteKind::error ||
                       route.kind == RuntimeRouteKind::init_error) {
                // Handed to the worker, as the endpoint does; other routes leave it for reset().
                p.body = body.take();
                FUZZ_CHECK(p.body.size() <= arrived, "a body larger than the bytes that arrived");
                FUZZ_CHECK(p.body.size() <= funcd::kMaxRuntimePayloadBytes, "a body over the payload limit");
                if (const auto declared = parser.content_length())
                    FUZZ_CHECK(p.body.size() == *declared, "body of " + std::to_string(p.body.size()) +
                                                               " bytes, Content-Length " + std::to_string(*declared));
                FUZZ_CHECK(budget.used == other, "a body handed over is still charged");
            }
            if (route.kind == RuntimeRouteKind::response || route.kind == RuntimeRouteKind::error) {
                FUZZ_CHECK(!p.request_id.empty() && p.request_id.find('/') == std::string::npos,
                           "request id '" + p.request_id + "'");
                FUZZ_CHECK(target.find("/invocation/" + p.request_id + "/") != std::string::npos,
                           "request id '" + p.request_id + "' not from the path " + target);
            } else if (route.kind != RuntimeRouteKind::bad_method) {
                FUZZ_CHECK(p.request_id.empty(), "a request id on a route without one");
            }
            const bool keep_alive = p.keep_alive;
            out.requests.push_back(std::move(p));
            if (!keep_alive) break;
        }
    }
    FUZZ_CHECK(budget.used == other, "the budget holds " + std::to_string(budget.used - other) +
                                         " bytes after the connection ended");
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view stream(reinterpret_cast<const char*>(data), size);
    const Outcome whole = parse(stream, 0, 0);
    const std::size_t piece = 1 + (size == 0 ? 0 : data[size / 2] % 13);
    const Outcome pieces = parse(stream, piece, 0);
    // Another connection of the worker holding nearly all of the budget: a body past what is
    // left is refused (429), never allocated.
    parse(stream, piece, kBudget - 600);

    // Beast reports some errors in a start line as soon as the line is there when given the
    // whole head at once, but only once the head is complete (or over its limit) when given it
    // in pieces. So the error's kind may differ, and a stream that ends in the middle of a head
    // may end without one. And Beast holds a head to its limit (8 KiB here) whole in pieces, but
    // start line and fields each at once (see gateway_request_parser.cpp): heads at the limit
    // are not compared.
    const std::string over_limit = boost::system::error_code(bhttp::error::header_limit).message();
    if (whole.error == over_limit || pieces.error == over_limit) return 0;
    FUZZ_CHECK(whole.requests == pieces.requests, "at once: " + describe(whole) + "\nin pieces of " +
                                                      std::to_string(piece) + ": " + describe(pieces));
    if (!whole.ran_out && !pieces.ran_out)
        FUZZ_CHECK(whole.error.empty() == pieces.error.empty() && whole.same_refusal(pieces),
                   "at once: " + describe(whole) + "\nin pieces of " + std::to_string(piece) + ": " + describe(pieces));
    return 0;
}
