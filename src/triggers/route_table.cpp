#include "funcd/triggers/route_table.hpp"

#include <algorithm>
#include <array>

#include <boost/url/pct_string_view.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/registry/function_config.hpp"

namespace funcd {

using json = nlohmann::json;

namespace {

// The methods an HTTP API route may name; ANY matches "all methods that you haven't defined for
// a resource".
constexpr std::array<std::string_view, 8> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"};
constexpr std::string_view kAnyMethod = "ANY";

// A route's name in messages, as API Gateway writes a route key.
std::string describe(const Route& r) { return "'" + r.method + " " + r.path + "'"; }

std::string method_choices() {
    std::string out;
    for (const auto m : kMethods) {
        if (!out.empty()) out += ", ";
        out += m;
    }
    return out;
}

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// Variable names as API Gateway accepts them in route paths: word characters, '.', ':' and '-'.
bool is_param_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return is_alnum(c) || c == '_' || c == '.' || c == ':' || c == '-';
    });
}

// A literal segment is written decoded and compared with the decoded request segment, so it holds
// RFC 3986 path characters (pchar) without percent-escapes: '%' would make "/a%20b" mean either
// itself or "/a b". '{' and '}' are reserved for variables.
bool is_literal(std::string_view s) {
    constexpr std::string_view kPunctuation = "-._~!$&'()*+,;=:@";
    return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
        return is_alnum(c) || kPunctuation.find(c) != std::string_view::npos;
    });
}

std::optional<std::string> percent_decode(std::string_view s) {
    const auto pct = boost::urls::make_pct_string_view(s);
    if (!pct) return std::nullopt;
    return pct->decode();
}

}  // namespace

RouteTable RouteTable::build(std::vector<Route> routes) {
    RouteTable table;
    table.compiled_.reserve(routes.size());
    // Path shape (literals kept, variable names dropped) plus method -> the route that has it.
    std::map<std::string, std::size_t> shapes;

    for (std::size_t i = 0; i < routes.size(); ++i) {
        const Route& r = routes[i];
        const auto bad = [&](const std::string& what) { return ApiError::bad_parameter("route " + describe(r) + ": " + what); };

        if (std::find(kMethods.begin(), kMethods.end(), r.method) == kMethods.end())
            throw bad("method must be one of " + method_choices() + " (got '" + r.method + "')");
        if (!r.path.starts_with('/')) throw bad("path must start with '/'");

        CompiledRoute c;
        c.any_method = r.method == kAnyMethod;
        std::string shape = r.method + " ";
        std::vector<std::string_view> names;
        if (r.path != "/") {
            std::string_view rest = std::string_view(r.path).substr(1);
            while (true) {
                const auto slash = rest.find('/');
                const std::string_view seg = rest.substr(0, slash);
                if (c.greedy) throw bad("a greedy variable like {proxy+} must be the last segment");
                if (seg.empty()) throw bad("path has an empty segment");
                if (seg.front() == '{') {
                    if (seg.size() < 3 || seg.back() != '}')
                        throw bad("segment '" + std::string(seg) + "' must be a whole {name} or {name+}");
                    std::string_view name = seg.substr(1, seg.size() - 2);
                    const bool greedy = name.ends_with('+');
                    if (greedy) name.remove_suffix(1);
                    if (!is_param_name(name))
                        throw bad("variable '" + std::string(seg) +
                                  "' must be named with letters, digits, '_', '.', ':' or '-'");
                    if (std::find(names.begin(), names.end(), name) != names.end())
                        throw bad("variable name '" + std::string(name) + "' is used twice");
                    names.push_back(name);
                    c.segments.push_back({greedy ? SegmentKind::greedy : SegmentKind::param, std::string(name)});
                    c.greedy = greedy;
                    shape += greedy ? "/{+}" : "/{}";
                } else {
                    if (!is_literal(seg))
                        throw bad("segment '" + std::string(seg) +
                                  "' must be a {variable} or letters, digits and -._~!$&'()*+,;=:@ "
                                  "(no percent-escapes)");
                    c.segments.push_back({SegmentKind::literal, std::string(seg)});
                    shape += '/';
                    shape += seg;
                }
                if (slash == std::string_view::npos) break;
                rest.remove_prefix(slash + 1);
            }
        }

        try {
            validate_function_name(r.function);
        } catch (const ApiError& e) {
            throw bad(e.what());
        }

        if (auto [it, fresh] = shapes.try_emplace(shape, i); !fresh)
            throw ApiError::conflict("routes " + describe(routes[it->second]) + " and " + describe(r) +
                                     " match the same requests");
        table.compiled_.push_back(std::move(c));
    }
    table.routes_ = std::move(routes);
    return table;
}

