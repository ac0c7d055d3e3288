#pragma once
// A Runtime API request body, buffered as its bytes arrive and charged to the worker's
// budget (RuntimeApiLimits::max_body_bytes_per_worker) by what it holds allocated.
#include <cstddef>
#include <string>
#include <string_view>

namespace funcd {

// The bytes request bodies hold allocated across one worker's connections, against its limit.
struct BodyBudget {
    std::size_t limit = 0;
    std::size_t used = 0;
};

// One connection's request body. It grows only as bytes arrive: a declared Content-Length
// is a ceiling, never a reservation, so a runtime that declares 6 MiB and sends ten bytes
// costs ten bytes' worth.
class BodyBuffer {
public:
    explicit BodyBuffer(BodyBudget& budget) : budget_(budget) {}
    ~BodyBuffer() { budget_.used -= charged_; }
    BodyBuffer(const BodyBuffer&) = delete;
    BodyBuffer& operator=(const BodyBuffer&) = delete;

    // Appends `data`; `ceiling` is the most this body can come to (its declared length, or
    // the payload limit). False, and nothing appended, when the allocation it needs would
    // take the worker past its budget.
    bool append(std::string_view data, std::size_t ceiling);

    // The body, handed over (to the worker): no longer charged here.
    std::string take();

    // Empty for the next request; a large allocation is given back.
    void reset();

private:
    // What the string holds on the heap (none while it fits in the string itself).
    std::size_t allocated() const;
    void recharge();

    BodyBudget& budget_;
    std::string text_;
    std::size_t charged_ = 0;
};

}  // namespace funcd
