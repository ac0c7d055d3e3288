#include "funcd/event_sources/mapping_runner.hpp"

#include <algorithm>
#include <limits>

#include <spdlog/spdlog.h>

namespace funcd {
namespace {

using nlohmann::json;

// Changes the mapping does not want are only checkpointed; past this many of them per
// batch_size the runner reads no further until a batch takes them, so a table written
// mostly with unwanted changes cannot fill the daemon's memory.
constexpr std::size_t kMaxBufferedPerBatchSize = 4;

std::string error_type_of(const InvocationResult& r) {
    if (!r.error_type.empty()) return r.error_type;
    switch (r.outcome) {
        case Outcome::timeout: return "Sandbox.Timedout";
        case Outcome::exit_error: return "Runtime.ExitError";
        case Outcome::init_error: return "Runtime.InitError";
        default: return "Unhandled";
    }
}

std::string error_message_of(const InvocationResult& r) {
    json doc = json::parse(r.body, nullptr, false);
    if (doc.is_object() && doc.contains("errorMessage") && doc["errorMessage"].is_string())
        return doc["errorMessage"].get<std::string>();
    // An error body is the runtime's; keep the record of it small.
    constexpr std::size_t kMaxKept = 1024;
    return r.body.substr(0, kMaxKept);
}

}  // namespace

ItemFailures parse_item_failures(std::string_view response, const std::vector<std::string>& sequence_numbers) {
    if (response.find_first_not_of(" \t\r\n") == std::string_view::npos) return ItemFailures::none();
    json doc = json::parse(response, nullptr, false);
    if (doc.is_discarded()) return ItemFailures::malformed("the response is not JSON");
    if (doc.is_null()) return ItemFailures::none();
    if (!doc.is_object()) return ItemFailures::malformed("the response is not a JSON object");
    auto list = doc.find("batchItemFailures");
    if (list == doc.end() || list->is_null()) return ItemFailures::none();
    if (!list->is_array()) return ItemFailures::malformed("batchItemFailures is not an array");
    if (list->empty()) return ItemFailures::none();
    std::size_t first = std::numeric_limits<std::size_t>::max();
    for (const auto& entry : *list) {
        if (!entry.is_object()) return ItemFailures::malformed("a batchItemFailures entry is not an object");
        auto id = entry.find("itemIdentifier");
        if (id == entry.end() || !id->is_string() || id->get<std::string>().empty())
            return ItemFailures::malformed("a batchItemFailures entry has no itemIdentifier string");
        auto at = std::find(sequence_numbers.begin(), sequence_numbers.end(), id->get<std::string>());
        if (at == sequence_numbers.end())
            return ItemFailures::malformed("itemIdentifier " + id->dump() + " is not a SequenceNumber of the batch");
        first = std::min(first, static_cast<std::size_t>(at - sequence_numbers.begin()));
    }
    return ItemFailures::from(first);
}

std::size_t MappingRunner::Batch::records() const {
    return static_cast<std::size_t>(std::count_if(items.begin(), items.end(), [](const Item& i) { return i.record; }));
}

MappingRunner::MappingRunner(boost::asio::io_context& io, MappingConfig config, std::unique_ptr<ChangeSource> source,
                             MappingDelivery& delivery, StreamEventContext context, EventSourceLimits limits,
                             DeliveryTiming timing, std::optional<ChangePosition> checkpoint)
    : io_(io),
      config_(std::move(config)),
      source_(std::move(source)),
      delivery_(delivery),
      context_(std::move(context)),
      limits_(limits),
      timing_(timing),
      window_timer_(io),
      retry_timer_(io),
      read_timer_(io),
      checkpoint_(checkpoint) {}

void MappingRunner::start() {
    stopped_ = false;
    spdlog::info("event source: mapping={} function={} starting after {}", config_.name, config_.function,
                 checkpoint_ ? format_lsn(checkpoint_->commit_lsn) + "#" + std::to_string(checkpoint_->ordinal)
                             : std::string("the start of its slot"));
    source_->start(checkpoint_.value_or(ChangePosition{}));
    read_more();
}

void MappingRunner::stop() {
    if (stopped_) return;
    stopped_ = true;
    window_timer_.cancel();
    retry_timer_.cancel();
    read_timer_.cancel();
    source_->stop();
}

void MappingRunner::read_more() {
    if (stopped_ || reading_) return;
    const auto batch_size = static_cast<std::size_t>(config_.batch_size);
    if (buffered_records_ >= batch_size || buffered_bytes_ >= limits_.max_batch_bytes ||
        buffer_.size() >= kMaxBufferedPerBatchSize * batch_size)
        return;
    reading_ = true;
    source_->read(batch_size - buffered_records_,
                  [self = shared_from_this()](std::error_code ec, std::vector<RowChange> changes) {
                      self->on_read(ec, std::move(changes));
                  });
}

void MappingRunner::on_read(std::error_code ec, std::vector<RowChange> changes) {
    reading_ = false;
    if (stopped_) return;
    if (ec) {
        // The seam ends a read with an error only when stopped; anything else is read again.
        counters_.last_error = "reading changes failed: " + ec.message();
        spdlog::warn("event source: mapping={} {}", config_.name, counters_.last_error);
        read_timer_.expires_after(timing_.throttle_backoff_max);
        read_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
            if (!e) self->read_more();
        });
        return;
    }
    for (auto& change : changes) {
        // The source skips what was delivered; a change at or before the checkpoint would
        // be a second delivery of the same row version, so it is dropped here as well.
        if (checkpoint_ && change.position <= *checkpoint_) continue;
        Item item;
        item.record = config_.wants(change.operation);
        if (item.record) {
            item.json = stream_record(change, context_);
            item.bytes = stream_record_bytes(item.json);
            ++buffered_records_;
            buffered_bytes_ += item.bytes;
        }
        item.change = std::move(change);
        buffer_.push_back(std::move(item));
    }
    if (!buffer_.empty() && !window_start_) window_start_ = Clock::now();
    read_more();
    maybe_deliver();
}

