#include "funcd/gateway/cluster_api.hpp"

namespace funcd {

bool ClusterApi::handle(const api::ParsedTarget& t, const http::Request& req, http::Responder& respond) {
    using api::error_response;
    using api::json_response;
    using api::method_not_allowed;
    const auto& s = t.segments;
    if (s.size() != 2 || s[0] != "v1" || s[1] != "cluster") return false;
    if (req.method != "GET") {
        respond(method_not_allowed(req.method, "GET"));
        return true;
    }
    const std::string self = membership_.self().id;
    membership_.nodes([respond = std::move(respond), self](std::vector<ClusterNode> nodes, std::exception_ptr error) {
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                return respond(error_response(503, "ServiceException",
                                              std::string("the nodes cannot be read from the state store: ") + e.what()));
            }
        }
        nlohmann::json list = nlohmann::json::array();
        for (const ClusterNode& n : nodes) {
            const NodeReport& r = n.record.report;
            list.push_back({{"id", r.id},
                            {"advertise_url", r.advertise_url},
                            {"version", r.version},
                            {"started_ms", r.started_ms},
                            {"state", n.alive ? "alive" : "lost"},
                            {"heartbeat_age_s", n.record.heartbeat_age_s},
                            {"load", r.load},
                            {"self", r.id == self}});
        }
        respond(json_response(200, {{"node", self}, {"nodes", std::move(list)}}));
    });
    return true;
}

}  // namespace funcd
