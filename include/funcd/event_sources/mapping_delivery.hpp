#pragma once
// What a mapping's runner needs of the rest of the daemon: invoking its function
// synchronously (through the dispatcher, as every other trigger: admitted under the
// concurrency limits, metered, logged, traced), keeping a batch that failed for good (a
// dead letter, and the on-failure function's event), and saving its checkpoint. The seam
// the runner's tests replace. Every `done` is called later, on the loop.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/dispatch/invocation.hpp"
#include "funcd/event_sources/mapping_config.hpp"

namespace funcd {

// A batch given up on: what its dead letter and its on-failure record say.
struct FailedBatch {
    // Lambda's conditions: RetryAttemptsExhausted, RecordAgeExceeded; and funcd's own
    // RecordTooLarge (one record's event is over the batch byte limit, so it cannot be sent).
    std::string condition;
    std::string payload;  // the batch's event, as the function got it (or would have)
    int attempts = 0;     // invocations that ran and failed
    nlohmann::json errors = nlohmann::json::array();  // one entry per failed attempt
    std::size_t batch_size = 0;
    std::string first_sequence_number;
    std::string last_sequence_number;
    std::uint64_t first_commit_lsn = 0;
    std::uint64_t last_commit_lsn = 0;
    SystemTime first_commit_time;  // approximateArrivalOfFirstRecord
    SystemTime last_commit_time;
    std::optional<InvocationResult> last_result;  // the last attempt's answer, if one ran
};

class MappingDelivery {
public:
    virtual ~MappingDelivery() = default;

    // Runs `c.function` with `payload`. A refusal before it ran (a throttle, the daemon
    // shutting down, the function gone) comes back as a result with `throttled` set.
    virtual void invoke(const MappingConfig& c, std::string payload, std::function<void(InvocationResult)> done) = 0;
    // Commits the batch's dead letter and, when `c.on_failure` is set, its on-failure event.
    // `done(false)`: nothing was committed (the runner tries again).
    virtual void fail_batch(const MappingConfig& c, FailedBatch failure, std::function<void(bool)> done) = 0;
    // `done(false)`: not saved (the runner tries again; the source is not acknowledged).
    virtual void save_checkpoint(const MappingConfig& c, ChangePosition position, std::function<void(bool)> done) = 0;
};

}  // namespace funcd
