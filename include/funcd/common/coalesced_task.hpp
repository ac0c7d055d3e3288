#pragma once
// Work run on a pool when asked, asks coalesced: while a run is queued or running, any number
// of further asks make one more run after it (never two at once, never one lost). For
// reading shared state again on notifications, which come in bursts.
#include <functional>
#include <mutex>
#include <string>

#include <boost/asio/thread_pool.hpp>

namespace funcd {

class CoalescedTask {
public:
    // `work` should not throw: what it throws is logged under `what`.
    CoalescedTask(boost::asio::thread_pool& pool, std::string what, std::function<void()> work);

    // Any thread.
    void request();

private:
    void run();

    boost::asio::thread_pool& pool_;
    const std::string what_;
    const std::function<void()> work_;
    std::mutex mutex_;
    bool queued_ = false;  // a run is queued or running
    bool again_ = false;   // and another was asked for meanwhile
};

}  // namespace funcd
