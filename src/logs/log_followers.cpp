#include "funcd/logs/log_followers.hpp"

#include <algorithm>

namespace funcd {

bool LogFollowers::remove(const LogFollower* f) {
    auto it = std::find_if(list_.begin(), list_.end(), [f](const auto& p) { return p.get() == f; });
    if (it == list_.end()) return false;
    list_.erase(it);
    return true;
}

void LogFollowers::deliver(std::string_view line) {
    // By index, and holding each while it runs: a follower may leave while it is called.
    for (std::size_t i = 0; i < list_.size(); ++i) {
        const std::shared_ptr<LogFollower> f = list_[i];
        f->on_line(line);
    }
}

void LogFollowers::heartbeat() {
    for (std::size_t i = 0; i < list_.size(); ++i) {
        const std::shared_ptr<LogFollower> f = list_[i];
        f->on_heartbeat();
    }
}

void LogFollowers::end_all(std::string_view reason) {
    auto ending = std::move(list_);
    list_.clear();
    for (const auto& f : ending) f->on_end(reason);
}

}  // namespace funcd
