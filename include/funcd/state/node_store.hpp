#pragma once
// The nodes of a funcd cluster: each reports itself alive with a heartbeat, and any node can
// list them all (GET /v1/cluster). One interface, two backends: SQLite for a single host
// (sqlite_node_store.hpp), PostgreSQL for nodes that share it (postgres_node_store.hpp);
// tests/state/node_store_conformance.hpp holds them to the same behaviour.
//
// Calls block (a database round trip): blocking pool only, never the loop.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace funcd {

// What a node says of itself in its heartbeat.
struct NodeReport {
    std::string id;             // --node-id (the hostname by default)
    std::string advertise_url;  // where the other nodes and the balancer reach it
    std::string version;        // funcd's version
    std::int64_t started_ms = 0;  // when it started, ms since the epoch (its own clock)
    nlohmann::json load = nlohmann::json::object();  // workers, invocations running, ...
};

// A node as the store knows it.
struct NodeRecord {
    NodeReport report;            // its last heartbeat's report
    double heartbeat_age_s = 0;   // since its last heartbeat, by the store's clock (never the node's)
};

// A report as both backends store it (JSON, its id aside), and back.
nlohmann::json node_report_json(const NodeReport& report);
NodeReport node_report_from_json(const std::string& id, const nlohmann::json& j);

class NodeStore {
public:
    virtual ~NodeStore() = default;
    // Records `report`'s node as alive now; the first heartbeat of an id creates its row,
    // later ones replace what it reported.
    virtual void heartbeat(const NodeReport& report) = 0;
    // Every node that reported and was not forgotten, by id.
    virtual std::vector<NodeRecord> nodes() = 0;
    // Removes a node's row (an operator retired it); false if there was none.
    virtual bool forget(const std::string& id) = 0;
};

}  // namespace funcd
