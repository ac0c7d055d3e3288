#include "funcd/runtime_api/runtime_body_buffer.hpp"

#include <algorithm>

namespace funcd {
namespace {

// A request body's first allocation: what most bodies (a small JSON answer, an error
// document) fit in. Later ones double, never past what the head declared, so what a body
// holds allocated is at most twice what has arrived of it.
constexpr std::size_t kFirstBodyAllocation = 4 * 1024;
// A body allocation larger than this is given back when its request is done rather than
// kept for the connection's next request: idle connections hold no megabytes.
constexpr std::size_t kKeptBodyAllocation = 64 * 1024;

}  // namespace

bool BodyBuffer::append(std::string_view data, std::size_t ceiling) {
    const std::size_t needed = text_.size() + data.size();
    if (needed > text_.capacity()) {
        const std::size_t want =
            std::max(needed, std::min(std::max(2 * text_.capacity(), kFirstBodyAllocation), ceiling));
        // Charged as allocated() counts it: the characters and the terminating NUL.
        if (budget_.used - charged_ + want + 1 > budget_.limit) return false;
        // A fresh string reserves exactly what it is asked for; growing one in place
        // rounds up to twice its capacity, which could go past the ceiling.
        std::string bigger;
        bigger.reserve(want);
        // Except a small allocation, which libstdc++ rounds up to twice the inline buffer:
        // checked again as what it holds, and given back if that is too much.
        if (budget_.used - charged_ + bigger.capacity() + 1 > budget_.limit) return false;
        bigger.append(text_);
        text_.swap(bigger);
    }
    text_.append(data.data(), data.size());
    recharge();
    return true;
}

std::string BodyBuffer::take() {
    std::string out = std::move(text_);
    text_ = std::string();
    recharge();
    return out;
}

void BodyBuffer::reset() {
    if (text_.capacity() > kKeptBodyAllocation) text_ = std::string();
    text_.clear();
    recharge();
}

std::size_t BodyBuffer::allocated() const {
    static const std::size_t inline_capacity = std::string().capacity();
    return text_.capacity() > inline_capacity ? text_.capacity() + 1 : 0;
}

void BodyBuffer::recharge() {
    const std::size_t now = allocated();
    budget_.used = budget_.used - charged_ + now;
    charged_ = now;
}

}  // namespace funcd
