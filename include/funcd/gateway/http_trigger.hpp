#pragma once
// Functions as HTTP endpoints: function URLs (ANY /fn/{name}[/{path...}]) and the route
// table mounted under /api, both answered the way API Gateway's HTTP APIs answer (payload
// format 2.0). Each function's url_auth decides whether the API token is required, and its
// CORS settings answer preflights. The route table's API (/v1/routes) lives here too.
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/gateway/api_request.hpp"
#include "funcd/lambda_api/sigv4.hpp"
#include "funcd/triggers/route_table.hpp"
#include "funcd/common/local_changes.hpp"
#include "funcd/triggers/trigger_store.hpp"

#include "funcd/observe/function_metrics_table.hpp"

namespace funcd {

class HttpTrigger {
public:
    // `api_token`: what url_auth "token" requires.
    // `verifier`: what a function URL with AuthType AWS_IAM requires.
    HttpTrigger(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                Dispatcher& dispatcher, TriggerStore& store, std::string api_token, const sigv4::Verifier& verifier,
                observe::FunctionMetricsTable* metrics = nullptr);

    // Loads the stored route table. Call once, before the loop runs.
    void start();
    // Reads the stored route table again (another node may have changed it) and takes it if
    // it differs. Blocks on the store: off the loop.
    void reload();
    // /fn/... and /api/... once their head has arrived: refused at once when the function does
    // not exist or the request lacks the credentials its URL requires, so an anonymous client
    // cannot make funcd buffer a body; nullopt for other paths.
    std::optional<http::HeadDecision> check_head(const api::ParsedTarget& t, const http::Request& head) const;
    // /fn/... and /api/...: false for other paths.
    bool handle_endpoint(const api::ParsedTarget& t, http::Request& req, http::Responder& respond);
    // /v1/routes: false for other routes.
    bool handle_api(const api::ParsedTarget& t, http::Request& req, http::Responder& respond);

private:
    struct Target {
        FunctionPtr fn;
        std::string route_key;
        std::string raw_path;
        std::map<std::string, std::string> path_parameters;
        // A function URL configured through Lambda's API (its auth and CORS apply).
        std::optional<FunctionUrlConfig> url;
    };
    // The function a /fn or /api request is for (fn null: none); nullopt for other paths.
    std::optional<Target> find_target(const api::ParsedTarget& t, const http::Request& req) const;
    // The answer refusing `req` (no such function, missing credentials), or nullopt. Before
    // the body is read (`body_read` false) a SigV4 signature is checked all but its body hash.
    std::optional<http::Response> refusal(const Target& target, const http::Request& req, bool body_read) const;
    void serve(Target target, http::Request& req, http::Responder& respond);
    void put_routes(http::Request& req, http::Responder& respond);

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    Registry& registry_;
    Dispatcher& dispatcher_;
    TriggerStore& store_;
    std::string api_token_;
    const sigv4::Verifier& verifier_;
    observe::FunctionMetricsTable* metrics_;  // answers by status class; null: not counted
    std::shared_ptr<const RouteTable> routes_ = std::make_shared<RouteTable>();
    LocalChanges local_changes_;  // route tables put through this node
};

}  // namespace funcd
