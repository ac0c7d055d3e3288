#include "funcd/event_sources/dispatcher_delivery.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/trace_id.hpp"
#include "funcd/registry/arn.hpp"

namespace funcd {

using nlohmann::json;

std::string dead_letter_reason(std::string_view condition) {
    return condition == "RecordAgeExceeded" ? "EventAgeExceeded" : "RetriesExhausted";
}

json failure_record(const MappingConfig& c, const FailedBatch& f, const std::string& function_arn,
                    const std::string& mapping_arn, SystemTime now) {
    json record{{"version", "1.0"},
                {"timestamp", format_rfc3339(now)},
                {"requestContext",
                 {{"requestId", new_uuid()},
                  {"functionArn", function_arn},
                  {"condition", f.condition},
                  {"approximateInvokeCount", f.attempts}}},
                {"PostgresBatchInfo",
                 {{"eventSourceMappingArn", mapping_arn},
                  {"mapping", c.name},
                  {"tables", c.tables},
                  {"startSequenceNumber", f.first_sequence_number},
                  {"endSequenceNumber", f.last_sequence_number},
                  {"startCommitLsn", format_lsn(f.first_commit_lsn)},
                  {"endCommitLsn", format_lsn(f.last_commit_lsn)},
                  {"approximateArrivalOfFirstRecord", format_rfc3339(f.first_commit_time)},
                  {"approximateArrivalOfLastRecord", format_rfc3339(f.last_commit_time)},
                  {"batchSize", f.batch_size}}}};
    if (f.last_result && !f.last_result->throttled) {
        record["responseContext"] = {
            {"statusCode", 200},
            {"executedVersion", f.last_result->version == kLatestVersion ? std::string(kLatestLabel)
                                                                         : std::to_string(f.last_result->version)}};
        if (f.last_result->outcome != Outcome::success) record["responseContext"]["functionError"] = "Unhandled";
    }
    return record;
}

DispatcherDelivery::DispatcherDelivery(boost::asio::io_context& io, boost::asio::thread_pool& blocking,
                                       Dispatcher& dispatcher, AsyncInvoker& async, EventStore& events,
                                       MappingStore& store, std::string region, std::string account_id,
                                       observe::Metrics* metrics)
    : io_(io),
      blocking_(blocking),
      dispatcher_(dispatcher),
      async_(async),
      events_(events),
      store_(store),
      region_(std::move(region)),
      account_id_(std::move(account_id)),
      metrics_(metrics) {}

void DispatcherDelivery::invoke(const MappingConfig& c, std::string payload,
                                std::function<void(InvocationResult)> done) {
    FunctionPtr fn;
    try {
        fn = dispatcher_.admit(c.function);
    } catch (const ApiError& e) {
        // Shutting down, usage storage unavailable, the function just deleted: the batch did
        // not run, so it waits like a throttled one rather than counting as a failure.
        InvocationResult r;
        r.outcome = Outcome::throttled;
        r.throttled = e.type();
        r.body = e.what();
        boost::asio::post(io_, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
        return;
    }
    InvokeOptions options;
    options.trigger = std::string(kEventSourceTrigger);
    dispatcher_.invoke(
        std::move(fn), std::move(payload),
        [done = std::move(done)](const Invocation&, InvocationResult r) { done(std::move(r)); }, std::move(options));
}

void DispatcherDelivery::fail_batch(const MappingConfig& c, FailedBatch f, std::function<void(bool)> done) {
    const auto now = std::chrono::system_clock::now();
    DeadLetter d;
    d.event.id = new_uuid();
    d.event.function = c.function;
    d.event.payload = f.payload;
    d.event.received = f.first_commit_time;
    d.event.next_attempt = now;
    d.event.attempts = f.attempts;
    d.event.errors = f.errors;
    d.event.source = "event-source:" + c.name;
    d.event.trace_id = new_trace_id();
    d.failed = now;
    d.reason = dead_letter_reason(f.condition);
    std::optional<AsyncEvent> follow_up;
    if (c.on_failure) {
        const std::string mapping_arn =
            "arn:aws:lambda:" + region_ + ":" + account_id_ + ":event-source-mapping:" + c.uuid;
        AsyncEvent e;
        e.id = new_uuid();
        e.function = *c.on_failure;
        e.payload = failure_record(c, f, function_arn(region_, account_id_, c.function, ""), mapping_arn, now).dump();
        e.received = now;
        e.next_attempt = now;
        e.source = "destination:" + c.function;
        e.trace_id = d.event.trace_id;
        follow_up = std::move(e);
    }
    if (metrics_)
        if (auto m = metrics_->functions.find(c.function)) m->dead_lettered(observe::dead_letter_reason_of(d.reason));
    boost::asio::post(blocking_, [this, d = std::move(d), follow_up, done = std::move(done)] {
        bool ok = true;
        try {
            events_.dead_letter(d, follow_up);
        } catch (const std::exception& ex) {
            spdlog::error("event source: cannot dead-letter a batch of function={}: {}", d.event.function, ex.what());
            ok = false;
        }
        boost::asio::post(io_, [this, ok, follow_up, done] {
            if (ok && follow_up) async_.add(*follow_up);
            done(ok);
        });
    });
}

void DispatcherDelivery::save_checkpoint(const MappingConfig& c, ChangePosition position,
                                         std::function<void(bool)> done) {
    boost::asio::post(blocking_, [this, uuid = c.uuid, name = c.name, position, done = std::move(done)] {
        bool ok = true;
        try {
            ok = store_.save_checkpoint(uuid, position);
            // Tried again until the runner is stopped: that happens once this node learns the
            // mapping was deleted or is run by another node now.
            if (!ok) spdlog::warn("event source: mapping={} checkpoint not saved: the mapping is gone, or another "
                                  "node runs it now", name);
        } catch (const std::exception& ex) {
            spdlog::error("event source: mapping={} cannot save its checkpoint: {}", name, ex.what());
            ok = false;
        }
        boost::asio::post(io_, [ok, done] { done(ok); });
    });
}

}  // namespace funcd
