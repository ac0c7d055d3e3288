#pragma once
// One streamed response (Lambda's response streaming) between the runtime that writes it and
// the caller that reads it. Both ends run on the event loop.
//
// The runtime's connection writes what it parses of the chunked body; the caller's
// connection takes it as its socket accepts it. What sits in between is bounded: once the
// stream holds `high_water` bytes the writer stops reading the runtime's socket until the
// reader has taken half of it (backpressure reaches the function through TCP), so a slow
// client holds the daemon to about `high_water` bytes per stream, not the whole response.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace funcd {

class ResponseStream {
public:
    enum class State {
        open,      // bytes may still come
        complete,  // the runtime ended the body normally
        failed,    // cut short: an error trailer, a timeout, a crash, a size limit; see error_type()
    };

    // `content_type`: the runtime's Content-Type (empty: none given).
    ResponseStream(std::size_t high_water, std::string content_type);
    ResponseStream(const ResponseStream&) = delete;
    ResponseStream& operator=(const ResponseStream&) = delete;

    // Writer (the runtime's side).
    void write(std::string_view data);
    // At or over the high-water mark: stop reading the runtime until when_drained() fires.
    bool full() const { return buffered() >= high_water_; }
    // Calls `fn` once, when the buffered bytes fall to half the high-water mark or the
    // stream is cancelled.
    void when_drained(std::function<void()> fn);
    void finish();
    void fail(std::string error_type, std::string error_body);
    // The reader went away (cancel()): calls `fn` once, at once if it already has.
    void on_cancel(std::function<void()> fn);

    // Reader (the caller's side).
    std::string_view readable() const { return std::string_view(bytes_).substr(read_); }
    std::size_t buffered() const { return bytes_.size() - read_; }
    void consume(std::size_t n);
    // Calls `fn` once, when bytes arrive or the stream ends (at once if either is already so).
    void when_readable(std::function<void()> fn);
    // The caller is gone: nothing more is wanted. The writer hears it through on_cancel().
    void cancel();

    State state() const { return state_; }
    bool cancelled() const { return cancelled_; }
    const std::string& content_type() const { return content_type_; }
    // A failed stream's error (Lambda's errorType, and the error document).
    const std::string& error_type() const { return error_type_; }
    const std::string& error_body() const { return error_body_; }
    // Bytes written so far, over the stream's whole life.
    std::uint64_t total_bytes() const { return total_; }

private:
    void notify_reader();

    const std::size_t high_water_;
    const std::string content_type_;
    std::string bytes_;
    std::size_t read_ = 0;  // bytes_ before this have been consumed
    std::uint64_t total_ = 0;
    State state_ = State::open;
    bool cancelled_ = false;
    std::string error_type_;
    std::string error_body_;
    std::function<void()> reader_;
    std::function<void()> drained_;
    std::function<void()> cancel_;
};

}  // namespace funcd
