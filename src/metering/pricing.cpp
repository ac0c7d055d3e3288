#include "funcd/metering/pricing.hpp"

namespace funcd {

double gb_seconds(long long billed_ms, int memory_mb) {
    return static_cast<double>(billed_ms) / 1000.0 * static_cast<double>(memory_mb) / 1024.0;
}

double cost_usd(double gb_seconds, long long invocations, const Prices& prices) {
    return gb_seconds * prices.per_gb_second + static_cast<double>(invocations) * prices.per_request;
}

}  // namespace funcd