void MappingRunner::maybe_deliver() {
    if (stopped_ || batch_) return;
    if (!splits_.empty()) {
        batch_ = std::move(splits_.front());
        splits_.pop_front();
        return send();
    }
    if (buffer_.empty()) return;
    const bool full = buffered_records_ >= static_cast<std::size_t>(config_.batch_size) ||
                      buffered_bytes_ + kStreamEventOverheadBytes >= limits_.max_batch_bytes ||
                      buffered_records_ == 0;  // only changes to checkpoint past: nothing to gather
    if (!full && config_.maximum_batching_window_s > 0 && window_start_) {
        const auto due = *window_start_ + std::chrono::seconds(config_.maximum_batching_window_s);
        if (Clock::now() < due) {
            if (!window_armed_) {
                window_armed_ = true;
                window_timer_.expires_at(due);
                window_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
                    self->window_armed_ = false;
                    if (!ec) self->maybe_deliver();
                });
            }
            return;
        }
    }
    batch_ = take_batch();
    window_start_ = buffer_.empty() ? std::nullopt : std::optional(Clock::now());
    read_more();
    send();
}

MappingRunner::Batch MappingRunner::take_batch() {
    Batch b;
    std::size_t records = 0;
    std::size_t bytes = kStreamEventOverheadBytes;
    while (!buffer_.empty()) {
        Item& item = buffer_.front();
        if (item.record) {
            if (records == static_cast<std::size_t>(config_.batch_size)) break;
            // At least one record: one too large alone is given up on by send().
            if (records > 0 && bytes + item.bytes > limits_.max_batch_bytes) break;
            ++records;
            bytes += item.bytes;
            --buffered_records_;
            buffered_bytes_ -= item.bytes;
        }
        b.items.push_back(std::move(item));
        buffer_.pop_front();
    }
    return b;
}

bool MappingRunner::too_old(const Batch& b) const {
    if (config_.maximum_record_age_s < 0) return false;
    for (const auto& item : b.items)
        if (item.record)
            return std::chrono::system_clock::now() - item.change.commit_time >
                   std::chrono::seconds(config_.maximum_record_age_s);
    return false;
}

void MappingRunner::send() {
    if (stopped_ || !batch_) return;
    Batch& b = *batch_;
    if (b.records() == 0) return delivered(b.items.size(), true);
    if (too_old(b)) return give_up("RecordAgeExceeded");
    std::vector<const json*> records;
    for (const auto& item : b.items)
        if (item.record) records.push_back(&item.json);
    std::string payload = stream_event(records);
    if (payload.size() > limits_.max_batch_bytes) return give_up("RecordTooLarge");
    delivery_.invoke(config_, std::move(payload), [self = shared_from_this()](InvocationResult r) {
        if (!self->stopped_) self->on_result(std::move(r));
    });
}

