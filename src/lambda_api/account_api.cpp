// Lambda's GetAccountSettings, from funcd's real limits and usage.
#include "funcd/lambda_api/lambda_api.hpp"

namespace funcd {

using nlohmann::json;

void LambdaApi::account_settings(const CallPtr& call) {
    const int reserved = registry_.reserved_total();
    offload(call, [this, reserved] {
        // funcd's real limits: code sizes are Lambda's (funcd enforces the same), concurrency
        // is --max-concurrency, and TotalCodeSize is bounded only by the disk.
        json out{{"AccountLimit",
                  {{"TotalCodeSize", 80'530'636'800LL},
                   {"CodeSizeUnzipped", static_cast<long long>(limits::kMaxUnpackedBytes)},
                   {"CodeSizeZipped", static_cast<long long>(limits::kMaxZipBytes)},
                   {"ConcurrentExecutions", options_.max_concurrency},
                   {"UnreservedConcurrentExecutions", options_.max_concurrency - reserved}}},
                 {"AccountUsage",
                  {{"TotalCodeSize", registry_.total_code_size()}, {"FunctionCount", registry_.list().size()}}}};
        return http::Response{200, {}, out.dump(), "application/json"};
    });
}


}  // namespace funcd
