#include "funcd/dispatch/async_invoker.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "funcd/common/ids.hpp"

namespace funcd {
namespace {

using json = nlohmann::json;

// Lambda retries throttled asynchronous events with exponential backoff from 1 second up
// to 5 minutes between attempts (docs: "Error handling and automatic retries").
constexpr auto kThrottleBackoffFirst = std::chrono::seconds(1);
constexpr auto kThrottleBackoffMax = std::chrono::minutes(5);
// Events of one function in flight at once when it has no reserved concurrency: enough
// to keep a pool busy, few enough that a deep queue does not fill the global limit and
// throttle synchronous callers.
constexpr int kMaxInFlightPerFunction = 100;

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

}  // namespace

AsyncTarget parse_async_target(std::string_view target) {
    const auto colon = target.find(':');
    if (colon == std::string_view::npos) return {std::string(target), std::nullopt};
    return {std::string(target.substr(0, colon)), std::string(target.substr(colon + 1))};
}

AsyncInvoker::AsyncInvoker(boost::asio::io_context& io, boost::asio::thread_pool& blocking, EventStore& store,
                           Dispatcher& dispatcher, Registry& registry, std::string function_arn_prefix)
    : io_(io),
      blocking_(blocking),
      store_(store),
      dispatcher_(dispatcher),
      registry_(registry),
      arn_prefix_(std::move(function_arn_prefix)),
      timer_(io) {}

void AsyncInvoker::start() {
    for (auto& [function, config] : store_.event_configs()) configs_[function] = std::move(config);
    auto pending = store_.pending();
    for (auto& e : pending) {
        due_.insert({e.next_attempt, e.id});
        events_.emplace(e.id, std::move(e));
    }
    if (!pending.empty()) spdlog::info("events: {} asynchronous events queued before the restart", pending.size());
    post_deliver();
}

void AsyncInvoker::stop() {
    stopped_ = true;
    timer_.cancel();
}

void AsyncInvoker::submit(std::string function, std::string payload, std::string source, Accepted accepted) {
    AsyncEvent e;
    e.id = new_uuid();
    e.function = std::move(function);
    e.payload = std::move(payload);
    e.received = Clock::now();
    e.next_attempt = e.received;
    e.source = std::move(source);
    boost::asio::post(blocking_, [this, e = std::move(e), accepted = std::move(accepted)]() mutable {
        std::exception_ptr error;
        try {
            store_.enqueue(e);
        } catch (const std::exception& ex) {
            spdlog::error("events: cannot queue an event for function={}: {}", e.function, ex.what());
            error = std::current_exception();
        }
        boost::asio::post(io_, [this, e = std::move(e), accepted = std::move(accepted), error]() mutable {
            std::string id = e.id;
            if (!error) add(std::move(e));
            accepted(error ? std::string() : id, error);
        });
    });
}

void AsyncInvoker::add(AsyncEvent e) {
    due_.insert({e.next_attempt, e.id});
    const std::string id = e.id;
    events_[id] = std::move(e);
    post_deliver();
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
    for (auto it = due_.begin(); it != due_.end() && it->first <= now;) {
        const std::string id = it->second;
        auto ev = events_.find(id);
        if (ev == events_.end()) {
            it = due_.erase(it);
            continue;
        }
        const AsyncTarget target = parse_async_target(ev->second.function);
        FunctionRecordPtr record = registry_.find(target.name);
        if (!record) {
            // Deleted: its events went with it.
            it = due_.erase(it);
            events_.erase(ev);
            continue;
        }
        FunctionPtr fn;
        if (!target.qualifier) {
            fn = record->default_target();
        } else if (auto q = Qualifier::parse(*target.qualifier)) {
            fn = resolve(*record, *q, uniform_draw());
        }
        if (!fn) {
            // The version or alias it was sent to is gone.
            it = due_.erase(it);
            fail(id, "ResourceNotFound", nullptr);
            continue;
        }
        const EventConfig cfg = config(ev->second.function);
        if (now - ev->second.received > std::chrono::seconds(cfg.maximum_event_age_s)) {
            it = due_.erase(it);
            fail(id, "EventAgeExceeded", nullptr);
            continue;
        }
        const int cap = fn->config.concurrency.reserved.value_or(kMaxInFlightPerFunction);
        int& running = in_flight_[fn->config.name];
        if (running >= std::max(cap, 1)) {
            ++it;  // its turn comes when one of the function's events finishes
            continue;
        }
        it = due_.erase(it);
        ++running;
        delivering_[id] = fn->config.name;
        // The result may arrive before invoke() returns; nothing here uses the event after it.
        InvokeOptions options;
        options.request_id = id;
        if (target.qualifier) options.invoked_arn = arn_prefix_ + target.name + ":" + *target.qualifier;
        dispatcher_.invoke(
            fn, ev->second.payload,
            [this, id](const Invocation&, InvocationResult r) { on_result(id, r); }, std::move(options));
    }
    schedule();
}

void AsyncInvoker::schedule() {
    if (stopped_) return;
    const auto now = Clock::now();
    // Entries already due are waiting for their function's in-flight events to finish.
    auto it = std::find_if(due_.begin(), due_.end(), [&](const auto& d) { return d.first > now; });
    if (it == due_.end()) return;
    timer_.expires_at(it->first);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) deliver_due();
    });
}

void AsyncInvoker::on_result(const std::string& id, const InvocationResult& r) {
    // The slot is released first and whatever became of the event: a function deleted (and
    // perhaps created again) meanwhile must not be left with a slot nobody gives back.
    if (auto d = delivering_.find(id); d != delivering_.end()) {
        if (auto f = in_flight_.find(d->second); f != in_flight_.end() && --f->second <= 0) in_flight_.erase(f);
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
    reschedule(e, next);
}

void AsyncInvoker::reschedule(AsyncEvent& e, Clock::time_point next) {
    e.next_attempt = next;
    due_.insert({next, e.id});
    boost::asio::post(blocking_, [this, copy = e] {
        try {
            store_.update(copy);
        } catch (const std::exception& ex) {
            spdlog::error("events: cannot save the retry state of request_id={}: {}", copy.id, ex.what());
        }
    });
    schedule();
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
    return f;
}

void AsyncInvoker::complete(const std::string& id, const InvocationResult& r) {
    auto ev = events_.find(id);
    if (ev == events_.end()) return;
    auto next = follow_up(ev->second, config(ev->second.function).on_success, "Success", &r);
    events_.erase(ev);
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
    auto next = follow_up(ev->second, config(ev->second.function).on_failure, reason, last);
    spdlog::warn("events: function={} request_id={} dead-lettered: {} after {} attempts", d.event.function, id,
                 reason, d.event.attempts);
    events_.erase(ev);
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
    std::optional<Clock::time_point> oldest;
    for (const auto& [id, e] : events_) {
        if (parse_async_target(e.function).name != function) continue;
        ++s.depth;
        if (!oldest || e.received < *oldest) oldest = e.received;
    }
    if (oldest) s.oldest_age_s = std::chrono::duration<double>(Clock::now() - *oldest).count();
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
    for (auto it = events_.begin(); it != events_.end();) {
        if (parse_async_target(it->second.function).name == function) it = events_.erase(it);
        else ++it;
    }
}

}  // namespace funcd
