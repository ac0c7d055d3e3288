#pragma once
// A monotonic count with one writer (the event loop, which runs every invocation's
// completion) and readers anywhere (a scrape).
//
// Why not fetch_add: with one writer an increment needs no read-modify-write, so it is a
// plain load, add and store (no locked instruction on x86), while the atomic still lets a
// reader on another thread see a whole value. A second writer would lose increments: every
// counter has exactly one owner, named where it is declared.
#include <atomic>
#include <cstdint>

namespace funcd::observe {

class Counter {
public:
    void add(std::uint64_t n = 1) noexcept { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

}  // namespace funcd::observe
