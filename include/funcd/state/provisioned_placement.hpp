#pragma once
// Where a function's provisioned concurrency runs when nodes share the state: on its home
// nodes, the ones the balancer sends its invocations to. A stock balancer's choice cannot be
// computed here (HAProxy's and nginx's hash rings are their own), so it is observed: each node
// reports in its heartbeat how much of each function it served lately (an exponentially
// decayed count of invocations started, half-life kTrafficHalfLife), and every node splits a
// function's requested count among the live nodes in proportion to those reports, by largest
// remainder, ties to the lower node id. Every node computes the same split from the same
// reports, so the shares add up to the request (for a heartbeat or so after a report changes,
// nodes that read the reports at different times may disagree by a worker). A function no node
// has served yet goes whole to one node, chosen by rendezvous hashing of its name over the live
// nodes' ids. Each node also reports its provisioned workers ready, so any node can say how many
// are ready in all.
//
// On a single host every provisioned worker runs here. Runs on the loop.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/state/node_store.hpp"

namespace funcd {

// How fast a node's count of a function's invocations fades: long enough that a pause in
// traffic does not move provisioned workers (every node's count fades alike, so their
// proportions stay), short enough that when the balancer moves a function (a node came back)
// its workers follow within a few minutes.
inline constexpr std::chrono::minutes kTrafficHalfLife{2};

// Invocations submitted per function on this node (PoolManager::submitted): counts that grow,
// and drop when a retired pool goes (such a drop adds nothing).
using StartedCounts = std::map<std::string, std::uint64_t, std::less<>>;
// Provisioned workers ready per function and version label.
using ReadyCounts = std::map<std::string, std::map<std::string, std::size_t>>;

class ProvisionedPlacement {
public:
    // `shared`: nodes share the state (else every provisioned worker runs here).
    ProvisionedPlacement(std::string self_id, bool shared);

    // This node's part of its heartbeat's load: {"traffic": {function: decayed count},
    // "provisioned_ready": {function: {label: ready}}}. `started` as PoolManager::submitted;
    // traffic is reported only of the functions `placed` says have provisioned concurrency
    // (the others' need no placing, and a report stays small however many functions run).
    // On a single host: nothing.
    nlohmann::json report(const StartedCounts& started, const ReadyCounts& ready,
                          const std::function<bool(const std::string&)>& placed,
                          std::chrono::steady_clock::time_point now);
    // After a heartbeat: the live nodes' records, this one's included.
    void update(const std::vector<NodeRecord>& live);

    // How many of the `requested` provisioned workers of `function` run on this node. With
    // shared state and no heartbeat read yet: none (the first comes at once).
    int share(const std::string& function, int requested) const;
    // Provisioned workers of `function`'s version `label` ready on the other live nodes.
    std::size_t ready_elsewhere(const std::string& function, const std::string& label) const;

private:
    std::string self_;
    bool shared_;
    bool known_ = false;  // a heartbeat's nodes have been read
    // This node's decayed counts, and the started counts they last took in.
    std::map<std::string, double, std::less<>> traffic_;
    StartedCounts counted_;
    std::chrono::steady_clock::time_point decayed_at_{};
    // Per live node, in id order: its reported traffic and ready workers.
    struct Node {
        std::string id;
        std::map<std::string, double, std::less<>> traffic;
        ReadyCounts ready;
    };
    std::vector<Node> nodes_;
};

// The largest-remainder split of `total` in proportion to `weights` (not all zero), ties to
// the lower index. Exposed for tests.
std::vector<int> apportion(int total, const std::vector<double>& weights);

}  // namespace funcd
