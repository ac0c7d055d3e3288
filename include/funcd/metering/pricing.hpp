#pragma once
namespace funcd {

// Defaults are Lambda's x86 list prices (us-east-1).
struct Prices {
    double per_gb_second = 0.0000166667;
    double per_request = 0.20 / 1'000'000;
};

// gb_seconds contributed by one invocation: billed_ms/1000 * memory_mb/1024.
double gb_seconds(long long billed_ms, int memory_mb);
double cost_usd(double gb_seconds, long long invocations, const Prices& prices);

}  // namespace funcd
