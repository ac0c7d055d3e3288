// The gateway's HTTP/1.1 request parser (funcd::http::RequestParser) fed the way the server
// feeds it (src/gateway/http_server.cpp): whatever bytes have arrived and are not consumed,
// again after every read, one fresh parser per request on a kept-alive connection.
//
// Invariants:
// - a parsed request has a method and a target, lower-case header names, a body within the
//   limit the head decision chose, and exactly the declared Content-Length of body;
// - the head decision is asked exactly once per request, once its head is complete, and a
//   refusal or a declared length over the limit stops the parser before any body is kept;
// - the outcome does not depend on how the bytes are split across reads: the same stream
//   delivered at once and in small pieces parses to the same requests, ends in an error (or a
//   refusal) alike, and only the kind of error in a malformed head may differ; except for heads
//   at the header limit, which Beast counts differently in the two cases (see below).
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
#include "funcd/gateway/request_parser.hpp"

namespace {

using funcd::fuzz::PieceFeed;
using funcd::http::HeadDecision;
using funcd::http::Request;
using funcd::http::RequestParser;
using funcd::http::Response;
namespace bhttp = boost::beast::http;

// Small limits, so the fuzzer reaches them with short inputs.
constexpr std::size_t kHeaderLimit = 512;
constexpr std::size_t kBodyLimit = 256;
constexpr std::size_t kSmallBodyLimit = 8;
// Requests parsed from one connection's bytes (keep-alive, pipelined).
constexpr int kMaxRequests = 8;

// What the gateway's head callback does, simplified: some targets are refused outright (as
// a request without credentials is), some take only small bodies.
HeadDecision decide(const Request& head) {
    if (head.target.starts_with("/refuse")) return HeadDecision::refuse(Response{401, {}, "{}", "application/json"});
    return HeadDecision::read_body(head.target.starts_with("/small") ? kSmallBodyLimit : kBodyLimit);
}

struct Parsed {
    std::string method, target, body;
    std::vector<std::pair<std::string, std::string>> headers;
    unsigned version = 0;
    bool keep_alive = false;
    bool expect_continue = false;

    bool operator==(const Parsed&) const = default;
};

struct Outcome {
    std::vector<Parsed> requests;
    std::string error;  // the error that ended the stream ("" when it ran out or closed)
    bool ran_out = false;  // the stream ended in the middle of a request
    bool refused = false;
    std::optional<std::uint64_t> declared_too_large;

    bool same_refusal(const Outcome& o) const { return refused == o.refused && declared_too_large == o.declared_too_large; }
};

std::string describe(const Outcome& o) {
    std::string out = std::to_string(o.requests.size()) + " requests, error '" + o.error + "'";
    for (const auto& r : o.requests) out += "\n  " + r.method + " " + r.target + " body " + std::to_string(r.body.size());
    return out;
}

std::optional<std::uint64_t> declared_length(const Parsed& r) {
    std::optional<std::uint64_t> out;
    for (const auto& [name, value] : r.headers) {
        if (name == "transfer-encoding") return std::nullopt;
        if (name != "content-length") continue;
        if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != std::string::npos)
            return std::nullopt;
        out = std::stoull(value);
    }
    return out;
}

