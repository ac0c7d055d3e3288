#include "funcd/dispatch/async_invoker.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include <fmt/format.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/storage_full.hpp"
#include "funcd/common/trace_id.hpp"
#include "funcd/state/lease_store.hpp"

namespace funcd {
namespace {

using json = nlohmann::json;

// Lambda retries throttled asynchronous events with exponential backoff from 1 second up
// to 5 minutes between attempts (docs: "Error handling and automatic retries").
constexpr auto kThrottleBackoffFirst = std::chrono::seconds(1);
constexpr auto kThrottleBackoffMax = std::chrono::minutes(5);
// How often dead letters past their retention are removed: retention is counted in days,
// so hourly keeps the table within an hour of it at the cost of one DELETE an hour.
constexpr auto kDeadLetterPurgeInterval = std::chrono::hours(1);
// With a shared store: how often this node renews its claim on its events (a lease of
// kLeaseTerm) and looks for events of nodes whose claims expired.
constexpr auto kClaimInterval = kLeaseRenewal;
// Events taken over from dead nodes at each look: a dead node's backlog moves over in
// batches, so one node does not take all of it while others are idle.
constexpr std::size_t kRescueBatch = 500;

std::string error_type_of(const InvocationResult& r) {
    if (r.throttled) return r.error_type;
    return r.error_type.empty() ? "Unhandled" : r.error_type;
}

std::string error_message_of(const InvocationResult& r) {
    if (r.throttled) return r.body;
    json doc = json::parse(r.body, nullptr, false);
    if (doc.is_object() && doc.contains("errorMessage") && doc["errorMessage"].is_string())
        return doc["errorMessage"].get<std::string>();
    return r.body;
}

// The usage ledger's trigger for an event from `source` (AsyncEvent::source).
std::string trigger_of(std::string_view source) {
    for (std::string_view kind : {"schedule", "file", "destination"})
        if (source.starts_with(kind) && source.size() > kind.size() && source[kind.size()] == ':')
            return std::string(kind);
    return "async";  // /v1 and Lambda's API Event invocations
}

}  // namespace

AsyncTarget parse_async_target(std::string_view target) {
    const auto colon = target.find(':');
    if (colon == std::string_view::npos) return {std::string(target), std::nullopt};
    return {std::string(target.substr(0, colon)), std::string(target.substr(colon + 1))};
}

AsyncInvoker::AsyncInvoker(boost::asio::io_context& io, boost::asio::thread_pool& blocking, EventStore& store,
                           Dispatcher& dispatcher, Registry& registry, std::string function_arn_prefix,
                           AsyncLimits limits, observe::Metrics* metrics)
    : io_(io),
      blocking_(blocking),
      store_(store),
      dispatcher_(dispatcher),
      registry_(registry),
      arn_prefix_(std::move(function_arn_prefix)),
      limits_(limits),
      metrics_(metrics),
      timer_(io),
      purge_timer_(io),
      claim_timer_(io) {}

void AsyncInvoker::start() {
    for (auto& [function, config] : store_.event_configs()) configs_[function] = std::move(config);
    auto pending = store_.take_pending();
    const std::size_t n = pending.size();
    for (auto& e : pending) insert(std::move(e), /*reserved=*/false);
    if (n > 0) spdlog::info("events: {} asynchronous events queued before the restart", n);
    purge_dead_letters();
    if (store_.shared()) {
        claim_timer_.expires_after(kClaimInterval);
        claim_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) tend_claims();
        });
    }
}

void AsyncInvoker::tend_claims() {
    if (stopped_) return;
    boost::asio::post(blocking_, [this] {
        std::vector<AsyncEvent> rescued;
        std::optional<std::vector<std::pair<std::string, EventConfig>>> configs;
        try {
            store_.renew_claims();
            rescued = store_.rescue(kRescueBatch);
            configs = store_.event_configs();
        } catch (const std::exception& ex) {
            // Others take this node's events over once its lease runs out; until then it
            // goes on delivering them, and tries again at the next interval.
            spdlog::error("events: cannot renew this node's claim on its events: {}", ex.what());
        }
        boost::asio::post(io_, [this, rescued = std::move(rescued), configs = std::move(configs)]() mutable {
            if (stopped_) return;
            for (auto& e : rescued)
                if (!events_.count(e.id)) insert(std::move(e), /*reserved=*/false);
            if (configs) {
                configs_.clear();
                for (auto& [target, config] : *configs) configs_[target] = std::move(config);
            }
            claim_timer_.expires_after(kClaimInterval);
            claim_timer_.async_wait([this](const boost::system::error_code& ec) {
                if (!ec) tend_claims();
            });
        });
    });
}

