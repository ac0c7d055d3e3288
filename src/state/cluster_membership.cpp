#include "funcd/state/cluster_membership.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

namespace funcd {

ClusterMembership::ClusterMembership(boost::asio::io_context& io, boost::asio::thread_pool& blocking,
                                     NodeStore& store, std::function<nlohmann::json()> load,
                                     LiveNodes live_nodes)
    : io_(io),
      blocking_(blocking),
      store_(store),
      load_(std::move(load)),
      live_nodes_(std::move(live_nodes)),
      timer_(io) {}

ClusterMembership::~ClusterMembership() { stop(); }

void ClusterMembership::start(NodeReport self) {
    self_ = std::move(self);
    stopped_ = false;
    beat();
}

void ClusterMembership::stop() {
    stopped_ = true;
    timer_.cancel();
}

void ClusterMembership::beat() {
    if (stopped_) return;
    NodeReport report = self_;
    report.load = load_ ? load_() : nlohmann::json::object();
    std::weak_ptr<int> alive = alive_;
    boost::asio::post(blocking_, [this, alive, report = std::move(report)] {
        std::string error;
        std::vector<NodeRecord> live;
        try {
            store_.heartbeat(report);
            if (live_nodes_)
                for (NodeRecord& r : store_.nodes())
                    if (r.heartbeat_age_s < static_cast<double>(kLostAfter.count())) live.push_back(std::move(r));
        } catch (const std::exception& e) {
            error = e.what();
        }
        boost::asio::post(io_, [this, alive, live = std::move(live), error = std::move(error)]() mutable {
            if (alive.expired()) return;
            if (error.empty() && !live.empty() && live_nodes_) live_nodes_(std::move(live));
            if (!error.empty() && !warned_) {
                spdlog::warn("cluster: node={} could not report its heartbeat: {}", self_.id, error);
                warned_ = true;
            } else if (error.empty() && warned_) {
                spdlog::info("cluster: node={} reports its heartbeat again", self_.id);
                warned_ = false;
            }
            if (stopped_) return;
            timer_.expires_after(kHeartbeatInterval);
            timer_.async_wait([this, alive](const boost::system::error_code& ec) {
                if (!ec && !alive.expired()) beat();
            });
        });
    });
}

void ClusterMembership::nodes(std::function<void(std::vector<ClusterNode>, std::exception_ptr)> done) {
    boost::asio::post(blocking_, [this, done = std::move(done)]() mutable {
        std::vector<ClusterNode> out;
        std::exception_ptr error;
        try {
            for (NodeRecord& r : store_.nodes()) {
                const bool alive = r.heartbeat_age_s < static_cast<double>(kLostAfter.count());
                out.push_back({std::move(r), alive});
            }
        } catch (...) {
            error = std::current_exception();
        }
        boost::asio::post(io_, [done = std::move(done), out = std::move(out), error]() mutable {
            done(std::move(out), error);
        });
    });
}

}  // namespace funcd
