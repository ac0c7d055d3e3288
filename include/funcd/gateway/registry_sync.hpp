#pragma once
// Brings changes other nodes made to the shared functions into this node: refresh() reads
// them (Registry::refresh, off the loop) and hands each to FunctionChanges on the loop, as a
// change made here would be (pools follow the new versions, a deleted function's workers,
// events, triggers and logs go). Calls coalesce (CoalescedTask): a burst of notifications
// costs two reads.
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/common/coalesced_task.hpp"
#include "funcd/gateway/function_changes.hpp"
#include "funcd/registry/registry.hpp"

namespace funcd {

class RegistrySync {
public:
    RegistrySync(boost::asio::io_context& io, boost::asio::thread_pool& pool, Registry& registry,
                 FunctionChanges& changes);

    // Any thread.
    void refresh() { task_.request(); }

private:
    void read();

    boost::asio::io_context& io_;
    Registry& registry_;
    FunctionChanges& changes_;
    CoalescedTask task_;
};

}  // namespace funcd
