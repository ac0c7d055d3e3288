#include "funcd/observe/function_metrics_table.hpp"

namespace funcd::observe {

const std::shared_ptr<FunctionMetrics>& FunctionMetricsTable::of(std::string_view function) {
    auto it = records_.find(function);
    if (it == records_.end()) it = records_.emplace(std::string(function), std::make_shared<FunctionMetrics>()).first;
    return it->second;
}

std::shared_ptr<FunctionMetrics> FunctionMetricsTable::find(std::string_view function) const {
    auto it = records_.find(function);
    return it == records_.end() ? nullptr : it->second;
}

void FunctionMetricsTable::remove(std::string_view function) {
    if (auto it = records_.find(function); it != records_.end()) records_.erase(it);
}

}  // namespace funcd::observe
