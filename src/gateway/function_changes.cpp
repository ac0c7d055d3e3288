#include "funcd/gateway/function_changes.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace funcd {

FunctionChanges::FunctionChanges(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                                 PoolManager& pools, Dispatcher& dispatcher, EventApi& events, TriggerApi& triggers,
                                 EventSourceMappings& mappings, LogDirectory& logs, observe::FunctionMetricsTable* metrics)
    : io_(io),
      blocking_(blocking),
      registry_(registry),
      pools_(pools),
      dispatcher_(dispatcher),
      events_(events),
      triggers_(triggers),
      mappings_(mappings),
      logs_(logs),
      metrics_(metrics) {}

void FunctionChanges::changed(const FunctionRecordPtr& record) {
    pools_.sync(record->name, record->all_versions());
    // Its series appear from the deploy on, zeros until it is invoked.
    if (metrics_) metrics_->add(record->name);
    dispatcher_.reservations_changed();
    collect_code_garbage();
}

void FunctionChanges::deleted(const std::string& name) { forget(name, true); }

void FunctionChanges::deleted_elsewhere(const std::string& name) { forget(name, false); }

void FunctionChanges::forget(const std::string& name, bool drop_stored) {
    pools_.retire_function(name);
    events_.function_deleted(name, drop_stored);
    triggers_.function_deleted(name, drop_stored);
    mappings_.function_deleted(name, drop_stored);
    logs_.remove(name);
    if (metrics_) metrics_->remove(name);
    dispatcher_.reservations_changed();
    collect_code_garbage();
}

void FunctionChanges::collect_code_garbage() {
    boost::asio::post(blocking_, [this, live = pools_.code_in_use()] {
        try {
            registry_.collect_code_garbage(live);
        } catch (const std::exception& e) {
            spdlog::error("api: code garbage collection failed: {}", e.what());
        }
    });
}

}  // namespace funcd