RouteTable RouteTable::from_json(const json& body) {
    if (!body.is_array())
        throw ApiError::bad_content(R"(the routes must be a JSON array of {"method", "path", "function"} objects)");
    std::vector<Route> routes;
    routes.reserve(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
        const json& item = body[i];
        const std::string where = "routes[" + std::to_string(i) + "]";
        if (!item.is_object()) throw ApiError::bad_parameter(where + " must be an object");
        Route r;
        const auto field = [&](const char* name, std::string& out) {
            const auto it = item.find(name);
            if (it == item.end()) throw ApiError::bad_parameter(where + "." + name + " is required");
            if (!it->is_string()) throw ApiError::bad_parameter(where + "." + name + " must be a string");
            out = it->get<std::string>();
        };
        field("method", r.method);
        field("path", r.path);
        field("function", r.function);
        for (const auto& [key, value] : item.items())
            if (key != "method" && key != "path" && key != "function")
                throw ApiError::bad_parameter(where + ": unknown field '" + key + "'");
        routes.push_back(std::move(r));
    }
    return build(std::move(routes));
}

json RouteTable::to_json() const {
    json out = json::array();
    for (const auto& r : routes_) out.push_back({{"method", r.method}, {"path", r.path}, {"function", r.function}});
    return out;
}

std::optional<RouteMatch> RouteTable::match(std::string_view method, std::string_view path) const {
    if (!path.starts_with('/')) return std::nullopt;

    // The request's segments, raw (with where each starts, for a greedy remainder) and decoded.
    std::vector<std::size_t> starts;
    std::vector<std::string> decoded;
    if (path != "/") {
        std::size_t pos = 1;
        while (true) {
            const auto slash = path.find('/', pos);
            auto seg = percent_decode(path.substr(pos, slash == std::string_view::npos ? slash : slash - pos));
            if (!seg) return std::nullopt;
            starts.push_back(pos);
            decoded.push_back(std::move(*seg));
            if (slash == std::string_view::npos) break;
            pos = slash + 1;
        }
    }

    const auto matches = [&](const CompiledRoute& c) {
        const std::size_t n = c.segments.size();
        if (c.greedy ? decoded.size() < n : decoded.size() != n) return false;
        for (std::size_t j = 0; j < n; ++j) {
            const Segment& s = c.segments[j];
            switch (s.kind) {
                case SegmentKind::literal:
                    if (decoded[j] != s.text) return false;
                    break;
                case SegmentKind::param:
                    if (decoded[j].empty()) return false;
                    break;
                case SegmentKind::greedy:
                    // "/files/" leaves nothing for {proxy+}: a greedy variable catches child resources.
                    if (path.size() == starts[j]) return false;
                    break;
            }
        }
        return true;
    };

    // Is `a` more specific than `b`, both matching this request?
    const auto more_specific = [](const CompiledRoute& a, const CompiledRoute& b) {
        if (a.greedy != b.greedy) return !a.greedy;
        const std::size_t n = std::min(a.segments.size(), b.segments.size());
        for (std::size_t j = 0; j < n; ++j)
            if (a.segments[j].kind != b.segments[j].kind) return a.segments[j].kind > b.segments[j].kind;
        // Same kinds everywhere (two greedy routes always differ before the shorter one's end,
        // where it has its greedy variable): the same path shape, so the method decides.
        return !a.any_method && b.any_method;
    };

    // A linear scan: route tables are small (tens of routes), and a request costs one pass
    // over each route's few segments, far below the invocation it leads to.
    const CompiledRoute* best = nullptr;
    std::size_t best_index = 0;
    for (std::size_t i = 0; i < compiled_.size(); ++i) {
        const CompiledRoute& c = compiled_[i];
        if (!c.any_method && routes_[i].method != method) continue;
        if (!matches(c)) continue;
        if (!best || more_specific(c, *best)) {
            best = &c;
            best_index = i;
        }
    }
    if (!best) return std::nullopt;

    RouteMatch m{&routes_[best_index], {}};
    for (std::size_t j = 0; j < best->segments.size(); ++j) {
        const Segment& s = best->segments[j];
        if (s.kind == SegmentKind::param) m.path_parameters[s.text] = decoded[j];
        // The remainder is decoded once, as a whole; its segments were already checked to decode.
        if (s.kind == SegmentKind::greedy) m.path_parameters[s.text] = *percent_decode(path.substr(starts[j]));
    }
    return m;
}

}  // namespace funcd
