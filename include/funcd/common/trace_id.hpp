#pragma once
// Trace ids in AWS's X-Ray header form, the one Lambda hands its runtimes
// (Lambda-Runtime-Trace-Id, _X_AMZN_TRACE_ID):
//   Root=1-<8 hex: Unix seconds>-<24 hex: random>;Parent=<16 hex>;Sampled=<0|1|?>
// An invocation takes the caller's X-Amzn-Trace-Id, or a W3C traceparent turned into that
// form, or a new one; a malformed header is never an error: it is ignored and a new id made.
#include <optional>
#include <string>
#include <string_view>

namespace funcd {

// X-Ray documents no length for the header; with Root, Parent, Sampled and a few other
// fields (Lineage, Self, added by load balancers) real headers stay under 256 bytes. A
// longer one is not trusted: the id goes into every log line's REPORT and the usage ledger.
inline constexpr std::size_t kMaxTraceHeaderBytes = 512;

// The header, normalised (fields as given, Root first, no spaces), when it is a well-formed
// X-Amzn-Trace-Id with a valid Root; nullopt otherwise. Fields other than Root, Parent and
// Sampled are kept when they are key=value of visible ASCII.
std::optional<std::string> parse_amzn_trace_header(std::string_view header);

// A W3C traceparent (version 00 form: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>)
// as the AWS form: Root=1-<first 8 hex>-<last 24 hex>;Parent=<parent id>;Sampled=<flag>.
// nullopt when malformed, or the trace or parent id is all zeros (invalid in W3C).
std::optional<std::string> trace_from_traceparent(std::string_view header);

// A new id: Root=1-<now in Unix seconds, 8 hex>-<96 random bits>;Parent=<64 random
// bits>;Sampled=0. The Parent is there because X-Ray's SDKs in a function expect one (a
// Lambda runtime always gets one); Sampled=0 because funcd records no segments.
std::string new_trace_id();

// The trace id an invocation carries: X-Amzn-Trace-Id if valid, else traceparent if valid,
// else a new one.
std::string trace_id_for(std::string_view amzn_header, std::string_view traceparent);

// The Root's value ("1-5759e988-bd862e3fe1be46a994272793"), what X-Ray and logs search by;
// empty when `trace_id` has no Root field.
std::string_view trace_root(std::string_view trace_id);

}  // namespace funcd
