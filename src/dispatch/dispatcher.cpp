#include "funcd/dispatch/dispatcher.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/trace_id.hpp"

namespace funcd {

Dispatcher::Dispatcher(boost::asio::io_context& io, Registry& registry, PoolManager& pools, UsageStore& usage,
                       DispatchOptions options, observe::FunctionMetricsTable* metrics)
    : io_(io),
      registry_(registry),
      pools_(pools),
      usage_(usage),
      options_(options),
      metrics_(metrics),
      queue_timer_(io) {
    reservations_changed();
}

void Dispatcher::check_accepting() const {
    if (!accepting_) throw ApiError::shutting_down("funcd is shutting down; retry against the restarted daemon");
    if (auto why = metering_refusal()) throw ApiError::storage_unavailable(*why);
}

std::optional<std::string> Dispatcher::metering_refusal() const {
    // An invocation whose usage record could not be kept would be work nobody is billed
    // for: none starts while records cannot be made durable.
    return options_.metering ? usage_.refusal() : std::nullopt;
}

FunctionPtr Dispatcher::admit(std::string_view function, const Qualifier* qualifier) const {
    check_accepting();
    FunctionRecordPtr record = registry_.find(function);
    if (!record) throw ApiError::not_found("function '" + std::string(function) + "' does not exist");
    if (!qualifier) return record->default_target();
    FunctionPtr fn = resolve(*record, *qualifier, uniform_draw());
    if (!fn)
        throw ApiError::not_found("function '" + std::string(function) + "' has no version or alias '" +
                                  qualifier->text() + "'");
    return fn;
}

void Dispatcher::reservations_changed() {
    // What try_start lets each reserved function run here, added up: each share is rounded up,
    // so the sum of the shares can be above the share of the sum.
    int reserved = 0;
    for (const auto& fn : registry_.list())
        if (fn->reserved_concurrency) reserved += node_share(*fn->reserved_concurrency);
    reserved_total_ = std::min(reserved, options_.max_concurrency);
    capacity_freed();
}

int Dispatcher::node_share(int cluster_limit) const {
    // Rounded up: the nodes together allow at least the limit, and a reservation of 1 is
    // still 1 on each node (a function must be able to run wherever it is invoked).
    return live_nodes_ <= 1 ? cluster_limit : (cluster_limit + live_nodes_ - 1) / live_nodes_;
}

void Dispatcher::set_live_nodes(int nodes) {
    nodes = std::max(1, nodes);
    if (nodes == live_nodes_) return;
    spdlog::info("dispatch: {} live nodes; reserved concurrency is shared among them", nodes);
    live_nodes_ = nodes;
    reservations_changed();
}

int Dispatcher::running(const std::string& function) const {
    auto it = running_.find(function);
    return it == running_.end() ? 0 : it->second;
}

void Dispatcher::invoke(FunctionPtr fn, std::string payload, Done done, InvokeOptions options) {
    auto inv = std::make_shared<Invocation>();
    inv->request_id = options.request_id ? std::move(*options.request_id) : new_uuid();
    inv->trace_id = !options.trace_id.empty() ? std::move(options.trace_id) : new_trace_id();
    inv->trigger = std::move(options.trigger);
    inv->invoked_arn = std::move(options.invoked_arn);
    inv->client_context = std::move(options.client_context);
    inv->capture_log = options.capture_log;
    inv->on_stream = std::move(options.on_stream);
    inv->payload = std::make_shared<const std::string>(std::move(payload));
    inv->function = fn;
    inv->received = std::chrono::steady_clock::now();
    ++in_flight_;
    // The function's record, found once here; the completion below only adds to it. Every
    // invocation, whatever started it (the APIs, URLs, routes, events, schedules, files),
    // passes through this completion exactly once, so this is where outcomes are counted.
    std::shared_ptr<observe::FunctionMetrics> metrics;
    if (metrics_) {
        metrics = metrics_->find(fn->config.name);
        // Deployed a moment ago and its change not seen yet: made here, once. A function
        // deleted meanwhile gets no record back (its series would outlive it).
        if (!metrics && registry_.find(fn->config.name)) metrics = metrics_->of(fn->config.name);
    }
    inv->done = [this, inv_raw = inv.get(), done = std::move(done), metrics = std::move(metrics)](InvocationResult r) {
        const FunctionConfig& c = inv_raw->function->config;
        if (metrics) {
            if (r.throttled) {
                metrics->throttled(observe::throttle_reason_of(*r.throttled));
            } else {
                // The runtime labels init durations only: named on cold starts alone.
                const std::string runtime = r.init_duration_us ? c.runtime_name() : std::string();
                metrics->completed({r.outcome, r.duration_us,
                                    r.outcome == Outcome::init_error ? 0 : billed_ms_for(r.duration_us), c.memory_mb,
                                    r.init_duration_us, runtime});
            }
        }
        if (!r.throttled) {
            finished(*inv_raw);
            if (options_.metering) {
                UsageRecord rec;
                rec.request_id = inv_raw->request_id;
                rec.function = c.name;
                rec.version = r.version;
                rec.start = r.start;
                rec.duration_us = r.duration_us;
                // An event never handed to a worker (init failure) ran for nothing and bills nothing.
                rec.billed_ms = r.outcome == Outcome::init_error ? 0 : billed_ms_for(r.duration_us);
                rec.memory_mb = c.memory_mb;
                rec.max_memory_used_mb =
                    static_cast<std::int64_t>((r.max_memory_used_bytes + (1 << 20) - 1) >> 20);
                rec.init_duration_us = r.init_duration_us;
                rec.outcome = r.outcome;
                rec.trace_id = inv_raw->trace_id;
                rec.trigger = inv_raw->trigger;
                // Durable before the caller hears anything; if the journal cannot take it,
                // it is kept in memory and admission closes (metering_refusal) until it can.
                usage_.record(rec);
            }
        }
        --in_flight_;
        done(*inv_raw, std::move(r));
    };
    // Callers that did not ask check_accepting() (asynchronous deliveries) hear it as a
    // throttle, which makes them back off and try again; nothing has run.
    if (metering_refusal()) return throttle(std::move(inv), Limit::storage);
    // Invocations already waiting go first when capacity is there.
    if (!waiting_.empty()) pump();
    const Limit limit = try_start(inv);
    if (limit == Limit::none) return;
    // Waiting cannot help a disabled function; a full queue must not grow.
    if (limit == Limit::disabled || options_.queue_wait.count() == 0 ||
        waiting_.size() >= static_cast<std::size_t>(options_.max_concurrency))
        return throttle(std::move(inv), limit);
    waiting_.push_back({std::move(inv), std::chrono::steady_clock::now() + options_.queue_wait, limit});
    if (waiting_.size() == 1) arm_queue_timer();
}

Dispatcher::Limit Dispatcher::try_start(InvocationPtr& inv) {
    const FunctionConfig& c = inv->function->config;
    if (c.concurrency.reserved) {
        if (*c.concurrency.reserved == 0) return Limit::disabled;
        if (running(c.name) >= node_share(*c.concurrency.reserved)) return Limit::reserved;
    } else if (running_unreserved_ >= options_.max_concurrency - reserved_total_) {
        return Limit::global;
    }
    if (running_total_ >= options_.max_concurrency) return Limit::global;

    // Counted before submitting: a start that fails at once answers (and un-counts) inside submit.
    const bool unreserved = !c.concurrency.reserved;
    inv->admission = {true, unreserved};
    // Counted only once admitted: a throttled function leaves no entry behind.
    ++running_[c.name];
    ++running_total_;
    if (unreserved) ++running_unreserved_;
    if (pools_.pool_for(inv->function).submit(inv) == WorkerPool::Submit::no_memory) {
        finished(*inv);
        return Limit::memory;
    }
    return Limit::none;
}

void Dispatcher::finished(Invocation& inv) {
    if (!inv.admission.running) return;
    auto it = running_.find(inv.function->config.name);
    if (it != running_.end() && --it->second <= 0) running_.erase(it);
    --running_total_;
    if (inv.admission.unreserved) --running_unreserved_;
    inv.admission.running = false;
    if (!waiting_.empty()) capacity_freed();
}

void Dispatcher::capacity_freed() {
    if (pump_posted_ || waiting_.empty()) return;
    // After the current handler: a worker finishing an invocation becomes idle only once
    // its answer has been delivered.
    pump_posted_ = true;
    boost::asio::post(io_, [this] {
        pump_posted_ = false;
        pump();
    });
}

void Dispatcher::pump() {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        const Limit limit = try_start(it->inv);
        if (limit == Limit::none) {
            it = waiting_.erase(it);
        } else {
            it->limit = limit;
            ++it;
        }
    }
}

