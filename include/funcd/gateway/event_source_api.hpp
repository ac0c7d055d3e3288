#pragma once
// /v1's event source mappings: PUT, GET and DELETE
// /v1/functions/{name}/event-sources/{mapping}, GET /v1/functions/{name}/event-sources,
// POST .../{mapping}/enable and .../disable. Changes are committed (and a new mapping's
// source provisioned) before they take effect; see EventSourceMappings.
#include <boost/asio/io_context.hpp>

#include "funcd/event_sources/event_source_mappings.hpp"
#include "funcd/gateway/api_request.hpp"
#include "funcd/registry/registry.hpp"

namespace funcd {

class EventSourceApi {
public:
    EventSourceApi(Registry& registry, EventSourceMappings& mappings);

    // Handles /v1/functions/{name}/event-sources...; false for other routes.
    bool handle(const api::ParsedTarget& t, http::Request& req, http::Responder& respond);

private:
    void put(const std::string& function, const std::string& name, http::Request& req, http::Responder& respond);
    void set_enabled(const std::string& function, const std::string& name, bool enabled, http::Responder& respond);
    MappingView require(const std::string& function, const std::string& name) const;

    Registry& registry_;
    EventSourceMappings& mappings_;
};

}  // namespace funcd
