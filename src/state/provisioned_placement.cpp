#include "funcd/state/provisioned_placement.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace funcd {
namespace {

// Counts that faded below this are forgotten: about 800 half-lives (a day or so) without an
// invocation, far above a double's smallest value, so proportions are exact until then.
constexpr double kForgottenTraffic = 1e-240;

// FNV-1a, 64 bits: the same on every node and build.
std::uint64_t rendezvous_hash(std::string_view function, std::string_view node) {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&h](std::string_view s) {
        for (const unsigned char c : s) {
            h ^= c;
            h *= 1099511628211ull;
        }
    };
    mix(function);
    mix(std::string_view("\n", 1));
    mix(node);
    return h;
}

}  // namespace

std::vector<int> apportion(int total, const std::vector<double>& weights) {
    const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
    std::vector<int> out(weights.size(), 0);
    if (weights.empty() || sum <= 0 || total <= 0) return out;
    std::vector<double> remainder(weights.size());
    int given = 0;
    for (std::size_t i = 0; i < weights.size(); ++i) {
        const double quota = total * (weights[i] / sum);
        out[i] = static_cast<int>(std::floor(quota));
        remainder[i] = quota - out[i];
        given += out[i];
    }
    std::vector<std::size_t> order(weights.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return remainder[a] > remainder[b]; });
    for (std::size_t k = 0; given < total; k = (k + 1) % order.size(), ++given) ++out[order[k]];
    return out;
}

ProvisionedPlacement::ProvisionedPlacement(std::string self_id, bool shared)
    : self_(std::move(self_id)), shared_(shared) {}

nlohmann::json ProvisionedPlacement::report(const StartedCounts& started, const ReadyCounts& ready,
                                            const std::function<bool(const std::string&)>& placed,
                                            std::chrono::steady_clock::time_point now) {
    if (!shared_) return nlohmann::json::object();  // nothing to place
    if (decayed_at_ != std::chrono::steady_clock::time_point{}) {
        const double half_lives = std::chrono::duration<double>(now - decayed_at_).count() /
                                  std::chrono::duration<double>(kTrafficHalfLife).count();
        const double factor = std::exp2(-half_lives);
        for (auto it = traffic_.begin(); it != traffic_.end();) {
            it->second *= factor;
            it = it->second < kForgottenTraffic ? traffic_.erase(it) : std::next(it);
        }
    }
    decayed_at_ = now;
    for (const auto& [function, count] : started) {
        const std::uint64_t before = counted_[function];
        if (count > before) traffic_[function] += static_cast<double>(count - before);
        counted_[function] = count;
    }
    nlohmann::json traffic = nlohmann::json::object();
    for (const auto& [function, score] : traffic_)
        if (placed(function)) traffic[function] = score;
    nlohmann::json ready_json = nlohmann::json::object();
    for (const auto& [function, labels] : ready)
        for (const auto& [label, n] : labels)
            if (n > 0) ready_json[function][label] = n;
    return {{"traffic", std::move(traffic)}, {"provisioned_ready", std::move(ready_json)}};
}

void ProvisionedPlacement::update(const std::vector<NodeRecord>& live) {
    std::vector<Node> nodes;
    for (const auto& r : live) {
        Node n{r.report.id, {}, {}};
        const nlohmann::json& load = r.report.load;
        if (load.is_object()) {
            if (auto t = load.find("traffic"); t != load.end() && t->is_object())
                for (const auto& [function, score] : t->items())
                    if (score.is_number() && score.get<double>() > 0) n.traffic[function] = score.get<double>();
            if (auto p = load.find("provisioned_ready"); p != load.end() && p->is_object())
                for (const auto& [function, labels] : p->items())
                    if (labels.is_object())
                        for (const auto& [label, count] : labels.items())
                            if (count.is_number_integer() && count.get<std::int64_t>() > 0)
                                n.ready[function][label] = count.get<std::size_t>();
        }
        nodes.push_back(std::move(n));
    }
    std::sort(nodes.begin(), nodes.end(), [](const Node& a, const Node& b) { return a.id < b.id; });
    nodes_ = std::move(nodes);
    known_ = true;
}

int ProvisionedPlacement::share(const std::string& function, int requested) const {
    if (!shared_) return requested;
    if (!known_ || requested <= 0) return 0;
    std::vector<double> weights;
    std::size_t self = nodes_.size();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].id == self_) self = i;
        auto t = nodes_[i].traffic.find(function);
        weights.push_back(t == nodes_[i].traffic.end() ? 0.0 : t->second);
    }
    // This node's own heartbeat is not among the live ones (its store is out of reach): it
    // keeps none, as the others will not count on it.
    if (self == nodes_.size()) return 0;
    if (std::all_of(weights.begin(), weights.end(), [](double w) { return w <= 0; })) {
        std::size_t home = 0;
        for (std::size_t i = 1; i < nodes_.size(); ++i)
            if (rendezvous_hash(function, nodes_[i].id) > rendezvous_hash(function, nodes_[home].id)) home = i;
        return home == self ? requested : 0;
    }
    return apportion(requested, weights)[self];
}

std::size_t ProvisionedPlacement::ready_elsewhere(const std::string& function, const std::string& label) const {
    std::size_t n = 0;
    for (const auto& node : nodes_) {
        if (node.id == self_) continue;
        auto f = node.ready.find(function);
        if (f == node.ready.end()) continue;
        auto l = f->second.find(label);
        if (l != f->second.end()) n += l->second;
    }
    return n;
}

}  // namespace funcd
