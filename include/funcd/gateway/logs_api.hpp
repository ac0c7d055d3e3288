#pragma once
// The logs API (docs/observability.md, Logs API):
//   GET /v1/functions/{name}/logs?request_id=&trace_id=&since=&until=&limit=&level=
//       a function's records as JSON lines (application/x-ndjson), oldest first;
//   GET /v1/functions/{name}/logs?follow=true[&request_id=][&level=]
//       new records as they are written, as Server-Sent Events;
//   GET /v1/logs?trace_id=[&since=&until=&limit=&level=]
//       the records of every invocation of one trace, across functions.
// Queries read the files on the blocking pool; followers are fed on the loop by the
// FunctionLog as it appends.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/gateway/api_request.hpp"
#include "funcd/gateway/http_types.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/logs/log_query.hpp"

namespace funcd {

class Registry;
class UsageStore;

// A query's parameters, checked (ApiError 400 naming the parameter otherwise).
struct LogsRequest {
    LogFilter filter;
    std::optional<std::string> trace_root;  // trace_id's Root
    int limit = 0;
    bool follow = false;
};
// `function`: the per-function endpoint (else /v1/logs, where trace_id is required).
LogsRequest parse_logs_request(const api::ParsedTarget& t, bool function, const LogsApiLimits& limits);
// A since/until value: RFC 3339, or milliseconds since the Unix epoch.
SystemTime parse_log_time(std::string_view key, std::string_view text);

class LogsApi {
public:
    LogsApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry, UsageStore& usage,
            LogDirectory& logs);
    ~LogsApi();
    LogsApi(const LogsApi&) = delete;
    LogsApi& operator=(const LogsApi&) = delete;

    // Answers the two endpoints; false for any other target.
    bool handle(const api::ParsedTarget& t, const http::Request& req, http::Responder& respond);
    // Follow streams whose last bytes are not yet sent: shutdown waits for them.
    std::size_t streams_open() const;

private:
    void query(const std::optional<std::string>& function, LogsRequest q, http::Responder& respond);
    void follow(const std::string& function, LogsRequest q, http::Responder& respond);

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    Registry& registry_;
    UsageStore& usage_;
    LogDirectory& logs_;
    std::vector<std::weak_ptr<ResponseStream>> streams_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace funcd
