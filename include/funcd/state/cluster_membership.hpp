#pragma once
// This node's place among the nodes sharing the state: a heartbeat with what it is doing,
// every kHeartbeatInterval, to the NodeStore; and the list of nodes, each alive or lost,
// for GET /v1/cluster. The store's calls run on the blocking pool; everything else on the loop.
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/state/node_store.hpp"

namespace funcd {

// How often a node reports itself. A node is lost once its heartbeat is kLostAfter old:
// three missed heartbeats, so that one slow database round trip or a busy host does not
// make a live node look dead.
inline constexpr std::chrono::seconds kHeartbeatInterval{5};
inline constexpr std::chrono::seconds kLostAfter = 3 * kHeartbeatInterval;

// A node as GET /v1/cluster shows it.
struct ClusterNode {
    NodeRecord record;
    bool alive = false;  // its heartbeat is younger than kLostAfter
};

class ClusterMembership {
public:
    // `load`, called on the loop at each heartbeat: what this node reports doing.
    // `live_nodes`, called on the loop after each heartbeat: the nodes alive, this one
    // included, by id (nothing when the store could not be read).
    using LiveNodes = std::function<void(std::vector<NodeRecord> live)>;
    ClusterMembership(boost::asio::io_context& io, boost::asio::thread_pool& blocking, NodeStore& store,
                      std::function<nlohmann::json()> load, LiveNodes live_nodes = {});
    ~ClusterMembership();

    // `self`: this node's id, URL, version and start (known once it listens). The first
    // heartbeat now, then one every kHeartbeatInterval until stop().
    void start(NodeReport self);
    void stop();

    const NodeReport& self() const { return self_; }
    // The nodes, on the loop; `error` when the store could not be read.
    void nodes(std::function<void(std::vector<ClusterNode> nodes, std::exception_ptr error)> done);

private:
    void beat();

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    NodeStore& store_;
    NodeReport self_;
    std::function<nlohmann::json()> load_;
    LiveNodes live_nodes_;
    boost::asio::steady_timer timer_;
    bool stopped_ = false;
    bool warned_ = false;  // a failed heartbeat was logged; the next success says so
    // Expires with this object: a store call finishing after it is gone does nothing.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace funcd
