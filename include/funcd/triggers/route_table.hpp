#pragma once
// User-defined routes under /api, chosen the way API Gateway HTTP APIs choose routes
// ("Create routes for HTTP APIs in API Gateway": path variables, greedy path variables,
// ANY, and "the route with the most-specific match").
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace funcd {

struct Route {
    std::string method;    // GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY
    std::string path;      // "/users/{id}", "/files/{proxy+}", "/"
    std::string function;  // the function the route invokes
};

struct RouteMatch {
    const Route* route;  // points into the table that matched; valid while it lives unchanged
    std::map<std::string, std::string> path_parameters;  // percent-decoded values
};

class RouteTable {
public:
    RouteTable() = default;

    // Validates every route and throws ApiError naming the offending one:
    // 400 InvalidParameterValueException for a bad method, a path not starting with '/', an empty
    // segment, bad {param} syntax, a greedy {name+} that is not the last segment, a repeated
    // parameter name, a bad function name; 409 ResourceConflictException, naming both, for two
    // routes that would match exactly the same requests (same method and same path shape, such
    // as GET /a/{x} and GET /a/{y}).
    static RouteTable build(std::vector<Route> routes);

    // [{"method": ..., "path": ..., "function": ...}, ...]; ApiError(400) when the document
    // has another shape, then as build().
    static RouteTable from_json(const nlohmann::json& body);
    nlohmann::json to_json() const;

    // The most specific route for a request, as API Gateway picks it:
    // 1. a route without a greedy variable beats one with it ("full match" before "{proxy+}");
    // 2. then, segment by segment from the left, a literal beats a {param}, which beats a greedy
    //    {name+} (so the longer literal prefix wins);
    // 3. then a route for the request's method beats ANY for the same path.
    // `path` is the request path below /api, starting with '/', still percent-encoded: segments
    // are split on '/' first and each decoded once, so "%2F" stays inside its segment. A {param}
    // matches one non-empty segment; a greedy variable matches the non-empty rest of the path.
    // nullopt when nothing matches (or the path's percent-escapes are malformed).
    std::optional<RouteMatch> match(std::string_view method, std::string_view path) const;

    const std::vector<Route>& routes() const { return routes_; }

private:
    enum class SegmentKind : std::uint8_t { greedy, param, literal };  // ascending specificity
    struct Segment {
        SegmentKind kind;
        std::string text;  // the literal, or the variable's name without braces and '+'
    };
    struct CompiledRoute {
        std::vector<Segment> segments;
        bool any_method = false;
        bool greedy = false;
    };

    std::vector<Route> routes_;
    std::vector<CompiledRoute> compiled_;  // parallel to routes_
};

}  // namespace funcd
