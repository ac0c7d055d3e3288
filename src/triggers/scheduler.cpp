#include "funcd/triggers/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "funcd/common/ids.hpp"

namespace funcd {

using Clock = std::chrono::system_clock;

Scheduler::Scheduler(boost::asio::io_context& io, AsyncInvoker& invoker, std::string region, std::string account_id)
    : io_(io), invoker_(invoker), region_(std::move(region)), account_id_(std::move(account_id)) {}

void Scheduler::set(ScheduleDefinition definition) {
    Key key{definition.function, definition.name};
    auto expression = ScheduleExpression::parse(definition.expression);
    entries_.erase(key);  // its timer goes with it
    auto [it, inserted] =
        entries_.emplace(key, Entry{std::move(definition), std::move(expression), std::nullopt, std::nullopt, nullptr});
    arm(it->first, it->second);
}

void Scheduler::remove(const std::string& function, const std::string& name) { entries_.erase({function, name}); }

void Scheduler::function_deleted(const std::string& function) {
    std::erase_if(entries_, [&](const auto& kv) { return kv.first.first == function; });
}

void Scheduler::arm(const Key& key, Entry& e) {
    e.timer.reset();
    e.next_fire.reset();
    if (!e.definition.enabled) return;
    e.next_fire = e.expression.next_after(Clock::now(), e.definition.created);
    if (!e.next_fire) {
        spdlog::info("schedule: function={} schedule={} has no future fire time ({})", key.first, key.second,
                     e.definition.expression);
        return;
    }
    e.timer = std::make_unique<boost::asio::system_timer>(io_);
    e.timer->expires_at(*e.next_fire);
    e.timer->async_wait([this, key](const boost::system::error_code& ec) {
        if (!ec) fire(key);
    });
}

void Scheduler::fire(const Key& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    const auto at = *e.next_fire;
    e.last_fire = at;
    const nlohmann::json event = e.definition.input ? *e.definition.input : scheduled_event(e.definition, at);
    invoker_.submit(key.first, event.dump(), "schedule:" + key.second,
                    [function = key.first, name = key.second](const AcceptResult& result) {
                        if (!result.ok())
                            spdlog::error("schedule: function={} schedule={} could not queue its event: {}", function,
                                          name, result.message());
                        else spdlog::debug("schedule: function={} schedule={} queued request_id={}", function, name,
                                           result.request_id());
                    });
    arm(key, e);
}

nlohmann::json Scheduler::scheduled_event(const ScheduleDefinition& s, Clock::time_point at) const {
    // EventBridge's scheduled event (docs: "Creating an Amazon EventBridge rule that runs on
    // a schedule"): the time is the scheduled one, in whole seconds.
    const std::time_t t = Clock::to_time_t(at);
    return {{"version", "0"},
            {"id", new_uuid()},
            {"detail-type", "Scheduled Event"},
            {"source", "aws.events"},
            {"account", account_id_},
            {"time", fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(t))},
            {"region", region_},
            {"resources", {fmt::format("arn:aws:events:{}:{}:rule/{}-{}", region_, account_id_, s.function, s.name)}},
            {"detail", nlohmann::json::object()}};
}

ScheduleStatus Scheduler::status(const Entry& e) { return {e.definition, e.next_fire, e.last_fire}; }

std::vector<ScheduleStatus> Scheduler::list(const std::string& function) const {
    std::vector<ScheduleStatus> out;
    for (const auto& [key, e] : entries_)
        if (key.first == function) out.push_back(status(e));
    return out;
}

std::optional<ScheduleStatus> Scheduler::get(const std::string& function, const std::string& name) const {
    auto it = entries_.find({function, name});
    if (it == entries_.end()) return std::nullopt;
    return status(it->second);
}

}  // namespace funcd
