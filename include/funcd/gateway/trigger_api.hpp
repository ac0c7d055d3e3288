#pragma once
// The API of triggers other than direct invocation: schedules, file triggers, routes.
// Definitions are committed to the TriggerStore before they take effect.
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/gateway/api_request.hpp"
#include "funcd/common/local_changes.hpp"
#include "funcd/registry/registry.hpp"
#include "funcd/pool/pool_manager.hpp"
#include "funcd/triggers/file_triggers.hpp"
#include "funcd/triggers/scheduler.hpp"
#include "funcd/triggers/trigger_store.hpp"

namespace funcd {

class TriggerApi {
public:
    // `node_id`: this node; a file trigger watches a directory of the node it was set through.
    TriggerApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
               TriggerStore& store, Scheduler& scheduler, FileTriggers& files, PoolManager& pools,
               std::string node_id);

    // Loads the stored definitions and starts them. Call once, before the loop runs.
    void start();
    // Reads the stored definitions again (other nodes change them) and applies what
    // differs: schedules set, changed or removed; this node's file triggers removed. Blocks
    // on the store: off the loop.
    void reload();
    // Handles /v1/functions/{name}/schedules... and .../file-triggers...; false for other routes.
    bool handle(const api::ParsedTarget& t, http::Request& req, http::Responder& respond);
    // The function was deleted: its schedules and file triggers stop; `drop_stored` as
    // EventApi::function_deleted's.
    void function_deleted(const std::string& name, bool drop_stored = true);

private:
    // Throws ApiError: 400 for a bad name, 404 for a function that does not exist.
    void require_function(const std::string& function) const;
    void put_schedule(const std::string& function, const std::string& name, http::Request& req,
                      http::Responder& respond);
    void delete_schedule(const std::string& function, const std::string& name, http::Responder& respond);
    bool handle_file_triggers(const api::ParsedTarget& t, http::Request& req, http::Responder& respond);
    void put_file_trigger(const std::string& function, const std::string& name, http::Request& req,
                          http::Responder& respond);

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    Registry& registry_;
    TriggerStore& store_;
    Scheduler& scheduler_;
    FileTriggers& files_;
    PoolManager& pools_;
    const std::string node_id_;
    LocalChanges local_changes_;  // schedules and file triggers changed through this node
};

}  // namespace funcd
