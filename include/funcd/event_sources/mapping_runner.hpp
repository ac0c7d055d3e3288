#pragma once
// Delivers one mapping's changes to its function, in order, at least once, with Lambda's
// stream mapping rules (DynamoDB Streams, Kinesis):
//  - a batch is up to batch_size records and at most the batch byte limit, gathered for
//    up to maximum_batching_window_s after its first record (0: whatever is there);
//    changes the mapping's `events` do not want are skipped but still checkpointed;
//  - one batch in flight; the next waits for the outcome of the one before;
//  - success: the checkpoint (the batch's last change) is saved, then the source is
//    acknowledged up to the last whole transaction delivered;
//  - a function error or timeout: the batch is retried with backoff until
//    maximum_retry_attempts or maximum_record_age_s; with bisect_batch_on_function_error
//    it is split in halves first (a split is not a retry);
//  - with ReportBatchItemFailures the function names the records that failed: what comes
//    before the first of them is checkpointed, and the batch resumes from it;
//  - a batch given up on becomes a dead letter (and the on-failure function's event), and
//    the mapping moves past it;
//  - a throttle is no failure: the runner waits and tries again, dropping nothing.
// Reading is ahead of delivery by at most one batch: the source reads no further, so a
// slow function holds the database back rather than the daemon's memory.
// Runs on the loop.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "funcd/event_sources/change_source.hpp"
#include "funcd/event_sources/event_source_limits.hpp"
#include "funcd/event_sources/mapping_config.hpp"
#include "funcd/event_sources/mapping_delivery.hpp"
#include "funcd/event_sources/stream_event.hpp"

