#include "funcd/dispatch/dispatcher.hpp"

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"

namespace funcd {

Dispatcher::Dispatcher(Registry& registry, PoolManager& pools, UsageStore& usage)
    : registry_(registry), pools_(pools), usage_(usage) {}

FunctionPtr Dispatcher::admit(std::string_view function) const {
    if (!accepting_) throw ApiError::shutting_down("funcd is shutting down; retry against the restarted daemon");
    FunctionPtr fn = registry_.find(function);
    if (!fn) throw ApiError::not_found("function '" + std::string(function) + "' does not exist");
    return fn;
}

void Dispatcher::invoke(FunctionPtr fn, std::string payload, Done done) {
    auto inv = std::make_shared<Invocation>();
    inv->request_id = new_uuid();
    inv->trace_id = "Root=1-" + inv->request_id.substr(0, 8) + "-" + random_hex(12);
    inv->payload = std::make_shared<const std::string>(std::move(payload));
    inv->function = fn;
    inv->received = std::chrono::steady_clock::now();
    ++in_flight_;
    inv->done = [this, inv_raw = inv.get(), done = std::move(done)](InvocationResult r) {
        const FunctionConfig& c = inv_raw->function->config;
        UsageRecord rec;
        rec.request_id = inv_raw->request_id;
        rec.function = c.name;
        rec.version = r.version;
        rec.start = r.start;
        rec.duration_us = r.duration_us;
        // An event never handed to a worker (init failure) ran for nothing and bills nothing.
        rec.billed_ms = r.outcome == Outcome::init_error ? 0 : billed_ms_for(r.duration_us);
        rec.memory_mb = c.memory_mb;
        rec.max_memory_used_mb = static_cast<std::int64_t>((r.max_memory_used_bytes + (1 << 20) - 1) >> 20);
        rec.init_duration_us = r.init_duration_us;
        rec.outcome = r.outcome;
        // Durable before the caller hears anything.
        usage_.record(rec);
        --in_flight_;
        done(*inv_raw, std::move(r));
    };
    pools_.pool_for(fn).submit(std::move(inv));
}

}  // namespace funcd
