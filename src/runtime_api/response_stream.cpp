#include "funcd/runtime_api/response_stream.hpp"

#include <utility>

namespace funcd {

ResponseStream::ResponseStream(std::size_t high_water, std::string content_type)
    : high_water_(high_water == 0 ? 1 : high_water), content_type_(std::move(content_type)) {}

void ResponseStream::write(std::string_view data) {
    if (data.empty() || state_ != State::open || cancelled_) return;
    // Consumed bytes are dropped before the string would grow: it holds at most what is
    // buffered plus one write, never the whole response.
    if (read_ > 0 && bytes_.size() + data.size() > bytes_.capacity()) {
        bytes_.erase(0, read_);
        read_ = 0;
    }
    bytes_.append(data);
    total_ += data.size();
    notify_reader();
}

void ResponseStream::when_drained(std::function<void()> fn) {
    if (cancelled_ || buffered() <= high_water_ / 2) return fn();
    drained_ = std::move(fn);
}

void ResponseStream::finish() {
    if (state_ != State::open) return;
    state_ = State::complete;
    notify_reader();
}

void ResponseStream::fail(std::string error_type, std::string error_body) {
    if (state_ != State::open) return;
    state_ = State::failed;
    error_type_ = std::move(error_type);
    error_body_ = std::move(error_body);
    notify_reader();
}

void ResponseStream::on_cancel(std::function<void()> fn) {
    if (cancelled_) return fn();
    cancel_ = std::move(fn);
}

void ResponseStream::consume(std::size_t n) {
    read_ += std::min(n, buffered());
    if (read_ == bytes_.size()) {
        bytes_.clear();
        read_ = 0;
        // A stream that went past the high-water mark once does not keep that much allocated.
        if (bytes_.capacity() > 2 * high_water_) bytes_.shrink_to_fit();
    }
    if (drained_ && buffered() <= high_water_ / 2) std::exchange(drained_, nullptr)();
}

void ResponseStream::when_readable(std::function<void()> fn) {
    if (buffered() > 0 || state_ != State::open) return fn();
    reader_ = std::move(fn);
}

void ResponseStream::cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    reader_ = nullptr;
    bytes_ = std::string();
    read_ = 0;
    if (drained_) std::exchange(drained_, nullptr)();
    if (cancel_) std::exchange(cancel_, nullptr)();
}

void ResponseStream::notify_reader() {
    if (reader_) std::exchange(reader_, nullptr)();
}

}  // namespace funcd
