#pragma once
// Brings changes other nodes made to the shared functions into this node: refresh() reads
// them (Registry::refresh, off the loop) and hands each to FunctionChanges on the loop, as a
// change made here would be (pools follow the new versions, a deleted function's workers,
// events, triggers and logs go). Calls coalesce: while a read runs, any number of further
// calls make one more read after it, so a burst of notifications costs two reads.
#include <mutex>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/gateway/function_changes.hpp"
#include "funcd/registry/registry.hpp"

namespace funcd {

class RegistrySync {
public:
    RegistrySync(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                 FunctionChanges& changes);

    // Any thread.
    void refresh();

private:
    void read();

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    Registry& registry_;
    FunctionChanges& changes_;
    std::mutex mutex_;
    bool reading_ = false;  // a read is queued or running
    bool again_ = false;    // and another was asked for meanwhile
};

}  // namespace funcd
