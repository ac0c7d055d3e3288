#pragma once
// The HTTP/1.1 server in front of everything (Boost.Beast): a fresh parser per message,
// whose body is read only once the head has been accepted (credentials checked, body limit
// chosen), a deadline for the whole head and one for the whole body, a cap on open
// connections, keep-alive, one request in flight per connection (the next is read after
// the answer is written). The caps are http::ConnectionLimits, part of DaemonLimits.
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "funcd/gateway/connection_limits.hpp"
#include "funcd/gateway/http_types.hpp"

namespace funcd::http {

struct ServerOptions {
    std::string host = "127.0.0.1";
    unsigned short port = 8080;
    ConnectionLimits limits;
};

class Server {
public:
    // `too_large`: how to refuse an oversized body; null: funcd's own error shape.
    Server(boost::asio::io_context& io, ServerOptions options, HeadFn head, HandlerFn handler,
           TooLargeFn too_large = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and starts accepting. Throws std::system_error when the address cannot be bound.
    void listen();
    // The bound port (useful with port 0).
    unsigned short port() const;
    // Stops accepting; idle keep-alive connections are closed, busy ones after their answer.
    void stop();

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace funcd::http
