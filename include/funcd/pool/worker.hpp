#pragma once
// One worker: a launched runtime process and the state of its Runtime API conversation.
//
//   starting --first /next--> idle <--response/error-- busy
//       |                      |  \--assign--> busy --/next--> (event delivered)
//       +-- exit, init error, init timeout, invocation timeout, kill --> dead
//
// An invocation can be assigned before the runtime asks for it (cold start, or right
// after it answered the previous one); it is handed over at the runtime's next /next.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "funcd/dispatch/invocation.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/logs/platform_records.hpp"
#include "funcd/logs/telemetry_frames.hpp"
#include "funcd/runtime_api/runtime_api_endpoint.hpp"
#include "funcd/sandbox/launcher.hpp"

namespace funcd {

class Worker;

// The pool a worker reports to.
class WorkerOwner {
public:
    virtual ~WorkerOwner() = default;
    // Ready for an invocation: initialised with nothing assigned, or done with the last one.
    virtual void worker_available(Worker& w) = 0;
    // The process is gone and reaped; the worker must be dropped.
    virtual void worker_exited(Worker& w) = 0;
    // An invocation assigned to a worker that exited before it asked for it (after its
    // previous answer): it never reached the function, so it runs on another worker.
    virtual void run_elsewhere(InvocationPtr inv) = 0;
};

struct WorkerSettings {
    std::chrono::milliseconds init_timeout{10'000};
    std::string function_arn;
    // Said when the worker is launched (Lambda's INIT_START); empty: nothing is said.
    std::string runtime_version;
    std::string runtime_version_arn;
    // Started ahead of demand (provisioned concurrency): kept whatever the keep-alive.
    bool provisioned = false;
    // The first invocation reports the init duration; not when the worker was started
    // before that invocation arrived (provisioned or pre-warmed).
    bool report_init = true;
    // What the worker's runtime may hold of the daemon through its Runtime API.
    RuntimeApiLimits runtime_api;
};

class Worker final : public RuntimeApiHandler, public std::enable_shared_from_this<Worker> {
public:
    enum class State { starting, idle, busy, dead };
    using Clock = std::chrono::steady_clock;

    // Launches the process. Throws std::system_error when it cannot be started.
    static std::shared_ptr<Worker> launch(boost::asio::io_context& io, WorkerOwner& owner, FunctionPtr fn,
                                          std::shared_ptr<FunctionLog> log, SandboxLauncher& launcher,
                                          const WorkerSpec& spec, const WorkerSettings& settings);
    // A worker whose process is being launched elsewhere (a launcher thread): it takes
    // invocations at once and runs them when start() or launch_failed() is called (the
    // launcher's own timeouts bound how long that takes). The init timeout runs from
    // `launch_began` (default: now).
    static std::shared_ptr<Worker> create(boost::asio::io_context& io, WorkerOwner& owner, FunctionPtr fn,
                                          std::shared_ptr<FunctionLog> log, const WorkerSettings& settings);
    void start(LaunchedWorker launched, std::optional<Clock::time_point> launch_began = {});
    void launch_failed(const std::string& why);
    ~Worker() override;

    // Hands an invocation to this worker (state starting or idle, nothing assigned).
    void assign(InvocationPtr inv);
    // Ends the worker now; an invocation in flight completes as an exit error.
    void kill();
    // Hands over what the dead worker held (cgroup, uid): dropping it may wait for the
    // last processes to go, which the caller does off the event loop.
    std::unique_ptr<WorkerResources> release_resources() { return std::move(resources_); }
    // The worker goes away after its current invocation instead of becoming idle.
    void retire();

    State state() const { return state_; }
    bool has_invocation() const { return current_ != nullptr; }
    // Killed, retiring or dead: it will take no more invocations.
    bool ending() const { return killed_ || retiring_ || state_ == State::dead; }
    // Has asked for its first event (init done) and is not ending.
    bool ready() const { return initialised_at_.has_value() && !ending(); }
    bool provisioned() const { return settings_.provisioned; }
    // Provisioned concurrency lowered: the worker becomes an on-demand one.
    void clear_provisioned() { settings_.provisioned = false; }
    pid_t pid() const { return pid_; }
    Clock::time_point last_used() const { return last_used_; }
    // The worker's peak memory use (its cgroup's) in bytes at the last reading: one after
    // every invocation (the figure REPORT shows) and one when its init ended with no
    // invocation waiting. nullopt before the first, or where it cannot be read.
    std::optional<std::uint64_t> memory_peak() const { return memory_peak_; }
    const FunctionPtr& function() const { return fn_; }

