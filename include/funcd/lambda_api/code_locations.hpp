#pragma once
// Time-limited download URLs for uploaded zips (GetFunction's Code.Location, a layer
// version's Content.Location), like S3's presigned URLs: an HMAC of the path and the
// expiry time under a key only the daemon knows is the capability, so a plain HTTP GET
// with no credentials fetches exactly the bytes that were uploaded.
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/gateway/api_request.hpp"
#include "funcd/registry/code_store.hpp"

namespace funcd {

class CodeLocations {
public:
    using Clock = std::function<std::chrono::system_clock::time_point()>;

    // Lambda's presigned code URLs are valid for 10 minutes.
    static constexpr std::chrono::seconds kLifetime{600};

    CodeLocations(boost::asio::io_context& io, boost::asio::thread_pool& blocking, CodeStore& code, std::string key,
                  Clock clock = [] { return std::chrono::system_clock::now(); });

    // http://<host>/_funcd/code/<sha256>.zip?expires=<unix>&signature=<hex>. `host` is the
    // Host of the request asking, so the URL works wherever the client reached funcd.
    std::string url(std::string_view host, std::string_view sha256) const;

    // Serves GET/HEAD /_funcd/code/...; false for other paths. 403 for a bad or expired
    // signature, 404 when the zip is not kept.
    bool handle(const api::ParsedTarget& t, const http::Request& req, http::Responder& respond);

private:
    std::string signature(std::string_view sha256, long long expires) const;

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    CodeStore& code_;
    std::string key_;
    Clock clock_;
};

}  // namespace funcd
