#pragma once
// Which Runtime API (2018-06-01) operation a request's method and target name.
#include <string_view>

namespace funcd {

enum class RuntimeRouteKind { next, response, error, init_error, not_found, bad_method };

struct RuntimeRoute {
    RuntimeRouteKind kind = RuntimeRouteKind::not_found;
    std::string_view request_id;  // response and error: points into the target; never empty nor holding '/'
};

// GET  /2018-06-01/runtime/invocation/next
// POST /2018-06-01/runtime/invocation/{id}/response, .../{id}/error, /2018-06-01/runtime/init/error
// `method` as sent (methods are case-sensitive). The query, if any, is ignored. A known path
// with another method is bad_method.
RuntimeRoute runtime_route_of(std::string_view method, std::string_view target);

}  // namespace funcd
