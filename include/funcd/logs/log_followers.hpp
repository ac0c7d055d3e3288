#pragma once
// The clients following one function's log (`GET /v1/functions/{name}/logs?follow=true`).
// A record is handed to them as it is appended to the log, before the batched write to the
// file, so it reaches them at once rather than with the next flush. Runs on the event loop.
#include <memory>
#include <string_view>
#include <vector>

namespace funcd {

class LogFollower {
public:
    virtual ~LogFollower() = default;
    // A record's line as written to the file (log_line.hpp), without its '\n'.
    virtual void on_line(std::string_view line) = 0;
    virtual void on_heartbeat() = 0;
    // The log ends: "deleted" (the function was) or "shutdown" (the daemon stops).
    virtual void on_end(std::string_view reason) = 0;
};

class LogFollowers {
public:
    bool empty() const { return list_.empty(); }
    std::size_t size() const { return list_.size(); }
    void add(std::shared_ptr<LogFollower> f) { list_.push_back(std::move(f)); }
    bool remove(const LogFollower* f);
    void deliver(std::string_view line);
    void heartbeat();
    // Ends every follower and forgets them.
    void end_all(std::string_view reason);

private:
    std::vector<std::shared_ptr<LogFollower>> list_;
};

}  // namespace funcd