void MappingRunner::on_result(InvocationResult r) {
    if (!batch_) return;
    Batch& b = *batch_;
    if (r.throttled) {
        // Not the function's failure: nothing is counted against the batch; it waits.
        ++b.throttles;
        ++counters_.throttles;
        counters_.last_processing_result = "PROBLEM: Function call throttled";
        after(backoff(timing_.throttle_backoff_first, timing_.throttle_backoff_max, b.throttles),
              &MappingRunner::send);
        return;
    }
    b.throttles = 0;
    if (r.outcome != Outcome::success) {
        const std::string type = error_type_of(r), message = error_message_of(r);
        b.last_result = std::move(r);
        return failed_attempt(type, message);
    }
    b.last_result = r;
    if (!config_.report_batch_item_failures) return delivered(b.items.size(), true);
    std::vector<std::string> sequence_numbers;
    std::vector<std::size_t> index_of_record;
    for (std::size_t i = 0; i < b.items.size(); ++i) {
        if (!b.items[i].record) continue;
        sequence_numbers.push_back(sequence_number(b.items[i].change));
        index_of_record.push_back(i);
    }
    const ItemFailures f = parse_item_failures(r.body, sequence_numbers);
    if (f.kind() == ItemFailures::Kind::none) return delivered(b.items.size(), true);
    if (f.kind() == ItemFailures::Kind::malformed)
        return failed_attempt("InvalidBatchItemFailures", f.why() + "; the whole batch failed");
    // Delivered up to the first failed record; the batch resumes from it, as a retry.
    ++b.attempts;
    ++counters_.invocation_errors;
    const std::string first = sequence_numbers[f.index()];
    b.errors.push_back({{"attempt", b.attempts},
                        {"error_type", "BatchItemFailures"},
                        {"error_message", "the function reported records from " + first + " as failed"}});
    counters_.last_processing_result = "PROBLEM: Function reported batch item failures";
    const std::size_t prefix = index_of_record[f.index()];
    if (prefix == 0) return retry_or_give_up();
    delivered(prefix, true);
}

void MappingRunner::failed_attempt(const std::string& error_type, const std::string& message) {
    Batch& b = *batch_;
    ++counters_.invocation_errors;
    counters_.last_error = error_type + ": " + message;
    counters_.last_processing_result = "PROBLEM: Function call failed";
    b.errors.push_back({{"attempt", b.attempts + 1}, {"error_type", error_type}, {"error_message", message}});
    const std::size_t records = b.records();
    if (config_.bisect_batch_on_function_error && records > 1) {
        // Split at the first record of the second half; a split is not a retry.
        std::size_t seen = 0, at = 0;
        for (; at < b.items.size(); ++at)
            if (b.items[at].record && seen++ == records / 2) break;
        Batch second;
        second.items.assign(std::make_move_iterator(b.items.begin() + static_cast<std::ptrdiff_t>(at)),
                            std::make_move_iterator(b.items.end()));
        b.items.resize(at);
        second.attempts = b.attempts;
        second.errors = b.errors;
        splits_.push_front(std::move(second));
        spdlog::info("event source: mapping={} batch failed ({}); split into {} and {} records", config_.name,
                     error_type, records / 2, records - records / 2);
        return after(std::chrono::milliseconds(0), &MappingRunner::send);
    }
    ++b.attempts;
    retry_or_give_up();
}

void MappingRunner::retry_or_give_up() {
    Batch& b = *batch_;
    if (config_.maximum_retry_attempts >= 0 && b.attempts > config_.maximum_retry_attempts)
        return give_up("RetryAttemptsExhausted");
    spdlog::info("event source: mapping={} function={} batch of {} records failed (attempt {}); retrying",
                 config_.name, config_.function, b.records(), b.attempts);
    // send() gives the batch up instead once its records are too old.
    after(backoff(timing_.retry_backoff_first, timing_.retry_backoff_max, b.attempts), &MappingRunner::send);
}

void MappingRunner::give_up(const std::string& condition) {
    Batch& b = *batch_;
    FailedBatch f;
    f.condition = condition;
    f.attempts = b.attempts;
    f.errors = b.errors;
    f.last_result = b.last_result;
    std::vector<const json*> records;
    for (const auto& item : b.items) {
        if (!item.record) continue;
        if (records.empty()) {
            f.first_sequence_number = sequence_number(item.change);
            f.first_commit_lsn = item.change.position.commit_lsn;
            f.first_commit_time = item.change.commit_time;
        }
        f.last_sequence_number = sequence_number(item.change);
        f.last_commit_lsn = item.change.position.commit_lsn;
        f.last_commit_time = item.change.commit_time;
        records.push_back(&item.json);
    }
    f.batch_size = records.size();
    f.payload = stream_event(records);
    spdlog::warn("event source: mapping={} function={} gave up on {} records ({} to {}): {} after {} attempts",
                 config_.name, config_.function, f.batch_size, f.first_sequence_number, f.last_sequence_number,
                 condition, f.attempts);
    delivery_.fail_batch(config_, std::move(f), [self = shared_from_this(), condition](bool ok) {
        if (self->stopped_) return;
        if (!ok) {
            self->after(self->timing_.storage_retry, [self, condition] { self->give_up(condition); });
            return;
        }
        ++self->counters_.batches_failed;
        self->delivered(self->batch_->items.size(), false);
    });
}

