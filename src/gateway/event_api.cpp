#include "funcd/gateway/event_api.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace api;

constexpr int kDefaultDeadLettersLimit = 100;
constexpr int kMaxDeadLettersLimit = 1000;

json to_json(const DeadLetter& d) {
    json payload = json::parse(d.event.payload, nullptr, false);
    return {{"id", d.event.id},
            {"function", d.event.function},
            {"payload", payload.is_discarded() ? json(d.event.payload) : payload},
            {"source", d.event.source},
            {"trace_id", d.event.trace_id.empty() ? json(nullptr) : json(d.event.trace_id)},
            {"received", format_rfc3339(d.event.received)},
            {"failed", format_rfc3339(d.failed)},
            {"reason", d.reason},
            {"attempts", d.event.attempts},
            {"errors", d.event.errors}};
}

// Request ids are UUIDs; anything else cannot name a dead letter.
void validate_id(const std::string& id) {
    const bool ok = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) || c == '-';
    });
    if (!ok) throw ApiError::bad_parameter("'" + id + "' is not a dead letter id (a request id)");
}

}  // namespace

EventApi::EventApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                   EventStore& store, AsyncInvoker& invoker)
    : io_(io), blocking_(blocking), registry_(registry), store_(store), invoker_(invoker) {}

bool EventApi::handle(const ParsedTarget& t, http::Request& req, http::Responder& respond) {
    const auto& s = t.segments;
    const std::string& m = req.method;
    if (s.size() == 4 && s[1] == "functions" && s[3] == "event-config") {
        validate_function_name(s[2]);
        if (m != "GET" && m != "PUT" && m != "DELETE") respond(method_not_allowed(m, "GET, PUT, DELETE"));
        else event_config(s[2], req, respond);
        return true;
    }
    if (s.size() < 2 || s[1] != "dead-letters") return false;
    if (s.size() == 2) {
        if (m != "GET") respond(method_not_allowed(m, "GET"));
        else dead_letters(t, respond);
        return true;
    }
    validate_id(s[2]);
    if (s.size() == 3) {
        if (m != "DELETE") respond(method_not_allowed(m, "DELETE"));
        else delete_dead_letter(s[2], respond);
        return true;
    }
    if (s.size() == 4 && s[3] == "redrive") {
        if (m != "POST") respond(method_not_allowed(m, "POST"));
        else redrive(s[2], respond);
        return true;
    }
    return false;
}

void EventApi::invoke_async(const std::string& target, std::string payload, http::Responder& respond,
                            std::string trace_id) {
    if (payload.size() > limits::kMaxAsyncPayloadBytes)
        throw ApiError::too_large("an asynchronous invocation's event is at most " +
                                  std::to_string(limits::kMaxAsyncPayloadBytes) + " bytes (got " +
                                  std::to_string(payload.size()) + ")");
    invoker_.submit(target, std::move(payload), "api",
                    [respond = std::move(respond)](const AcceptResult& result) {
                        if (result.kind() == AcceptResult::Kind::queue_full) {
                            http::Response r = error_response(429, "TooManyRequestsException", result.message());
                            json body = json::parse(r.body);
                            body["Reason"] = kQueueFullReason;
                            r.body = body.dump();
                            r.headers.emplace_back("Retry-After", "1");
                            return respond(std::move(r));
                        }
                        if (result.kind() == AcceptResult::Kind::storage_full)
                            return respond(error_response(507, "InsufficientStorage", result.message()));
                        if (result.kind() == AcceptResult::Kind::store_unavailable)
                            return respond(error_response(503, "ServiceUnavailableException", result.message()));
                        if (!result.ok()) return respond(error_response(500, "ServiceException", result.message()));
                        http::Response r = json_response(202, {{"request_id", result.request_id()}});
                        r.headers.emplace_back("X-Funcd-Request-Id", result.request_id());
                        r.headers.emplace_back("X-Amzn-Trace-Id", result.trace_id());
                        respond(std::move(r));
                    },
                    std::move(trace_id));
}

void EventApi::function_deleted(const std::string& name, bool drop_stored) {
    invoker_.function_deleted(name);
    if (!drop_stored) return;
    boost::asio::post(blocking_, [this, name] {
        try {
            store_.drop_function(name);
        } catch (const std::exception& e) {
            spdlog::error("events: cannot drop the queued events of deleted function={}: {}", name, e.what());
        }
    });
}

void EventApi::event_config(const std::string& name, http::Request& req, http::Responder& respond) {
    if (!registry_.find(name)) throw ApiError::not_found("function '" + name + "' does not exist");
    if (req.method == "GET") return respond(json_response(200, to_json(invoker_.config(name))));
    std::optional<EventConfig> config;
    if (req.method == "PUT") {
        require_json(req);
        config = parse_event_config(req.body, invoker_.config(name));
        for (const auto& [field, dest] : {std::pair{"on_success", config->on_success},
                                          std::pair{"on_failure", config->on_failure}}) {
            if (dest && !registry_.find(*dest))
                throw ApiError::bad_parameter(std::string(field) + ": function '" + *dest + "' does not exist");
        }
    }
    offload(io_, blocking_, std::move(respond), [this, name, config] {
        if (config) store_.put_event_config(name, *config);
        else store_.delete_event_config(name);
        boost::asio::post(io_, [this, name, config] { invoker_.set_config(name, config); });
        return json_response(200, to_json(config.value_or(EventConfig{})));
    });
}

void EventApi::dead_letters(const ParsedTarget& t, http::Responder& respond) {
    reject_unknown_params(t, {"function", "limit"});
    auto function = param(t, "function");
    if (function) validate_function_name(*function);
    const int limit = int_param(t, "limit", 1, kMaxDeadLettersLimit, kDefaultDeadLettersLimit);
    offload(io_, blocking_, std::move(respond), [this, function, limit] {
        json list = json::array();
        for (const auto& d : store_.dead_letters(function, limit)) list.push_back(to_json(d));
        return json_response(200, {{"dead_letters", std::move(list)}});
    });
}

void EventApi::redrive(const std::string& id, http::Responder& respond) {
    offload(io_, blocking_, std::move(respond), [this, id] {
        auto event = store_.redrive(id, std::chrono::system_clock::now());
        if (!event) throw ApiError::not_found("dead letter '" + id + "' does not exist");
        boost::asio::post(io_, [this, e = *event] { invoker_.add(e); });
        return json_response(202, {{"request_id", event->id}, {"function", event->function}});
    });
}

void EventApi::delete_dead_letter(const std::string& id, http::Responder& respond) {
    offload(io_, blocking_, std::move(respond), [this, id] {
        if (!store_.delete_dead_letter(id)) throw ApiError::not_found("dead letter '" + id + "' does not exist");
        return http::Response{204, {}, {}, "application/json"};
    });
}

}  // namespace funcd