    // RuntimeApiHandler
    void on_next(std::shared_ptr<NextWaiter> waiter) override;
    RuntimeReply on_response(std::string_view request_id, std::string body, std::string_view content_type) override;
    RuntimeReply on_error(std::string_view request_id, std::string_view error_type, std::string body) override;
    RuntimeReply on_init_error(std::string_view error_type, std::string body) override;
    std::shared_ptr<ResponseStream> on_response_stream(std::string_view request_id,
                                                       std::string_view content_type) override;
    RuntimeReply on_stream_end(std::string_view request_id, std::string_view error_type,
                               std::string error_body) override;
    void on_stream_broken(std::string_view request_id) override;

private:
    Worker(boost::asio::io_context& io, WorkerOwner& owner, FunctionPtr fn, std::shared_ptr<FunctionLog> log,
           const WorkerSettings& settings);

    void deliver();
    void complete(Outcome outcome, std::string body, std::string error_type, std::string content_type = {});
    // The caller of the invocation streaming now went away.
    void on_stream_cancelled(const std::string& request_id);
    void on_timer();
    void arm_timer(std::chrono::steady_clock::duration after);
    void on_process_exit();
    // Output is read in slices of at most kOutputSlice bytes per turn of the loop, so a
    // worker printing without pause never holds it; see worker.cpp. Two pipes are read so:
    // stdout+stderr (lines) and the runtime's telemetry descriptor (framed records).
    struct OutputPipe {
        explicit OutputPipe(boost::asio::io_context& io) : fd(io) {}
        boost::asio::posix::stream_descriptor fd;
        bool wait_armed = false;
        bool pump_posted = false;
    };
    enum class OutputRead { more, drained, closed };
    OutputRead read_slice(OutputPipe& pipe, std::size_t max_bytes);
    // Reads one slice and arranges for the next (a wait when drained, a post when not).
    void pump_output(OutputPipe& pipe);
    void continue_reading(OutputPipe& pipe, OutputRead last);
    // Both pipes read again (an invocation was assigned to an idle worker holding them).
    void resume_output();
    // Idle, nothing assigned, and over the budget between invocations: output is left in
    // the pipe (its writers block) until the next invocation is assigned.
    bool output_held() const;
    // Reads what is already in the pipe, at most one pipe's capacity: all that the runtime
    // printed before it answered, so it is tagged with its invocation.
    void drain_output();
    void consume_output(const char* data, std::size_t n);
    void consume_telemetry(const char* data, std::size_t n);
    void log_line(std::string_view request_id, std::string_view line);
    void log_frame(std::string_view request_id, const TelemetryFrame& frame);
    // The invocation's figures for END and REPORT.
    InvocationFigures figures(const Invocation& inv, const InvocationResult& r, std::uint64_t max_memory_mb) const;
    // Ends a stretch of output (an invocation or the time between two): its LOGS_DROPPED
    // line if it went over its budget (returned, for the log tail), and a fresh budget.
    std::string end_output_stretch(std::string_view request_id, std::uint64_t next_budget);
    std::string current_request_id() const;
    // Keeps a log line of an invocation whose caller asked for its log (LogType Tail); a
    // record's line breaks as '\r', as in the log.
    static void capture(Invocation& inv, std::string_view line);
    std::optional<RuntimeReply> check_request_id(std::string_view request_id) const;

    boost::asio::io_context& io_;
    WorkerOwner& owner_;
    FunctionPtr fn_;
    std::shared_ptr<FunctionLog> log_;
    WorkerSettings settings_;

    pid_t pid_ = -1;
    std::unique_ptr<WorkerResources> resources_;
    std::unique_ptr<RuntimeApiEndpoint> endpoint_;
    boost::asio::posix::stream_descriptor exit_watch_;
    UniqueFd exit_status_;  // the sandbox init's report of the runtime's wait status, if any
    OutputPipe output_;
    OutputPipe telemetry_;
    std::vector<char> read_buffer_;
    std::string partial_line_;
    TelemetryFrameParser telemetry_parser_;
    std::uint64_t telemetry_dropped_counted_ = 0;  // of the parser's dropped bytes
    OutputBudget output_budget_;
    PlatformRecords platform_;
    boost::asio::steady_timer timer_;
    boost::asio::steady_timer exit_retry_;  // waiting for an exited process to become reapable

    State state_ = State::starting;
    bool retiring_ = false;
    bool killed_ = false;
    InvocationPtr current_;
    bool delivered_ = false;
    std::shared_ptr<ResponseStream> stream_;  // the current invocation's streamed response, once begun
    std::shared_ptr<NextWaiter> waiter_;
    std::optional<std::pair<std::string, std::string>> posted_init_error_;  // type, body

    // Reads the peak from the worker's resources into memory_peak_; returns it.
    std::optional<std::uint64_t> read_memory_peak();

    std::optional<std::uint64_t> memory_peak_;
    Clock::time_point launched_at_;
    std::optional<Clock::time_point> initialised_at_;
    bool report_init_;  // the next invocation reports the init duration
    Clock::time_point delivered_at_;
    SystemTime delivered_wall_;
    Clock::time_point last_used_;
};

}  // namespace funcd
