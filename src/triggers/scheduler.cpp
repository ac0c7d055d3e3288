#include "funcd/triggers/scheduler.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "funcd/common/ids.hpp"

namespace funcd {

using Clock = std::chrono::system_clock;

namespace {

// The scheduler's leadership: lease kLeaderLease, held kLeaseTerm and renewed every
// kLeaseRenewal (lease_store.hpp).
constexpr const char* kLeaderLease = "scheduler";
// How long after a fire's time a node that does not lead asks for it: past the lease, so a
// live leader has long taken it, and a dead one's tick is still fired, late by this much.
constexpr auto kFollowerDelay = kLeaseTerm + std::chrono::seconds(5);

}  // namespace

Scheduler::Scheduler(boost::asio::io_context& io, boost::asio::thread_pool& blocking, AsyncInvoker& invoker,
                     TriggerStore& store, LeaseStore& leases, std::string node_id, std::string region,
                     std::string account_id)
    : io_(io),
      blocking_(blocking),
      invoker_(invoker),
      store_(store),
      leases_(leases),
      node_id_(std::move(node_id)),
      region_(std::move(region)),
      account_id_(std::move(account_id)),
      lease_timer_(io) {}

void Scheduler::start() { renew_leadership(); }

void Scheduler::stop() {
    stopped_ = true;
    lease_timer_.cancel();
    if (!leader_) return;
    // Given up, so that another node leads from its next renewal rather than after the lease.
    leader_ = false;
    boost::asio::post(blocking_, [this] {
        try {
            leases_.release(kLeaderLease, node_id_);
        } catch (const std::exception& e) {
            spdlog::warn("schedule: cannot give the scheduler's leadership up (it expires instead): {}", e.what());
        }
    });
}

void Scheduler::renew_leadership() {
    if (stopped_) return;
    boost::asio::post(blocking_, [this] {
        bool held = false;
        try {
            held = leases_.acquire(kLeaderLease, node_id_, kLeaseTerm);
        } catch (const std::exception& e) {
            spdlog::warn("schedule: cannot renew the scheduler's leadership: {}", e.what());
        }
        boost::asio::post(io_, [this, held] {
            if (held != leader_)
                spdlog::info("schedule: this node {} the schedules' leader", held ? "is now" : "is no longer");
            leader_ = held;
            if (stopped_) return;
            lease_timer_.expires_after(kLeaseRenewal);
            lease_timer_.async_wait([this](const boost::system::error_code& ec) {
                if (!ec) renew_leadership();
            });
        });
    });
}

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
    if (leader_) {
        take_fire(e.definition, at);
    } else {
        auto timer = std::make_shared<boost::asio::system_timer>(io_);
        timer->expires_at(at + kFollowerDelay);
        timer->async_wait([this, timer, key, definition = e.definition, at](const boost::system::error_code& ec) {
            // Not if the schedule went meanwhile (or was replaced: its new timers decide).
            auto now = entries_.find(key);
            if (!ec && !stopped_ && now != entries_.end() &&
                schedule_definition_json(now->second.definition) == schedule_definition_json(definition))
                take_fire(definition, at);
        });
    }
    arm(key, e);
}

void Scheduler::take_fire(const ScheduleDefinition& definition, Clock::time_point at) {
    boost::asio::post(blocking_, [this, definition, at] {
        bool taken = false;
        try {
            taken = store_.claim_fire(definition.function, definition.name, at);
        } catch (const std::exception& e) {
            // The other nodes ask for it too; if none can, this tick is missed (and logged).
            spdlog::error("schedule: function={} schedule={} cannot take its fire: {}", definition.function,
                          definition.name, e.what());
        }
        if (!taken) return;
        boost::asio::post(io_, [this, definition, at] {
            const nlohmann::json event = definition.input ? *definition.input : scheduled_event(definition, at);
            invoker_.submit(definition.function, event.dump(), "schedule:" + definition.name,
                            [function = definition.function, name = definition.name](const AcceptResult& result) {
                                if (!result.ok())
                                    spdlog::error("schedule: function={} schedule={} could not queue its event: {}",
                                                  function, name, result.message());
                                else spdlog::debug("schedule: function={} schedule={} queued request_id={}", function,
                                                   name, result.request_id());
                            });
        });
    });
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

std::vector<ScheduleDefinition> Scheduler::definitions() const {
    std::vector<ScheduleDefinition> out;
    for (const auto& [key, e] : entries_) out.push_back(e.definition);
    return out;
}

std::optional<ScheduleStatus> Scheduler::get(const std::string& function, const std::string& name) const {
    auto it = entries_.find({function, name});
    if (it == entries_.end()) return std::nullopt;
    return status(it->second);
}

}  // namespace funcd