// Parses `stream` delivered in pieces of `piece` bytes (0: all at once).
Outcome parse(std::string_view stream, std::size_t piece) {
    Outcome out;
    std::string buffer;  // received, not yet consumed: what the server's flat_buffer holds
    PieceFeed feed(stream, piece);
    for (int r = 0; r < kMaxRequests; ++r) {
        int decisions = 0;
        const funcd::http::HeadFn head = [&](const Request& h) {
            ++decisions;
            FUZZ_CHECK(h.body.empty(), "the head decision saw a body");
            return decide(h);
        };
        RequestParser parser(kHeaderLimit, head);
        boost::system::error_code ec;
        for (;;) {
            while (!buffer.empty() && !parser.is_done()) {
                const std::size_t used = parser.put(boost::asio::buffer(buffer), ec);
                FUZZ_CHECK(used <= buffer.size(), "consumed more than it was given");
                buffer.erase(0, used);
                if (ec == bhttp::error::need_more) ec = {};
                if (ec || used == 0) break;
            }
            if (ec || parser.is_done()) break;
            if (!feed.receive(buffer)) {
                // The peer stopped sending: the server closes without an answer.
                out.ran_out = parser.got_some();
                return out;
            }
        }
        FUZZ_CHECK(decisions <= 1, "head decision asked " + std::to_string(decisions) + " times");
        FUZZ_CHECK(decisions == 1 || !parser.is_done(), "a request parsed without a head decision");
        if (ec) {
            out.error = ec.message();
            out.refused = parser.refusal.has_value();
            out.declared_too_large = parser.declared_too_large;
            if (parser.refusal || parser.declared_too_large) {
                FUZZ_CHECK(ec == bhttp::error::body_limit, "a refusal must stop the parser as body_limit");
                FUZZ_CHECK(parser.request.body.empty(), "a refused request kept body bytes");
            }
            if (parser.declared_too_large)
                FUZZ_CHECK(*parser.declared_too_large > parser.limit, "declared length within the limit refused");
            return out;
        }
        Parsed p{parser.request.method, parser.request.target, parser.request.body, parser.request.headers,
                 parser.version, parser.keep_alive(), parser.expect_continue};
        FUZZ_CHECK(!p.method.empty() && !p.target.empty(), "a request without method or target");
        FUZZ_CHECK(p.version == 10 || p.version == 11, "version " + std::to_string(p.version));
        for (const auto& [name, value] : p.headers) {
            FUZZ_CHECK(!name.empty(), "an empty header name");
            FUZZ_CHECK(name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos,
                       "header name not lower-cased: " + name);
        }
        FUZZ_CHECK(!parser.refusal, "a refused request was parsed");
        FUZZ_CHECK(p.body.size() <= parser.limit,
                   "body of " + std::to_string(p.body.size()) + " over limit " + std::to_string(parser.limit));
        if (const auto length = declared_length(p))
            FUZZ_CHECK(p.body.size() == *length, "body of " + std::to_string(p.body.size()) +
                                                     " bytes, Content-Length " + std::to_string(*length));
        const bool keep_alive = p.keep_alive;
        out.requests.push_back(std::move(p));
        if (!keep_alive) return out;  // the server answers and closes
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view stream(reinterpret_cast<const char*>(data), size);
    const Outcome whole = parse(stream, 0);
    // A piece size that varies with the input, so different splits are tried over a run.
    const std::size_t piece = 1 + (size == 0 ? 0 : data[size / 2] % 13);
    const Outcome pieces = parse(stream, piece);
    // Beast reports some errors in a start line as soon as the line is there when given the
    // whole head at once, but only once the head is complete (or over its limit) when given it
    // in pieces. So the error's kind may differ, and a stream that ends in the middle of a head
    // may end without one.
    // Beast also holds a head to its limit differently: in pieces the whole head, at once the
    // start line and the fields each (so a head up to the start line's length over the limit
    // passes when it arrives in one read). Heads at the limit are compared only for the checks
    // in parse().
    const std::string over_limit = boost::system::error_code(bhttp::error::header_limit).message();
    if (whole.error == over_limit || pieces.error == over_limit) return 0;
    FUZZ_CHECK(whole.requests == pieces.requests, "at once: " + describe(whole) + "\nin pieces of " +
                                                      std::to_string(piece) + ": " + describe(pieces));
    if (!whole.ran_out && !pieces.ran_out)
        FUZZ_CHECK(whole.error.empty() == pieces.error.empty() && whole.same_refusal(pieces),
                   "at once: " + describe(whole) + "\nin pieces of " + std::to_string(piece) + ": " + describe(pieces));
    return 0;
}
