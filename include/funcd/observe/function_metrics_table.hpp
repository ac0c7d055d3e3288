#pragma once
// The metrics records of the deployed functions, by name. Records are added when a function
// is deployed or loaded at start (so a function nobody invoked yet shows zeros), and dropped
// when it is deleted, so the `function` label is bounded by the functions there are.
// An invocation in flight keeps its record alive after a delete and counts into it.
// Used on the loop only.
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "funcd/observe/function_metrics.hpp"

namespace funcd::observe {

class FunctionMetricsTable {
public:
    // The function's record, created if it has none (a function deployed a moment ago whose
    // change the loop has not seen yet).
    const std::shared_ptr<FunctionMetrics>& of(std::string_view function);
    // Null when the function has no record.
    std::shared_ptr<FunctionMetrics> find(std::string_view function) const;
    void add(std::string_view function) { of(function); }
    void remove(std::string_view function);

    // By name, for the exposition.
    const std::map<std::string, std::shared_ptr<FunctionMetrics>, std::less<>>& all() const { return records_; }

private:
    std::map<std::string, std::shared_ptr<FunctionMetrics>, std::less<>> records_;
};

}  // namespace funcd::observe
