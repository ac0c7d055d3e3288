// The HTTP trigger's route table (funcd::RouteTable): building it from the routes document
// (from_json) and choosing the route for a request (match).
//
// Input: the routes document (JSON), optionally followed by a line "--" and request lines
// "METHOD PATH" to match.
//
// Invariants:
// - a bad document is refused with ApiError 400 (409 for two routes matching the same
//   requests) and a message;
// - an accepted table writes back (to_json) to a document that builds the same table;
// - every route matches an example path of its own shape: its literals, and for each
//   variable a value no literal can equal. A route without a greedy variable is chosen for
//   it (no other route is as specific), and its variables come back decoded; a greedy route
//   is chosen unless a route without a greedy variable also matches;
// - any request line matches a route of its method (or ANY) or none, without failing.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../fuzz_check.hpp"
#include "../refusal_check.hpp"
#include "funcd/common/api_error.hpp"
#include "funcd/triggers/route_table.hpp"

namespace {

using json = nlohmann::json;
using funcd::RouteTable;

// A method no route can name, so only ANY routes match it.
constexpr std::string_view kOtherMethod = "TRACE";
// Encoded values for variables: they decode to text with '%', which no literal may hold.
constexpr std::string_view kParamValue = "%25v";
constexpr std::string_view kParamDecoded = "%v";
constexpr std::string_view kGreedyValue = "%25v/%25w";
constexpr std::string_view kGreedyDecoded = "%v/%w";

std::string example_path(const funcd::Route& r) {
    if (r.path == "/") return "/";
    std::string out;
    std::string_view rest = std::string_view(r.path).substr(1);
    while (true) {
        const auto slash = rest.find('/');
        const auto seg = rest.substr(0, slash);
        out += '/';
        if (seg.starts_with('{')) out += seg.ends_with("+}") ? kGreedyValue : kParamValue;
        else out += seg;
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    return out;
}

void check_own_example(const RouteTable& table, const funcd::Route& r) {
    const std::string method = r.method == "ANY" ? std::string(kOtherMethod) : r.method;
    const std::string path = example_path(r);
    const auto m = table.match(method, path);
    FUZZ_CHECK(m.has_value(), "route " + r.method + " " + r.path + " does not match its example " + path);
    const bool greedy = r.path.find("+}") != std::string::npos;
    if (m->route != &r) {
        FUZZ_CHECK(greedy && m->route->path.find("+}") == std::string::npos,
                   "route " + r.method + " " + r.path + " lost its example " + path + " to " + m->route->method + " " +
                       m->route->path);
        return;
    }
    for (const auto& [name, value] : m->path_parameters)
        FUZZ_CHECK(value == kParamDecoded || value == kGreedyDecoded,
                   "variable " + name + " of " + r.path + " came back as '" + value + "'");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view requests;
    if (const auto sep = input.find("\n--\n"); sep != std::string_view::npos) {
        requests = input.substr(sep + 4);
        input = input.substr(0, sep);
    }
    const json doc = json::parse(input, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return 0;

    RouteTable table;
    try {
        table = RouteTable::from_json(doc);
    } catch (const funcd::ApiError& e) {
        funcd::fuzz::check_refusal(e, input, {400, 409});
        return 0;
    }

    try {
        const RouteTable again = RouteTable::from_json(table.to_json());
        FUZZ_CHECK(again.to_json() == table.to_json(), "the table written back builds another table");
    } catch (const funcd::ApiError& e) {
        FUZZ_CHECK(false, std::string("the table written back is refused: ") + e.what());
    }

    for (const auto& r : table.routes()) check_own_example(table, r);

    while (!requests.empty()) {
        const auto nl = requests.find('\n');
        const auto line = requests.substr(0, nl);
        const auto space = line.find(' ');
        const auto method = line.substr(0, space);
        const auto path = space == std::string_view::npos ? std::string_view("/") : line.substr(space + 1);
        if (const auto m = table.match(method, path)) {
            FUZZ_CHECK(m->route->method == "ANY" || m->route->method == method,
                       "a " + std::string(method) + " request matched " + m->route->method + " " + m->route->path);
            FUZZ_CHECK(path.starts_with('/'), "a path without '/' matched");
        }
        if (nl == std::string_view::npos) break;
        requests.remove_prefix(nl + 1);
    }
    return 0;
}
