#include "funcd/gateway/log_event_stream.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "funcd/common/json_text.hpp"

namespace funcd {
namespace {

using nlohmann::json;

constexpr std::string_view kHeartbeat = ": heartbeat\n\n";

}  // namespace

LogEventStream::LogEventStream(std::shared_ptr<ResponseStream> stream, LogFilter filter, std::uint64_t buffer_bytes)
    : stream_(std::move(stream)), filter_(std::move(filter)), buffer_bytes_(buffer_bytes) {}

bool LogEventStream::live() const {
    return !stream_->cancelled() && stream_->state() == ResponseStream::State::open;
}

bool LogEventStream::fits(std::size_t n) const { return stream_->buffered() + n <= buffer_bytes_; }

std::string LogEventStream::dropped_event() const {
    return fmt::format("event: dropped\ndata: {}\n\n", json_text(json{{"records", dropped_}}));
}

void LogEventStream::on_line(std::string_view raw) {
    if (!live()) return;
    const auto line = parse_log_line(raw);
    if (!line || !filter_.matches(*line)) return;
    offer("data: " + json_text(log_record_json({}, *line)) + "\n\n");
}

void LogEventStream::on_heartbeat() {
    if (live() && fits(kHeartbeat.size())) stream_->write(kHeartbeat);
}

void LogEventStream::on_end(std::string_view reason) {
    if (!live()) return;
    if (dropped_ > 0) stream_->write(dropped_event());
    dropped_ = 0;
    stream_->write(fmt::format("event: end\ndata: {}\n\n", json_text(json{{"reason", reason}})));
    stream_->finish();
}

void LogEventStream::offer(const std::string& event) {
    if (dropped_ > 0) {
        const std::string marker = dropped_event();
        if (!fits(marker.size() + event.size())) {
            ++dropped_;
            return;
        }
        stream_->write(marker);
        dropped_ = 0;
    }
    if (!fits(event.size())) {
        ++dropped_;
        return;
    }
    stream_->write(event);
}

}  // namespace funcd
