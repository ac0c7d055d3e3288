#pragma once
// For tests whose parts live on an io_context run by a thread of its own: running code on
// that thread (the parts are not thread-safe) and polling a condition there.
#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace funcd::testing {

// Runs `f` on the thread running `io` and returns its result (or rethrows its exception).
template <class F>
auto run_on(boost::asio::io_context& io, F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(io, [&task] { task(); });
    return result.get();
}

// Polls `pred` on that thread every `interval` until it holds; false after `patience`.
template <class F>
bool poll_on(boost::asio::io_context& io, F pred, std::chrono::milliseconds patience,
             std::chrono::milliseconds interval) {
    const auto give_up = std::chrono::steady_clock::now() + patience;
    while (!run_on(io, pred)) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        std::this_thread::sleep_for(interval);
    }
    return true;
}

}  // namespace funcd::testing