void MappingRunner::delivered(std::size_t n, bool succeeded) {
    const Batch& b = *batch_;
    const ChangePosition position = b.items[n - 1].change.position;
    std::optional<std::uint64_t> complete;
    for (std::size_t i = 0; i < n; ++i)
        if (b.items[i].change.last_in_transaction) complete = b.items[i].change.position.commit_lsn;
    delivery_.save_checkpoint(config_, position, [self = shared_from_this(), n, succeeded, position,
                                                  complete](bool ok) {
        if (self->stopped_) return;
        if (!ok) {
            self->after(self->timing_.storage_retry, [self, n, succeeded] { self->delivered(n, succeeded); });
            return;
        }
        self->checkpoint_ = position;
        if (complete && (!self->acknowledged_ || *complete > *self->acknowledged_)) {
            self->acknowledged_ = complete;
            self->source_->acknowledge(*complete);
        }
        Batch& batch = *self->batch_;
        std::size_t records = 0;
        for (std::size_t i = 0; i < n; ++i) records += batch.items[i].record ? 1 : 0;
        if (succeeded) self->counters_.records_delivered += records;
        batch.items.erase(batch.items.begin(), batch.items.begin() + static_cast<std::ptrdiff_t>(n));
        if (!batch.items.empty()) return self->retry_or_give_up();  // the rest of a partly failed batch
        if (succeeded) {
            ++self->counters_.batches_succeeded;
            self->counters_.last_processing_result = records > 0 ? "OK" : "No records processed";
        }
        self->batch_.reset();
        self->read_more();
        self->maybe_deliver();
    });
}

void MappingRunner::after(std::chrono::milliseconds delay, void (MappingRunner::*step)()) {
    after(delay, [self = shared_from_this(), step] { ((*self).*step)(); });
}

void MappingRunner::after(std::chrono::milliseconds delay, std::function<void()> step) {
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait([self = shared_from_this(), step = std::move(step)](const boost::system::error_code& ec) {
        if (!ec && !self->stopped_) step();
    });
}

std::chrono::milliseconds MappingRunner::backoff(std::chrono::milliseconds first, std::chrono::milliseconds max,
                                                 int n) const {
    const int doublings = std::clamp(n - 1, 0, 20);
    return std::min(first * (std::int64_t{1} << doublings), max);
}

MappingRunnerStatus MappingRunner::status() const {
    MappingRunnerStatus s = counters_;
    s.checkpoint = checkpoint_;
    s.acknowledged = acknowledged_;
    s.source = source_->status();
    if (!s.source.connected && !s.source.last_error.empty()) s.last_error = s.source.last_error;
    s.failing = (!s.source.connected && !s.source.last_error.empty()) ||
                (batch_ && (batch_->attempts > 0 || !batch_->errors.empty()));
    if (s.source.server_wal_end) {
        // Behind what the server was told it may forget; that is past the last delivered
        // commit once the stream is idle (the server's WAL of other tables), so an idle
        // mapping shows no lag.
        const std::uint64_t base = std::max(acknowledged_ ? *acknowledged_ : checkpoint_ ? checkpoint_->commit_lsn : 0,
                                            s.source.confirmed.value_or(0));
        s.lag_bytes = *s.source.server_wal_end > base ? *s.source.server_wal_end - base : 0;
    }
    const RowChange* oldest = nullptr;
    if (batch_ && !batch_->items.empty()) oldest = &batch_->items.front().change;
    else if (!splits_.empty() && !splits_.front().items.empty()) oldest = &splits_.front().items.front().change;
    else if (!buffer_.empty()) oldest = &buffer_.front().change;
    if (oldest)
        s.seconds_behind =
            std::max(0.0, std::chrono::duration<double>(std::chrono::system_clock::now() - oldest->commit_time).count());
    return s;
}

}  // namespace funcd