namespace funcd {

// Lambda retries a failed stream batch at once; a short, growing pause keeps a function
// that fails on every record from spinning, and leaves room for a fix to be deployed.
inline constexpr std::chrono::milliseconds kRetryBackoffFirst{500};
inline constexpr std::chrono::milliseconds kRetryBackoffMax{30'000};
// The dispatcher already held a throttled invocation for its queue wait, so capacity is
// short now; try again soon, backing off while it stays short.
inline constexpr std::chrono::milliseconds kThrottleBackoffFirst{200};
inline constexpr std::chrono::milliseconds kThrottleBackoffMax{10'000};
// A checkpoint or dead letter that could not be committed (a locked or full disk).
inline constexpr std::chrono::milliseconds kStorageRetry{1'000};

struct DeliveryTiming {
    std::chrono::milliseconds retry_backoff_first = kRetryBackoffFirst;
    std::chrono::milliseconds retry_backoff_max = kRetryBackoffMax;
    std::chrono::milliseconds throttle_backoff_first = kThrottleBackoffFirst;
    std::chrono::milliseconds throttle_backoff_max = kThrottleBackoffMax;
    std::chrono::milliseconds storage_retry = kStorageRetry;
};

// What the function's response says of a batch, with ReportBatchItemFailures.
class ItemFailures {
public:
    enum class Kind { none, from, malformed };
    static ItemFailures none() { return {Kind::none, 0, {}}; }
    // The first failed record is the batch's record number `index`.
    static ItemFailures from(std::size_t index) { return {Kind::from, index, {}}; }
    static ItemFailures malformed(std::string why) { return {Kind::malformed, 0, std::move(why)}; }

    Kind kind() const { return kind_; }
    std::size_t index() const { return index_; }
    const std::string& why() const { return why_; }

private:
    ItemFailures(Kind k, std::size_t i, std::string why) : kind_(k), index_(i), why_(std::move(why)) {}
    Kind kind_;
    std::size_t index_;
    std::string why_;
};

// Lambda's rules: an empty or null response, or an empty or null batchItemFailures, is
// success; an identifier that is missing, empty, not a string or not one of the batch's
// SequenceNumbers fails the whole batch, as does a response that is not JSON.
ItemFailures parse_item_failures(std::string_view response, const std::vector<std::string>& sequence_numbers);

struct MappingRunnerStatus {
    bool failing = false;  // the source is down, or the batch in flight has failed
    std::string last_error;
    std::string last_processing_result;  // Lambda's LastProcessingResult
    std::optional<ChangePosition> checkpoint;
    std::optional<std::uint64_t> acknowledged;
    std::optional<std::uint64_t> lag_bytes;  // server's WAL end - acknowledged (or checkpoint, or confirmed)
    double seconds_behind = 0;               // age of the oldest change read and not yet delivered
    std::uint64_t records_delivered = 0;
    std::uint64_t batches_succeeded = 0;
    std::uint64_t batches_failed = 0;  // given up on (dead letters)
    std::uint64_t invocation_errors = 0;
    std::uint64_t throttles = 0;
    ChangeSourceStatus source;
};

class MappingRunner : public std::enable_shared_from_this<MappingRunner> {
public:
    MappingRunner(boost::asio::io_context& io, MappingConfig config, std::unique_ptr<ChangeSource> source,
                  MappingDelivery& delivery, StreamEventContext context, EventSourceLimits limits,
                  DeliveryTiming timing, std::optional<ChangePosition> checkpoint);

    // Starts the source after the checkpoint and delivers from then on.
    void start();
    // Stops reading and delivering; an invocation in flight completes unobserved (its
    // batch is delivered again after the checkpoint when the mapping runs again).
    void stop();

    const MappingConfig& config() const { return config_; }
    MappingRunnerStatus status() const;

private:
    using Clock = std::chrono::steady_clock;

    struct Item {
        RowChange change;
        bool record = false;  // the mapping's `events` want it (else it is only checkpointed)
        nlohmann::json json;  // its Record, when it is one
        std::size_t bytes = 0;
    };
    struct Batch {
        std::vector<Item> items;
        int attempts = 0;  // invocations that ran and failed
        int throttles = 0;
        nlohmann::json errors = nlohmann::json::array();
        std::optional<InvocationResult> last_result;
        std::size_t records() const;
    };

    void read_more();
    void on_read(std::error_code ec, std::vector<RowChange> changes);
    void maybe_deliver();
    Batch take_batch();
    void send();
    void on_result(InvocationResult r);
    void failed_attempt(const std::string& error_type, const std::string& message);
    void retry_or_give_up();
    void give_up(const std::string& condition);
    // The first `n` items of the batch were delivered (or given up on): checkpoint them.
    void delivered(std::size_t n, bool succeeded);
    // Runs `step` after `delay` on the batch's timer (one batch in flight: one pending step).
    void after(std::chrono::milliseconds delay, void (MappingRunner::*step)());
    void after(std::chrono::milliseconds delay, std::function<void()> step);
    std::chrono::milliseconds backoff(std::chrono::milliseconds first, std::chrono::milliseconds max, int n) const;
    bool too_old(const Batch& b) const;

    boost::asio::io_context& io_;
    MappingConfig config_;
    std::unique_ptr<ChangeSource> source_;
    MappingDelivery& delivery_;
    StreamEventContext context_;
    EventSourceLimits limits_;
    DeliveryTiming timing_;

    std::deque<Item> buffer_;  // read, not yet in a batch
    std::size_t buffered_records_ = 0;
    std::size_t buffered_bytes_ = 0;
    std::optional<Clock::time_point> window_start_;
    std::deque<Batch> splits_;  // halves of bisected batches still to deliver, in order
    std::optional<Batch> batch_;  // in flight (being invoked, waiting to retry, or committing)
    bool reading_ = false;
    bool stopped_ = true;
    boost::asio::steady_timer window_timer_;
    bool window_armed_ = false;
    boost::asio::steady_timer retry_timer_;
    boost::asio::steady_timer read_timer_;  // reading again after a failed read

    std::optional<ChangePosition> checkpoint_;
    std::optional<std::uint64_t> acknowledged_;
    MappingRunnerStatus counters_;
};

}  // namespace funcd
