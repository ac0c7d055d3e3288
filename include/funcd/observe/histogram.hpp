#pragma once
// A histogram with fixed buckets of microseconds, exposed in seconds.
//
// Observations are whole microseconds (every duration funcd measures is one), so the sum is
// exact however many are added, and a bucket is found by comparing integers. Counts are
// kept per bucket, not cumulative, so an observation touches one bucket; the exposition
// accumulates them. One writer (the event loop), readers anywhere, as for Counter.
#include <array>
#include <atomic>
#include <cstdint>
#include <iterator>
#include <memory>
#include <span>
#include <vector>

namespace funcd::observe {

// Upper bounds of a histogram's buckets, in microseconds, ascending; +Inf is implied.
using BucketBounds = std::span<const std::int64_t>;

// Invocation, billed and init durations: from 0.5 ms (a warm noop on funcd takes a fraction
// of a millisecond) to 900 s (Lambda's longest timeout), about 2.5x apart, so a p99 read
// from the buckets is off by at most one such step.
inline constexpr std::int64_t kDurationBucketsUs[] = {
    500,        1'000,      2'500,      5'000,      10'000,      25'000,      50'000,
    100'000,    250'000,    500'000,    1'000'000,  2'500'000,   5'000'000,   10'000'000,
    30'000'000, 60'000'000, 120'000'000, 300'000'000, 600'000'000, 900'000'000,
};
// A worker's launch (clone, namespaces, cgroup, the sandbox's steps): about a millisecond on
// an idle host, tens of ms on a loaded one, seconds only when something is wrong.
inline constexpr std::int64_t kLaunchBucketsUs[] = {
    250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 5'000'000,
};

// The most buckets a histogram has (+Inf included): a snapshot holds its counts inline, so
// a scrape of 1,000 functions copies numbers without a heap allocation per histogram.
inline constexpr std::size_t kMaxBuckets = 24;
static_assert(std::size(kDurationBucketsUs) + 1 <= kMaxBuckets && std::size(kLaunchBucketsUs) + 1 <= kMaxBuckets);

// What a scrape reads: per-bucket counts (the last is +Inf), their total, and the sum.
struct HistogramSnapshot {
    BucketBounds bounds;
    std::array<std::uint64_t, kMaxBuckets> counts{};  // the first bounds.size() + 1, not cumulative
    std::uint64_t count = 0;
    std::int64_t sum_us = 0;

    std::size_t buckets() const { return bounds.size() + 1; }
};

class Histogram {
public:
    // At most kMaxBuckets - 1 bounds (std::invalid_argument otherwise).
    explicit Histogram(BucketBounds bounds);

    void observe_us(std::int64_t us) noexcept;
    HistogramSnapshot snapshot() const;
    BucketBounds bounds() const { return bounds_; }

private:
    BucketBounds bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1
    std::atomic<std::int64_t> sum_us_{0};
};

}  // namespace funcd::observe