void Dispatcher::arm_queue_timer() {
    if (waiting_.empty()) return;
    queue_timer_.expires_at(waiting_.front().deadline);
    queue_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        // Every entry waits the same time, so deadlines are in queue order.
        const auto now = std::chrono::steady_clock::now();
        while (!waiting_.empty() && waiting_.front().deadline <= now) {
            Waiting w = std::move(waiting_.front());
            waiting_.pop_front();
            throttle(std::move(w.inv), w.limit);
        }
        arm_queue_timer();
    });
}

std::string_view Dispatcher::throttle_reason(Limit limit) {
    // Lambda's reasons (the Reason field of TooManyRequestsException), plus ours for the
    // memory budget, which Lambda does not have.
    switch (limit) {
        case Limit::disabled:
        case Limit::reserved: return "ReservedFunctionConcurrentInvocationLimitExceeded";
        case Limit::global: return "ConcurrentInvocationLimitExceeded";
        case Limit::storage: return "UsageStorageUnavailable";
        default: return "MemoryBudgetExceeded";
    }
}

std::string Dispatcher::throttle_message(const FunctionConfig& c, Limit limit) const {
    switch (limit) {
        case Limit::disabled:
            return fmt::format("Rate Exceeded: function '{}' has reserved_concurrency 0 (disabled)", c.name);
        case Limit::reserved:
            if (live_nodes_ > 1)
                return fmt::format("Rate Exceeded: function '{}' is at its reserved_concurrency of {} ({} on each "
                                   "of {} nodes)",
                                   c.name, *c.concurrency.reserved, node_share(*c.concurrency.reserved), live_nodes_);
            return fmt::format("Rate Exceeded: function '{}' is at its reserved_concurrency of {}", c.name,
                               *c.concurrency.reserved);
        case Limit::global:
            return fmt::format("Rate Exceeded: the daemon is at its concurrency limit (--max-concurrency {}, "
                               "of which {} reserved by functions)",
                               options_.max_concurrency, reserved_total_);
        case Limit::storage: return metering_refusal().value_or("usage records cannot be made durable");
        default:
            return fmt::format("Rate Exceeded: the memory budget has no room for another worker of '{}' "
                               "(memory_mb {}; --memory-budget-mb; busy workers hold it)",
                               c.name, c.memory_mb);
    }
}

void Dispatcher::throttle(InvocationPtr inv, Limit limit) {
    const FunctionConfig& c = inv->function->config;
    InvocationResult r;
    r.throttled = std::string(throttle_reason(limit));
    r.error_type = "TooManyRequestsException";
    r.body = throttle_message(c, limit);
    r.version = inv->function->version;
    r.start = std::chrono::system_clock::now();
    spdlog::debug("dispatch: throttled function={} request_id={} reason={}", c.name, inv->request_id, *r.throttled);
    // A throttle is in the ledger too (outcome throttled, nothing billed) for the invocation
    // history and stats; not one refused because records cannot be kept.
    if (options_.metering && limit != Limit::storage) {
        UsageRecord rec;
        rec.request_id = inv->request_id;
        rec.function = c.name;
        rec.version = r.version;
        rec.start = r.start;
        rec.memory_mb = c.memory_mb;
        rec.outcome = Outcome::throttled;
        rec.trace_id = inv->trace_id;
        rec.trigger = inv->trigger;
        usage_.record(rec);
    }
    auto done = std::move(inv->done);
    done(std::move(r));
}

}  // namespace funcd