std::shared_ptr<observe::FunctionMetrics> AsyncInvoker::metrics_of(std::string_view target) const {
    // Found, not created: a record is made for a deployed function only.
    return metrics_ ? metrics_->functions.find(parse_async_target(target).name) : nullptr;
}

void AsyncInvoker::stop() {
    stopped_ = true;
    timer_.cancel();
    purge_timer_.cancel();
    claim_timer_.cancel();
}

AsyncInvoker::QueuePtr& AsyncInvoker::queue_of(const std::string& target) {
    QueuePtr& q = queues_[parse_async_target(target).name];
    if (!q) q = std::make_shared<Queue>();
    return q;
}

void AsyncInvoker::submit(std::string target, std::string payload, std::string source, Accepted accepted,
                          std::string trace_id) {
    QueuePtr q = queue_of(target);
    if (q->depth >= limits_.queue_depth_per_function) {
        const std::string message =
            fmt::format("Rate Exceeded: function '{}' has {} asynchronous events waiting, its limit "
                        "(async.queue_depth_per_function); retry later",
                        parse_async_target(target).name, q->depth);
        if (auto m = metrics_of(target)) m->throttled(observe::ThrottleReason::async_queue_full);
        boost::asio::post(io_, [accepted = std::move(accepted), message] {
            accepted(AcceptResult::queue_full(message));
        });
        return;
    }
    ++q->depth;  // held for this event while it is committed
    AsyncEvent e;
    e.trace_id = trace_id.empty() ? new_trace_id() : std::move(trace_id);
    e.id = new_uuid();
    e.function = std::move(target);
    e.payload = std::move(payload);
    e.received = Clock::now();
    e.next_attempt = e.received;
    const observe::EventSource counted_as = observe::event_source_of(source);
    e.source = std::move(source);
    boost::asio::post(blocking_, [this, q, e = std::move(e), accepted = std::move(accepted), counted_as]() mutable {
        std::optional<AcceptResult> refused;
        try {
            store_.enqueue(e);
        } catch (const StorageFull& ex) {
            spdlog::error("events: cannot queue an event for function={}: {}", e.function, ex.what());
            refused = AcceptResult::storage_full(std::string(ex.what()) + "; the event was not accepted");
        } catch (const ApiError& ex) {
            spdlog::error("events: cannot queue an event for function={}: {}", e.function, ex.what());
            refused = ex.status() == 503 ? AcceptResult::store_unavailable(ex.what())
                                         : AcceptResult::not_stored("the event could not be stored; see funcd's log");
        } catch (const std::exception& ex) {
            spdlog::error("events: cannot queue an event for function={}: {}", e.function, ex.what());
            refused = AcceptResult::not_stored("the event could not be stored; see funcd's log");
        }
        boost::asio::post(io_, [this, q, e = std::move(e), accepted = std::move(accepted), refused,
                                counted_as]() mutable {
            if (refused) {
                --q->depth;
                return accepted(*refused);
            }
            std::string id = e.id;
            std::string trace = e.trace_id;
            // The function may have been deleted (and created again) meanwhile: the depth held
            // was on a queue that is gone.
            const bool reserved = queue_of(e.function) == q;
            if (auto m = metrics_of(e.function)) m->async_accepted(counted_as);
            insert(std::move(e), reserved);
            accepted(AcceptResult::accepted(std::move(id), std::move(trace)));
        });
    });
}

void AsyncInvoker::add(AsyncEvent e) { insert(std::move(e), /*reserved=*/false); }

void AsyncInvoker::insert(AsyncEvent e, bool reserved) {
    // Queued by a version without trace ids: one for all of this run's attempts.
    if (e.trace_id.empty()) e.trace_id = new_trace_id();
    Queue& q = *queue_of(e.function);
    if (!reserved) ++q.depth;
    q.due.insert({e.next_attempt, e.id});
    q.received.insert(e.received);
    const std::string id = e.id;
    events_[id] = std::move(e);
    post_deliver();
}

