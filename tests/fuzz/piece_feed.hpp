#pragma once
// A request stream delivered as a socket would deliver it, `piece` bytes per read (0: all
// at once), for the targets that check a parser gives the same answer however bytes arrive.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace funcd::fuzz {

class PieceFeed {
public:
    PieceFeed(std::string_view stream, std::size_t piece) : stream_(stream), piece_(piece) {}

    // Appends the next read to `buffer`; false once the stream is all delivered.
    bool receive(std::string& buffer) {
        const std::size_t left = stream_.size() - delivered_;
        const std::size_t n = piece_ == 0 ? left : std::min(piece_, left);
        buffer.append(stream_.substr(delivered_, n));
        delivered_ += n;
        return n > 0;
    }

private:
    std::string_view stream_;
    std::size_t piece_;
    std::size_t delivered_ = 0;
};

}  // namespace funcd::fuzz
