#pragma once
// The HTTP API: /healthz, the authenticated /v1 control API and /metrics, invocations, and
// the dashboard's files under /ui (dashboard.hpp).
// Blocking work (unpacking code, SQLite queries) runs on `blocking`; everything that
// touches pools and workers runs on the loop.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/gateway/cluster_api.hpp"
#include "funcd/gateway/event_api.hpp"
#include "funcd/gateway/event_source_api.hpp"
#include "funcd/gateway/function_changes.hpp"
#include "funcd/gateway/logs_api.hpp"
#include "funcd/lambda_api/code_locations.hpp"
#include "funcd/lambda_api/lambda_api.hpp"
#include "funcd/gateway/http_trigger.hpp"
#include "funcd/gateway/trigger_api.hpp"
#include "funcd/gateway/http_types.hpp"
#include "funcd/metering/pricing.hpp"
#include "funcd/observe/metrics_endpoint.hpp"
#include "funcd/pool/runtime_catalog.hpp"

namespace funcd {

class ControlApi {
public:
    // `blocking`: short database work; `bulk`: deploys, whose parsing, base64 and unzipping
    // grow with the request's size and must not delay async accepts or usage queries.
    ControlApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, boost::asio::thread_pool& bulk,
               Registry& registry,
               PoolManager& pools, Dispatcher& dispatcher, UsageStore& usage, EventApi& events,
               TriggerApi& triggers, EventSourceApi& event_sources, HttpTrigger& http, FunctionChanges& changes, LambdaApi& lambda,
               CodeLocations& locations, const RuntimeCatalog& runtimes, Prices prices, std::string api_token,
               LogsApi& logs, ClusterApi& cluster, const observe::MetricsEndpoint* metrics = nullptr);

    // For http::Server: every request of the listener (/v1, Lambda's API, function URLs...).
    void handle(http::Request req, http::Responder respond);
    // For http::Server, once a request's head has arrived: the APIs refuse a request without
    // valid credentials before its body is read (the body is never buffered); function URLs
    // and routes decide by their function's auth setting (public ones read the body).
    http::HeadDecision check_head(const http::Request& head) const;
    static std::size_t body_limit(std::string_view method, std::string_view target);
    static http::Response too_large(std::string_view method, std::string_view target,
                                    std::optional<std::uint64_t> declared, std::size_t limit);

private:
    void deploy(const std::string& name, http::Request& req, http::Responder& respond);
    void remove(const std::string& name, http::Responder& respond);
    void get_function(const std::string& name, http::Responder& respond);
    void list_functions(http::Responder& respond);
    void invoke(const std::string& name, http::Request& req, http::Responder& respond);
    void get_concurrency(const std::string& name, http::Responder& respond);
    // Without a request: DELETE, both settings removed.
    void put_concurrency(const std::string& name, std::optional<std::reference_wrapper<http::Request>> req,
                         http::Responder& respond);
    nlohmann::json concurrency_json(const FunctionRecord& fn) const;
    void usage(const http::Request& req, http::Responder& respond);
    void usage_records(const http::Request& req, http::Responder& respond);
    // invocation_history.cpp
    void invocations(const std::string& name, const http::Request& req, http::Responder& respond);
    void stats(const std::string& name, const http::Request& req, http::Responder& respond);
    bool authorized(const http::Request& req) const;
    // describe(fn) and the runtime version that runs its default version.
    nlohmann::json describe_with_runtime(const FunctionRecord& fn) const;
    static http::Response unauthorized();

    // Runs `work` on the blocking pool and answers with its result (or its ApiError) on the loop.
    void offload(http::Responder respond, std::function<http::Response()> work);

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    boost::asio::thread_pool& bulk_;
    Registry& registry_;
    PoolManager& pools_;
    Dispatcher& dispatcher_;
    UsageStore& usage_;
    EventApi& events_;
    TriggerApi& triggers_;
    EventSourceApi& event_sources_;
    HttpTrigger& http_;
    FunctionChanges& changes_;
    LambdaApi& lambda_;
    CodeLocations& locations_;
    const RuntimeCatalog& runtimes_;
    Prices prices_;
    std::string api_token_;
    LogsApi& logs_;
    ClusterApi& cluster_;
    const observe::MetricsEndpoint* metrics_;  // null: --metrics off
};

}  // namespace funcd
