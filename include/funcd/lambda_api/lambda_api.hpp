#pragma once
// Lambda's own REST API (the control plane and Invoke, as botocore's model describes it),
// on the same listener as /v1, so the aws CLI, boto3, the AWS SDKs and Terraform work
// against funcd with nothing but an endpoint URL. Requests are authenticated with SigV4.
// It is a second view of the registry the /v1 API shows: same functions, versions,
// aliases, workers and ledger.
//
// Paths carry their API version date (/2015-03-31/functions, /2017-10-31/.../concurrency,
// ...) and, from older clients, a trailing slash. Function names in paths may be a name,
// name:qualifier, a partial or a full ARN, percent-encoded once.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/dispatch/event_store.hpp"
#include "funcd/event_sources/event_source_mappings.hpp"
#include "funcd/gateway/api_request.hpp"
#include "funcd/gateway/function_changes.hpp"
#include "funcd/lambda_api/aws_credentials.hpp"
#include "funcd/lambda_api/code_locations.hpp"
#include "funcd/lambda_api/lambda_error.hpp"
#include "funcd/lambda_api/lambda_shapes.hpp"
#include "funcd/lambda_api/sigv4.hpp"
#include "funcd/pool/runtime_catalog.hpp"
#include "funcd/registry/arn.hpp"

namespace funcd {

// One request of Lambda's API, from its authentication to its answer.
struct LambdaCall {
    http::Request req;
    api::ParsedTarget target;  // segments percent-decoded once
    std::string request_id;    // x-amzn-RequestId
    ArnScope scope;            // the region signed for, the account
    std::string principal;     // kAdminPrincipal or kInvokerPrincipal
    http::Responder respond;

    // Answers with Lambda's headers (x-amzn-RequestId).
    void reply(http::Response r);
    void reply(int status, const nlohmann::json& body);
    void reply_empty(int status);
    void fail(const LambdaError& e);
    // The request's body as a JSON object ({} when empty); 400 InvalidRequestContentException otherwise.
    nlohmann::json body_json() const;
};

// 412 PreconditionFailedException unless `body` has no RevisionId or the one `current` is
// (`api` names where the caller gets the current one, as Lambda's message does).
void check_revision(const nlohmann::json& body, std::string_view current,
                    std::string_view api = "GetFunction/GetAlias");

// A Tags object (CreateFunction, TagResource) checked against Lambda's limits.
std::map<std::string, std::string> parse_tags(const nlohmann::json& tags);

using CallPtr = std::shared_ptr<LambdaCall>;

struct LambdaApiOptions {
    int max_concurrency = 1000;
    // InvokeWithResponseStream's framed stream holds this much for a slow caller
    // (runtime_api.stream_buffer_bytes, as the function's own stream).
    std::size_t stream_buffer_bytes = 1024 * 1024;
};

class LambdaApi {
public:
    // `blocking`: short database work; `bulk`: work that grows with a request's size (code
    // uploads, hashing large bodies), kept apart so a deploy never delays the rest.
    LambdaApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, boost::asio::thread_pool& bulk,
              Registry& registry, PoolManager& pools,
              Dispatcher& dispatcher, AsyncInvoker& async, EventStore& events, FunctionChanges& changes,
              EventSourceMappings& mappings, CodeLocations& locations, const sigv4::Verifier& verifier, const RuntimeCatalog& runtimes,
              AwsCredentials credentials, LambdaApiOptions options);

    // The request is for Lambda's API (its path starts with one of its version dates).
    static bool is_lambda_path(std::string_view target);
    static std::size_t body_limit(std::string_view method, std::string_view target);
    // Lambda's 413 for a body over the operation's limit.
    static http::Response too_large(std::string_view method, std::string_view target,
                                    std::optional<std::uint64_t> declared, std::size_t limit);

    // Once a request's head has arrived: refused at once (403, Lambda's shape) unless its
    // signature's head is valid (form, known key, clock), so an anonymous client cannot make
    // funcd buffer a body; the signature over the body is checked when it has arrived.
    http::HeadDecision check_head(const http::Request& head) const;
    void handle(http::Request req, http::Responder respond);

private:
    void verified(const CallPtr& call, const sigv4::Verification& v);
    // Routing.
    void route(const CallPtr& call);
    void route_function(const CallPtr& call, const std::string& function, std::string_view date);
    void route_layers(const CallPtr& call);
    void route_tags(const CallPtr& call);

    // The function a path names, its qualifier merged with ?Qualifier (throws LambdaError).
    FunctionRef function_ref(const LambdaCall& call, const std::string& label) const;
    // The function's record, or 404 "Function not found: <arn>".
    FunctionRecordPtr record_for(const LambdaCall& call, const FunctionRef& ref) const;
    std::string arn(const LambdaCall& call, std::string_view name, std::string_view qualifier = {}) const;
    // Runs `work` on the blocking pool (on the bulk pool when `bulk`: its cost grows with the
    // request's size) and answers with its response or its error.
    void offload(const CallPtr& call, std::function<http::Response()> work, bool bulk = false);
    // A registry change (on the blocking pool) whose committed record `changes_` then applies.
    FunctionRecordPtr commit(std::string_view name, const std::function<void(RecordChange&)>& edit);