void AsyncInvoker::forget(std::map<std::string, AsyncEvent>::iterator ev) {
    auto q = queues_.find(parse_async_target(ev->second.function).name);
    if (q != queues_.end()) {
        Queue& queue = *q->second;
        if (queue.depth > 0) --queue.depth;
        if (auto r = queue.received.find(ev->second.received); r != queue.received.end()) queue.received.erase(r);
        queue.due.erase({ev->second.next_attempt, ev->first});
    }
    events_.erase(ev);
}

void AsyncInvoker::post_deliver() {
    if (deliver_posted_ || stopped_) return;
    deliver_posted_ = true;
    boost::asio::post(io_, [this] {
        deliver_posted_ = false;
        deliver_due();
    });
}

void AsyncInvoker::deliver_due() {
    if (stopped_) return;
    const auto now = Clock::now();
    // Queues are not removed while this runs (only schedule() removes empty ones), and each
    // is held by a reference that keeps it alive should its function be deleted meanwhile.
    for (auto& [function, q] : queues_) {
        QueuePtr hold = q;
        deliver_from(function, *hold, now);
    }
    schedule();
}

void AsyncInvoker::deliver_from(const std::string& function, Queue& q, Clock::time_point now) {
    while (!q.due.empty() && q.due.begin()->first <= now) {
        const std::string id = q.due.begin()->second;
        auto ev = events_.find(id);
        if (ev == events_.end()) {
            q.due.erase(q.due.begin());
            continue;
        }
        const AsyncTarget target = parse_async_target(ev->second.function);
        FunctionRecordPtr record = registry_.find(target.name);
        if (!record) {
            // Deleted: its events go with it. The store normally dropped them already, but
            // not one committed after that drop, nor any left by a daemon stopped between
            // the deletion and the drop; kept, it would be loaded at every start and handed
            // to a function created later under the name.
            if (metrics_) metrics_->async_events_dropped.add();
            forget(ev);
            boost::asio::post(blocking_, [this, id] {
                try {
                    store_.complete(id, std::nullopt);
                } catch (const std::exception& ex) {
                    spdlog::error("events: cannot remove request_id={} of a deleted function: {}", id, ex.what());
                }
            });
            continue;
        }
        FunctionPtr fn;
        if (!target.qualifier) {
            fn = record->default_target();
        } else if (auto qualifier = Qualifier::parse(*target.qualifier)) {
            fn = resolve(*record, *qualifier, uniform_draw());
        }
        if (!fn) {
            // The version or alias it was sent to is gone.
            q.due.erase(q.due.begin());
            fail(id, "ResourceNotFound", nullptr);
            continue;
        }
        const EventConfig cfg = config(ev->second.function);
        if (now - ev->second.received > std::chrono::seconds(cfg.maximum_event_age_s)) {
            q.due.erase(q.due.begin());
            fail(id, "EventAgeExceeded", nullptr);
            continue;
        }
        const int cap = fn->config.concurrency.reserved.value_or(limits_.max_in_flight_per_function);
        // The function's turn comes again when one of its events finishes.
        if (q.in_flight >= std::max(cap, 1)) return;
        q.due.erase(q.due.begin());
        ++q.in_flight;
        delivering_[id] = queues_.at(function);
        // The result may arrive before invoke() returns; nothing here uses the event after it.
        InvokeOptions options;
        options.request_id = id;
        options.trace_id = ev->second.trace_id;
        options.trigger = trigger_of(ev->second.source);
        if (target.qualifier) options.invoked_arn = arn_prefix_ + target.name + ":" + *target.qualifier;
        dispatcher_.invoke(
            fn, ev->second.payload,
            [this, id](const Invocation&, InvocationResult r) { on_result(id, r); }, std::move(options));
    }
}

void AsyncInvoker::schedule() {
    if (stopped_) return;
    const auto now = Clock::now();
    std::optional<Clock::time_point> next;
    for (auto it = queues_.begin(); it != queues_.end();) {
        const Queue& q = *it->second;
        if (q.depth == 0 && q.in_flight == 0 && q.due.empty()) {
            it = queues_.erase(it);
            continue;
        }
        // A queue whose first event is due waits for one of its deliveries to finish.
        if (!q.due.empty() && q.due.begin()->first > now && (!next || q.due.begin()->first < *next))
            next = q.due.begin()->first;
        ++it;
    }
    if (!next) return;
    timer_.expires_at(*next);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) deliver_due();
    });
}

