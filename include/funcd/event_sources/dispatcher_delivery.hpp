#pragma once
// The daemon's MappingDelivery: batches go to the dispatcher as synchronous invocations
// (trigger "event-source"), batches given up on to the dead letters the asynchronous
// invocations keep (EventStore, so /v1/dead-letters lists and redrives them) with the
// on-failure function's event queued in the same transaction, checkpoints to the
// MappingStore. Runs on the loop; the stores are reached through the blocking pool.
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/dispatch/event_store.hpp"
#include "funcd/event_sources/mapping_delivery.hpp"
#include "funcd/event_sources/mapping_store.hpp"
#include "funcd/observe/metrics.hpp"

namespace funcd {

// The usage ledger's trigger of a mapping's invocations.
inline constexpr std::string_view kEventSourceTrigger = "event-source";

// The on-failure function's event for a batch given up on: Lambda's record for stream
// sources (requestContext, responseContext, version, timestamp) with the batch's
// positions under "PostgresBatchInfo" (as DynamoDB's under "DDBStreamBatchInfo").
nlohmann::json failure_record(const MappingConfig& c, const FailedBatch& f, const std::string& function_arn,
                              const std::string& mapping_arn, SystemTime now);

// The dead letter's reason for a FailedBatch condition (the async invocations' vocabulary).
std::string dead_letter_reason(std::string_view condition);

class DispatcherDelivery : public MappingDelivery {
public:
    // `metrics`: where dead letters are counted per function; null: nowhere.
    DispatcherDelivery(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Dispatcher& dispatcher,
                       AsyncInvoker& async, EventStore& events, MappingStore& store, std::string region,
                       std::string account_id, observe::Metrics* metrics = nullptr);

    void invoke(const MappingConfig& c, std::string payload, std::function<void(InvocationResult)> done) override;
    void fail_batch(const MappingConfig& c, FailedBatch failure, std::function<void(bool)> done) override;
    void save_checkpoint(const MappingConfig& c, ChangePosition position, std::function<void(bool)> done) override;

private:
    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    Dispatcher& dispatcher_;
    AsyncInvoker& async_;
    EventStore& events_;
    MappingStore& store_;
    std::string region_;
    std::string account_id_;
    observe::Metrics* metrics_;
};

}  // namespace funcd
