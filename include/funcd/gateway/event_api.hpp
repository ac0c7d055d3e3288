#pragma once
// The API of asynchronous invocations: queuing an event (invoke with the Event
// invocation type), each function's event config, and the dead letters.
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/gateway/api_request.hpp"

namespace funcd {

class EventApi {
public:
    EventApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry, EventStore& store,
             AsyncInvoker& invoker);

    // Handles /v1/functions/{name}/event-config and /v1/dead-letters...; false for other routes.
    bool handle(const api::ParsedTarget& t, http::Request& req, http::Responder& respond);
    // 202 {"request_id"} once the event is committed. `target`: a function name, or
    // name:qualifier (see AsyncTarget).
    void invoke_async(const std::string& target, std::string payload, http::Responder& respond,
                      std::string trace_id = {});
    // The function was deleted: its queued events and config go. `drop_stored`: from the
    // store too; not when the deletion came through another node (it dropped them there, and
    // the function may be there again by now, with new ones).
    void function_deleted(const std::string& name, bool drop_stored = true);
    AsyncQueueStats queue_stats(const std::string& name) const { return invoker_.stats(name); }

private:
    void event_config(const std::string& name, http::Request& req, http::Responder& respond);
    void dead_letters(const api::ParsedTarget& t, http::Responder& respond);
    void redrive(const std::string& id, http::Responder& respond);
    void delete_dead_letter(const std::string& id, http::Responder& respond);

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    Registry& registry_;
    EventStore& store_;
    AsyncInvoker& invoker_;
};

}  // namespace funcd