void AsyncInvoker::purge_dead_letters() {
    if (stopped_) return;
    const auto before = Clock::now() - limits_.dead_letter_retention;
    boost::asio::post(blocking_, [this, before] {
        try {
            if (const std::size_t n = store_.purge_dead_letters(before))
                spdlog::info("events: {} dead letters older than the retention (async.dead_letter_retention_s) removed", n);
        } catch (const std::exception& ex) {
            spdlog::error("events: cannot remove old dead letters: {}", ex.what());
        }
    });
    purge_timer_.expires_after(kDeadLetterPurgeInterval);
    purge_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) purge_dead_letters();
    });
}

void AsyncInvoker::on_result(const std::string& id, const InvocationResult& r) {
    // The slot is released first and whatever became of the event: a function deleted (and
    // perhaps created again) meanwhile must not be left with a slot nobody gives back.
    if (auto d = delivering_.find(id); d != delivering_.end()) {
        --d->second->in_flight;
        delivering_.erase(d);
        post_deliver();  // a slot of this function is free
    }
    auto ev = events_.find(id);
    if (ev == events_.end()) return;
    AsyncEvent& e = ev->second;

    const EventConfig cfg = config(e.function);
    const auto now = Clock::now();
    const auto too_old = e.received + std::chrono::seconds(cfg.maximum_event_age_s);
    if (r.throttled) {
        ++e.throttles;
        const int doublings = std::min(e.throttles - 1, 16);
        const auto backoff = std::min<std::chrono::milliseconds>(kThrottleBackoffFirst * (1 << doublings),
                                                                 kThrottleBackoffMax);
        if (now + backoff > too_old) return fail(id, "EventAgeExceeded", &r);
        return reschedule(e, now + backoff);
    }
    if (r.outcome == Outcome::success) return complete(id, r);

    ++e.attempts;
    e.errors.push_back({{"attempt", e.attempts},
                        {"time", format_rfc3339(now)},
                        {"error_type", error_type_of(r)},
                        {"error_message", error_message_of(r)}});
    if (e.attempts > cfg.maximum_retry_attempts) return fail(id, "RetriesExhausted", &r);
    const auto next = now + std::chrono::seconds(retry_delay_s(cfg, e.attempts));
    if (next > too_old) return fail(id, "EventAgeExceeded", &r);
    spdlog::info("events: function={} request_id={} attempt {} failed ({}); retrying in {} s", e.function, id,
                 e.attempts, error_type_of(r), retry_delay_s(cfg, e.attempts));
    if (auto m = metrics_of(e.function)) m->async_retried();
    reschedule(e, next);
}

void AsyncInvoker::reschedule(AsyncEvent& e, Clock::time_point next) {
    e.next_attempt = next;
    queue_of(e.function)->due.insert({next, e.id});
    boost::asio::post(blocking_, [this, copy = e] {
        try {
            store_.update(copy);
        } catch (const std::exception& ex) {
            spdlog::error("events: cannot save the retry state of request_id={}: {}", copy.id, ex.what());
        }
    });
    post_deliver();  // which schedules the timer, should this be the next event due
}

std::optional<AsyncEvent> AsyncInvoker::follow_up(const AsyncEvent& e, const std::optional<std::string>& destination,
                                                  const std::string& condition,
                                                  const InvocationResult* last) const {
    if (!destination) return std::nullopt;
    const AsyncTarget target = parse_async_target(e.function);
    // Lambda's destination record (docs: "Capturing records of Lambda asynchronous invocations").
    json payload = json::parse(e.payload, nullptr, false);
    json record{
        {"version", "1.0"},
        {"timestamp", format_rfc3339(Clock::now())},
        {"requestContext",
         {{"requestId", e.id},
          {"functionArn", arn_prefix_ + target.name + ":" + target.qualifier.value_or("$LATEST")},
          {"condition", condition},
          {"approximateInvokeCount", e.attempts + (condition == "Success" ? 1 : 0)}}},
        {"requestPayload", payload.is_discarded() ? json(e.payload) : payload},
    };
    if (last && !last->throttled) {
        json response = json::parse(last->body, nullptr, false);
        record["responseContext"] = {
            {"statusCode", 200},
            {"executedVersion", last->version == kLatestVersion ? std::string(kLatestLabel)
                                                                : std::to_string(last->version)}};
        if (last->outcome != Outcome::success) record["responseContext"]["functionError"] = "Unhandled";
        record["responsePayload"] = response.is_discarded() ? json(last->body) : response;
    }
    AsyncEvent f;
    f.id = new_uuid();
    f.function = *destination;
    f.payload = record.dump();
    f.received = Clock::now();
    f.next_attempt = f.received;
    f.source = "destination:" + e.function;
    // The destination's invocation continues the trace of the event it reports on.
    f.trace_id = e.trace_id;
    return f;
}

