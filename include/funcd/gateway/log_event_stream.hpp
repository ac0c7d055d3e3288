#pragma once
// One client of `GET /v1/functions/{name}/logs?follow=true`: each record of the function's
// log that passes the client's filter, as a Server-Sent Event on a streamed response.
//
//   data: <record as JSON>        one per record
//   : heartbeat                   every logs.heartbeat_ms
//   event: dropped                records skipped for a slow reader, {"records": n}
//   event: end                    the log ended, {"reason": "deleted" | "shutdown"}
//
// What waits for the client is bounded (logs.follower_buffer_bytes): a record that does not
// fit is skipped and counted, and the count is said in an `event: dropped` before the next
// record that fits, so a slow reader costs the daemon its buffer, never more.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "funcd/logs/log_followers.hpp"
#include "funcd/logs/log_query.hpp"
#include "funcd/runtime_api/response_stream.hpp"

namespace funcd {

class LogEventStream : public LogFollower {
public:
    LogEventStream(std::shared_ptr<ResponseStream> stream, LogFilter filter, std::uint64_t buffer_bytes);

    void on_line(std::string_view line) override;
    void on_heartbeat() override;
    void on_end(std::string_view reason) override;

    // Records skipped and not yet said in an `event: dropped`.
    std::uint64_t dropped() const { return dropped_; }

private:
    bool live() const;
    bool fits(std::size_t n) const;
    std::string dropped_event() const;
    void offer(const std::string& event);

    std::shared_ptr<ResponseStream> stream_;
    LogFilter filter_;
    std::uint64_t buffer_bytes_;
    std::uint64_t dropped_ = 0;
};

}  // namespace funcd
