#pragma once
// The one place an invocation's lifecycle runs through, whatever triggered it:
// admission, the pool, metering, and the answer.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "funcd/dispatch/invocation.hpp"
#include "funcd/metering/usage_store.hpp"
#include "funcd/pool/pool_manager.hpp"
#include "funcd/registry/registry.hpp"

namespace funcd {

class Dispatcher {
public:
    using Done = std::function<void(const Invocation&, InvocationResult)>;

    Dispatcher(Registry& registry, PoolManager& pools, UsageStore& usage);

    // The function's current version. Throws ApiError: 404 unknown function, 503 shutting down.
    FunctionPtr admit(std::string_view function) const;
    // Starts an invocation of an admitted function; `done` is called on the loop once
    // the result is metered. Never throws for the client's input.
    void invoke(FunctionPtr fn, std::string payload, Done done);

    // New invocations are refused from now on.
    void stop_accepting() { accepting_ = false; }
    std::size_t in_flight() const { return in_flight_; }

private:
    Registry& registry_;
    PoolManager& pools_;
    UsageStore& usage_;
    bool accepting_ = true;
    std::size_t in_flight_ = 0;
};

}  // namespace funcd
