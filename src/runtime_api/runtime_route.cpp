#include "funcd/runtime_api/runtime_route.hpp"

namespace funcd {
namespace {

constexpr std::string_view kPathPrefix = "/2018-06-01/runtime/";

}  // namespace

RuntimeRoute runtime_route_of(std::string_view method, std::string_view target) {
    auto path = target.substr(0, target.find('?'));
    if (!path.starts_with(kPathPrefix)) return {RuntimeRouteKind::not_found, {}};
    path.remove_prefix(kPathPrefix.size());

    auto expect = [method](std::string_view wanted, RuntimeRouteKind kind, std::string_view id = {}) {
        return RuntimeRoute{method == wanted ? kind : RuntimeRouteKind::bad_method, id};
    };
    if (path == "invocation/next") return expect("GET", RuntimeRouteKind::next);
    if (path == "init/error") return expect("POST", RuntimeRouteKind::init_error);
    if (path.starts_with("invocation/")) {
        path.remove_prefix(std::string_view("invocation/").size());
        const auto slash = path.find('/');
        if (slash == 0 || slash == std::string_view::npos) return {RuntimeRouteKind::not_found, {}};
        const auto id = path.substr(0, slash);
        const auto action = path.substr(slash + 1);
        if (action == "response") return expect("POST", RuntimeRouteKind::response, id);
        if (action == "error") return expect("POST", RuntimeRouteKind::error, id);
    }
    return {RuntimeRouteKind::not_found, {}};
}

}  // namespace funcd
