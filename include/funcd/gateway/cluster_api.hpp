#pragma once
// GET /v1/cluster: the nodes sharing this node's state (one on a single host), each with
// its URL, version, state (alive, or lost once its heartbeat is kLostAfter old) and the
// load it last reported.
#include "funcd/gateway/api_request.hpp"
#include "funcd/gateway/http_types.hpp"
#include "funcd/state/cluster_membership.hpp"

namespace funcd {

class ClusterApi {
public:
    explicit ClusterApi(ClusterMembership& membership) : membership_(membership) {}

    // True when `t` is this API's path (the request is then answered).
    bool handle(const api::ParsedTarget& t, const http::Request& req, http::Responder& respond);

private:
    ClusterMembership& membership_;
};

}  // namespace funcd