    // Functions (functions_api.cpp).
    void create_function(const CallPtr& call);
    void get_function(const CallPtr& call, const FunctionRef& ref, bool configuration_only);
    void list_functions(const CallPtr& call);
    void delete_function(const CallPtr& call, const FunctionRef& ref);
    void update_code(const CallPtr& call, const FunctionRef& ref);
    void update_configuration(const CallPtr& call, const FunctionRef& ref);
    void publish_version(const CallPtr& call, const FunctionRef& ref);
    void list_versions(const CallPtr& call, const FunctionRef& ref);
    // Applies a CreateFunction / UpdateFunctionConfiguration body to `config`.
    void apply_settings(const nlohmann::json& body, FunctionConfig& config, RecordChange& change, bool create) const;
    nlohmann::json configuration(const LambdaCall& call, const FunctionVersion& v, ConfigurationView view = {}) const;
    // One page (Marker, MaxItems) of `items` as {member: [FunctionConfiguration...], NextMarker}.
    nlohmann::json configuration_page(const LambdaCall& call, const std::vector<FunctionPtr>& items, bool qualified,
                                      std::string_view member) const;

    // Invoke (invoke_api.cpp).
    void invoke(const CallPtr& call, const FunctionRef& ref);
    void invoke_async(const CallPtr& call, const FunctionRef& ref);
    // InvokeWithResponseStream: the function's stream as event stream messages.
    void invoke_with_response_stream(const CallPtr& call, const FunctionRef& ref);

    // Aliases (aliases_api.cpp).
    void create_alias(const CallPtr& call, const FunctionRef& ref);
    void get_alias(const CallPtr& call, const FunctionRef& ref, const std::string& name);
    void update_alias(const CallPtr& call, const FunctionRef& ref, const std::string& name);
    void delete_alias(const CallPtr& call, const FunctionRef& ref, const std::string& name);
    void list_aliases(const CallPtr& call, const FunctionRef& ref);

    // Concurrency and provisioned concurrency (concurrency_api.cpp), async config
    // (event_invoke_config_api.cpp).
    void put_concurrency(const CallPtr& call, const FunctionRef& ref);
    void get_concurrency(const CallPtr& call, const FunctionRef& ref);
    void delete_concurrency(const CallPtr& call, const FunctionRef& ref);
    void provisioned(const CallPtr& call, const FunctionRef& ref);
    void event_invoke_config(const CallPtr& call, const FunctionRef& ref, bool list);

    // Function URLs (function_urls_api.cpp), permissions (permissions_api.cpp), account
    // settings (account_api.cpp); tags are routed by route_tags (tags_api.cpp).
    void url_config(const CallPtr& call, const FunctionRef& ref);
    void list_url_configs(const CallPtr& call, const FunctionRef& ref);
    void add_permission(const CallPtr& call, const FunctionRef& ref);
    void get_policy(const CallPtr& call, const FunctionRef& ref);
    void remove_permission(const CallPtr& call, const FunctionRef& ref, const std::string& sid);
    void account_settings(const CallPtr& call);

    // Event source mappings (event_source_mappings_api.cpp).
    void event_source_mappings(const CallPtr& call);
    void create_mapping(const CallPtr& call);
    void update_mapping(const CallPtr& call, const std::string& uuid);
    void list_mappings(const CallPtr& call);

    // Layers (layers_api.cpp).
    void publish_layer(const CallPtr& call, const std::string& name);
    void get_layer(const CallPtr& call, const std::string& name, const std::string& version);
    void get_layer_by_arn(const CallPtr& call);
    void list_layers(const CallPtr& call);
    void list_layer_versions(const CallPtr& call, const std::string& name);
    void delete_layer(const CallPtr& call, const std::string& name, const std::string& version);
    // The LayerRefs of a function's Layers (ARNs), in order, checked as Lambda checks them.
    std::vector<LayerRef> resolve_layers(const nlohmann::json& arns, RecordChange& change) const;

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    boost::asio::thread_pool& bulk_;
    Registry& registry_;
    PoolManager& pools_;
    Dispatcher& dispatcher_;
    AsyncInvoker& async_;
    EventStore& events_;
    FunctionChanges& changes_;
    EventSourceMappings& mappings_;
    CodeLocations& locations_;
    const sigv4::Verifier& verifier_;
    const RuntimeCatalog& runtimes_;
    AwsCredentials credentials_;
    LambdaApiOptions options_;
};

}  // namespace funcd
