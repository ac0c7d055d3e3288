#include "funcd/observe/histogram.hpp"

#include <algorithm>
#include <stdexcept>

namespace funcd::observe {

Histogram::Histogram(BucketBounds bounds)
    : bounds_(bounds), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {
    if (bounds.size() + 1 > kMaxBuckets) throw std::invalid_argument("a histogram has at most kMaxBuckets buckets");
}

void Histogram::observe_us(std::int64_t us) noexcept {
    // The first bound not below the value: Prometheus buckets are "less than or equal".
    const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), us) - bounds_.begin());
    // One writer: see counter.hpp.
    auto& c = counts_[bucket];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_us_.store(sum_us_.load(std::memory_order_relaxed) + us, std::memory_order_relaxed);
}

HistogramSnapshot Histogram::snapshot() const {
    HistogramSnapshot s;
    s.bounds = bounds_;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        s.counts[i] = counts_[i].load(std::memory_order_relaxed);
        s.count += s.counts[i];
    }
    s.sum_us = sum_us_.load(std::memory_order_relaxed);
    return s;
}

}  // namespace funcd::observe
