#include "funcd/common/coalesced_task.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace funcd {

CoalescedTask::CoalescedTask(boost::asio::thread_pool& pool, std::string what, std::function<void()> work)
    : pool_(pool), what_(std::move(what)), work_(std::move(work)) {}

void CoalescedTask::request() {
    {
        std::lock_guard lock(mutex_);
        if (queued_) {
            again_ = true;
            return;
        }
        queued_ = true;
    }
    boost::asio::post(pool_, [this] { run(); });
}

void CoalescedTask::run() {
    while (true) {
        try {
            work_();
        } catch (const std::exception& e) {
            spdlog::warn("{}: {}", what_, e.what());
        }
        std::lock_guard lock(mutex_);
        if (!again_) {
            queued_ = false;
            return;
        }
        again_ = false;
    }
}

}  // namespace funcd