void AsyncInvoker::complete(const std::string& id, const InvocationResult& r) {
    auto ev = events_.find(id);
    if (ev == events_.end()) return;
    auto next = follow_up(ev->second, config(ev->second.function).on_success, "Success", &r);
    forget(ev);
    boost::asio::post(blocking_, [this, id, next] {
        try {
            store_.complete(id, next);
        } catch (const std::exception& ex) {
            spdlog::error("events: cannot remove the delivered event request_id={} (it may run again): {}", id,
                          ex.what());
            return;
        }
        if (next) boost::asio::post(io_, [this, next] { add(*next); });
    });
}

void AsyncInvoker::fail(const std::string& id, const std::string& reason, const InvocationResult* last) {
    auto ev = events_.find(id);
    if (ev == events_.end()) return;
    DeadLetter d{ev->second, Clock::now(), reason};
    if (auto m = metrics_of(d.event.function)) m->dead_lettered(observe::dead_letter_reason_of(reason));
    auto next = follow_up(ev->second, config(ev->second.function).on_failure, reason, last);
    spdlog::warn("events: function={} request_id={} dead-lettered: {} after {} attempts", d.event.function, id,
                 reason, d.event.attempts);
    forget(ev);
    boost::asio::post(blocking_, [this, d = std::move(d), next] {
        try {
            store_.dead_letter(d, next);
        } catch (const std::exception& ex) {
            spdlog::error("events: cannot dead-letter request_id={}: {}", d.event.id, ex.what());
            return;
        }
        if (next) boost::asio::post(io_, [this, next] { add(*next); });
    });
}

AsyncQueueStats AsyncInvoker::stats(const std::string& function) const {
    AsyncQueueStats s;
    auto q = queues_.find(function);
    if (q == queues_.end()) return s;
    // Events being committed are not queued yet.
    s.depth = q->second->received.size();
    if (!q->second->received.empty())
        s.oldest_age_s = std::chrono::duration<double>(Clock::now() - *q->second->received.begin()).count();
    return s;
}

EventConfig AsyncInvoker::config(const std::string& target) const {
    auto it = configs_.find(target);
    // A qualifier without a config of its own follows the function's.
    if (it == configs_.end()) it = configs_.find(parse_async_target(target).name);
    return it == configs_.end() ? EventConfig{} : it->second;
}

std::optional<EventConfig> AsyncInvoker::own_config(const std::string& target) const {
    auto it = configs_.find(target);
    if (it == configs_.end()) return std::nullopt;
    return it->second;
}

std::vector<std::string> AsyncInvoker::configured_targets(const std::string& function) const {
    std::vector<std::string> out;
    for (const auto& [target, config] : configs_)
        if (parse_async_target(target).name == function) out.push_back(target);
    return out;
}

void AsyncInvoker::set_config(const std::string& function, std::optional<EventConfig> config) {
    if (config) configs_[function] = std::move(*config);
    else configs_.erase(function);
}

void AsyncInvoker::function_deleted(const std::string& function) {
    std::erase_if(configs_, [&](const auto& c) { return parse_async_target(c.first).name == function; });
    // Its deliveries in flight keep the old queue alive until their results, which then
    // touch nothing of a function created again under the name.
    queues_.erase(function);
    const std::size_t dropped =
        std::erase_if(events_, [&](const auto& e) { return parse_async_target(e.second.function).name == function; });
    if (metrics_) metrics_->async_events_dropped.add(dropped);
}

}  // namespace funcd
