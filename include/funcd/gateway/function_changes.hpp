#pragma once
// What follows a committed change of a function, whichever API made it, on the loop: its
// pools follow its versions (new $LATEST, new settings, provisioned workers), the
// dispatcher recounts the reservations, and code nothing uses any more is removed; a
// deleted function's workers, queued events, triggers, event source mappings, log files and
// metrics go with it.
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/event_sources/event_source_mappings.hpp"
#include "funcd/gateway/event_api.hpp"
#include "funcd/gateway/trigger_api.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/observe/function_metrics_table.hpp"

namespace funcd {

class FunctionChanges {
public:
    FunctionChanges(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                    PoolManager& pools, Dispatcher& dispatcher, EventApi& events, TriggerApi& triggers,
                    EventSourceMappings& mappings, LogDirectory& logs, observe::FunctionMetricsTable* metrics = nullptr);

    // Call on the loop once `record`'s change is committed.
    void changed(const FunctionRecordPtr& record);
    // Call on the loop once function `name` is deleted.
    void deleted(const std::string& name);
    // Call on the loop once this node learns that another node deleted `name`: what this node
    // runs of it goes; the shared stores' rows of it are that node's to drop (and may be the
    // rows of the function made again under the name by now).
    void deleted_elsewhere(const std::string& name);
    // Removes code no version and no live worker references (off the loop).
    void collect_code_garbage();

private:
    void forget(const std::string& name, bool drop_stored);

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    Registry& registry_;
    PoolManager& pools_;
    Dispatcher& dispatcher_;
    EventApi& events_;
    TriggerApi& triggers_;
    EventSourceMappings& mappings_;
    LogDirectory& logs_;
    observe::FunctionMetricsTable* metrics_;  // null: --metrics off
};

}  // namespace funcd
