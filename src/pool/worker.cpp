#include "funcd/pool/worker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "funcd/common/ids.hpp"
#include "funcd/common/trace_id.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace funcd {
namespace {

// Bytes read from a worker's output per read: one page-cache-friendly chunk.
constexpr std::size_t kOutputChunk = 64 * 1024;
// Bytes of one worker's output read per turn of the loop: a default pipe's capacity. A
// worker that prints without pause costs the loop one slice per turn and then waits its
// turn again behind every other handler ready to run; the pipe meanwhile fills and its
// writers block, so nothing of it is buffered in the daemon beyond one slice and the log's
// own buffer.
constexpr std::size_t kOutputSlice = 64 * 1024;
// How soon to look again when an exited worker is not yet reapable: its namespace's last
// processes take about a scheduler tick to go.
constexpr auto kExitRetry = std::chrono::milliseconds(1);
// A line longer than this is cut and logged in pieces; CloudWatch's event limit is 256 KiB.
constexpr std::size_t kMaxLogLine = 256 * 1024;

std::int64_t micros(std::chrono::steady_clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// How the runtime ended: exited with a code, or killed by a signal.
struct ExitStatus {
    bool exited = true;
    int code = 0;  // the exit code or the signal number
};

std::string describe(const ExitStatus& e) {
    if (e.exited) return fmt::format("exit status {}", e.code);
    const char* name = sigabbrev_np(e.code);
    return fmt::format("signal: {}", name ? name : std::to_string(e.code).c_str());
}

}  // namespace

std::shared_ptr<Worker> Worker::launch(boost::asio::io_context& io, WorkerOwner& owner, FunctionPtr fn,
                                       std::shared_ptr<FunctionLog> log, SandboxLauncher& launcher,
                                       const WorkerSpec& spec, const WorkerSettings& settings) {
    auto w = create(io, owner, std::move(fn), std::move(log), settings);
    w->start(launcher.launch(spec));
    return w;
}

std::shared_ptr<Worker> Worker::create(boost::asio::io_context& io, WorkerOwner& owner, FunctionPtr fn,
                                       std::shared_ptr<FunctionLog> log, const WorkerSettings& settings) {
    std::shared_ptr<Worker> w(new Worker(io, owner, std::move(fn), std::move(log), settings));
    w->launched_at_ = Clock::now();
    w->last_used_ = w->launched_at_;
    return w;
}

void Worker::launch_failed(const std::string& why) {
    if (state_ == State::dead) return;
    spdlog::error("worker: cannot start a worker for function={} version={}: {}", fn_->config.name, fn_->version,
                  why);
    platform_.init_failed(*log_, "INIT_ERROR could not start the runtime: " + why, "error", "Runtime.InitError",
                          micros(Clock::now() - launched_at_));
    killed_ = true;
    timer_.cancel();
    if (current_)
        complete(Outcome::init_error,
                 error_document("Runtime.InitError", "could not start the function's runtime: " + why),
                 "Runtime.InitError");
    state_ = State::dead;
    owner_.worker_exited(*this);
}

Worker::Worker(boost::asio::io_context& io, WorkerOwner& owner, FunctionPtr fn, std::shared_ptr<FunctionLog> log,
               const WorkerSettings& settings)
    : io_(io),
      owner_(owner),
      fn_(std::move(fn)),
      log_(std::move(log)),
      settings_(settings),
      exit_watch_(io),
      output_(io),
      telemetry_(io),
      telemetry_parser_(static_cast<std::size_t>(log_->limits().telemetry_record_bytes)),
      output_budget_(log_->limits().idle_bytes),
      platform_(PlatformLogFormat{fn_->config.logging.format, fn_->config.logging.system_level}),
      timer_(io),
      exit_retry_(io),
      report_init_(settings.report_init) {}

Worker::~Worker() {
    if (state_ != State::dead && resources_) resources_->signal_kill();
}

void Worker::start(LaunchedWorker launched, std::optional<Clock::time_point> launch_began) {
    // The init timeout and the init duration count from the launch itself, not from the
    // time the launch waited for a launcher thread (a burst queues many).
    launched_at_ = launch_began.value_or(Clock::now());
    last_used_ = launched_at_;
    pid_ = launched.pid;
    resources_ = std::move(launched.resources);
    endpoint_ = std::make_unique<RuntimeApiEndpoint>(
        io_, settings_.runtime_api, std::move(launched.runtime_api_listener),
        std::weak_ptr<RuntimeApiHandler>(shared_from_this()), std::move(launched.runtime_api_connection),
        launched.runtime_api_peer_uid);
    exit_status_ = std::move(launched.exit_status);
    exit_watch_.assign(launched.pidfd.release());
    output_.fd.assign(launched.output.release());
    ::fcntl(output_.fd.native_handle(), F_SETFL, ::fcntl(output_.fd.native_handle(), F_GETFL) | O_NONBLOCK);
    if (launched.telemetry) {
        telemetry_.fd.assign(launched.telemetry.release());
        ::fcntl(telemetry_.fd.native_handle(), F_SETFL, ::fcntl(telemetry_.fd.native_handle(), F_GETFL) | O_NONBLOCK);
    }
    read_buffer_.resize(kOutputChunk);

    exit_watch_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               if (!ec) self->on_process_exit();
                           });
    pump_output(output_);
    pump_output(telemetry_);
    // Ended (killed) while its process was being launched.
    if (killed_ || state_ == State::dead) resources_->signal_kill();
    else arm_timer(settings_.init_timeout);
    if (!settings_.runtime_version.empty())
        platform_.init_start(*log_, {fn_->config.name, fn_->label(), settings_.runtime_version,
                                     settings_.runtime_version_arn, settings_.provisioned});
    spdlog::debug("worker: launched function={} version={} pid={}", fn_->config.name, fn_->label(), pid_);
}

void Worker::assign(InvocationPtr inv) {
    current_ = std::move(inv);
    delivered_ = false;
    // Output held while idle flows again: the runtime may itself be blocked on the full
    // pipe before it asks for this event. (A wait still armed means nothing is held.)
    resume_output();
    if (state_ == State::idle) {
        state_ = State::busy;
        if (waiter_) {
            deliver();
        } else {
            // The runtime has not asked for work again since its last answer. Should it
            // never ask, the invocation must still end within its timeout.
            arm_timer(std::chrono::seconds(fn_->config.timeout_s));
        }
    }
    // While starting, the event waits for the runtime's first /next (under the init timer).
}

void Worker::arm_timer(std::chrono::steady_clock::duration after) {
    timer_.expires_after(after);
    timer_.async_wait([self = weak_from_this()](const boost::system::error_code& ec) {
        if (auto w = self.lock(); w && !ec) w->on_timer();
    });
}

void Worker::deliver() {
    auto waiter = std::move(waiter_);
    const auto now_wall = std::chrono::system_clock::now();
    const auto deadline = now_wall + std::chrono::seconds(fn_->config.timeout_s);
    EventDelivery event{
        current_->request_id,
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline.time_since_epoch()).count(),
        current_->invoked_arn.empty() ? std::string_view(settings_.function_arn)
                                      : std::string_view(current_->invoked_arn),
        current_->trace_id,
        current_->payload,
        current_->client_context,
    };
    if (!waiter->deliver(event)) {
        // The runtime hung up while waiting; hand the event over at its next /next.
        spdlog::debug("worker: pid={} next connection closed before delivery", pid_);
        arm_timer(std::chrono::seconds(fn_->config.timeout_s));
        return;
    }
    delivered_ = true;
    state_ = State::busy;
    delivered_at_ = Clock::now();
    delivered_wall_ = now_wall;
    end_output_stretch({}, log_->limits().invocation_bytes);
    std::string start_line;
    platform_.start(log_.get(), current_->capture_log ? &start_line : nullptr, current_->request_id, fn_->label(),
                    current_->trace_id);
    if (!start_line.empty()) capture(*current_, start_line);
    arm_timer(std::chrono::seconds(fn_->config.timeout_s));
}

void Worker::on_next(std::shared_ptr<NextWaiter> waiter) {
    if (state_ == State::dead || killed_) return;  // the waiter is dropped; the connection closes with the worker
    if (!initialised_at_) {
        initialised_at_ = Clock::now();
        timer_.cancel();
    }
    if (current_ && delivered_) {
        // Asking for more work without answering: Lambda fails the invocation.
        complete(Outcome::function_error,
                 error_document("Runtime.InvalidResponse", "the runtime asked for the next event without "
                                                           "posting a response or error for the current one"),
                 "Runtime.InvalidResponse");
        if (state_ == State::dead || killed_) return;
    }
    waiter_ = std::move(waiter);
    if (current_ && !delivered_) {
        state_ = State::busy;
        deliver();
    } else if (state_ == State::starting) {
        state_ = State::idle;
        // Started ahead of demand (provisioned, pre-warmed): what its init took is what
        // the pool charges it until its first invocation.
        read_memory_peak();
        owner_.worker_available(*this);
    }
}

std::optional<std::uint64_t> Worker::read_memory_peak() {
    if (!resources_) return memory_peak_;
    if (auto peak = resources_->peak_memory_bytes()) memory_peak_ = peak;
    return memory_peak_;
}

std::optional<RuntimeReply> Worker::check_request_id(std::string_view request_id) const {
    if (!current_ || !delivered_)
        return RuntimeReply{403, error_document("InvalidStateTransition",
                                                "no invocation is in progress on this runtime")};
    if (request_id != current_->request_id)
        return RuntimeReply{400, error_document("InvalidRequestID", fmt::format("request id {} is not the "
                                                                                "invocation in progress",
                                                                                request_id))};
    return std::nullopt;
}

RuntimeReply Worker::on_response(std::string_view request_id, std::string body, std::string_view content_type) {
    if (auto bad = check_request_id(request_id)) return *bad;
    if (stream_) return {403, error_document("InvalidStateTransition", "the response is already being streamed")};
    complete(Outcome::success, std::move(body), {}, std::string(content_type));
    return {202, R"({"status":"OK"})"};
}

std::shared_ptr<ResponseStream> Worker::on_response_stream(std::string_view request_id,
                                                           std::string_view content_type) {
    // Not for the invocation in progress: buffered, and refused once it is in.
    if (check_request_id(request_id) || stream_ || !current_->on_stream) return nullptr;
    stream_ = std::make_shared<ResponseStream>(settings_.runtime_api.stream_buffer_bytes, std::string(content_type));
    stream_->on_cancel([weak = weak_from_this(), &io = io_, id = current_->request_id] {
        // Not from inside the caller's connection as it closes: on the next turn.
        boost::asio::post(io, [weak, id] {
            if (auto w = weak.lock()) w->on_stream_cancelled(id);
        });
    });
    auto stream = stream_;
    try {
        current_->on_stream(*current_, stream);
    } catch (const std::exception& e) {
        spdlog::error("worker: the caller of request_id={} failed to take its stream: {}", current_->request_id,
                      e.what());
        stream->cancel();
    }
    return stream;
}

RuntimeReply Worker::on_stream_end(std::string_view request_id, std::string_view error_type, std::string error_body) {
    if (auto bad = check_request_id(request_id)) return *bad;
    if (!error_type.empty()) return on_error(request_id, error_type, std::move(error_body));
    complete(Outcome::success, {}, {}, stream_ ? stream_->content_type() : std::string());
    return {202, R"({"status":"OK"})"};
}

void Worker::on_stream_broken(std::string_view request_id) {
    if (!current_ || !delivered_ || !stream_ || request_id != current_->request_id) return;
    complete(Outcome::function_error,
             error_document("Runtime.StreamInterrupted",
                            "the runtime's connection ended before its streamed response did"),
             "Runtime.StreamInterrupted");
}

void Worker::on_stream_cancelled(const std::string& request_id) {
    if (!current_ || !stream_ || request_id != current_->request_id || state_ == State::dead) return;
    platform_.notice(*log_,
                     fmt::format("CLIENT_DISCONNECTED RequestId: {} the caller of the streamed response went away",
                                 request_id),
                     request_id);
    // As a timeout: the function is stopped, the invocation billed up to now, the worker replaced.
    kill();
    complete(Outcome::function_error,
             error_document("Sandbox.ClientDisconnected", "the caller went away while the response was streaming"),
             "Sandbox.ClientDisconnected");
}

RuntimeReply Worker::on_error(std::string_view request_id, std::string_view error_type, std::string body) {
    if (auto bad = check_request_id(request_id)) return *bad;
    // Keep the runtime's document when it is one; otherwise wrap what it sent.
    std::string type(error_type);
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_object()) {
        if (auto it = doc.find("errorType"); it != doc.end() && it->is_string()) type = it->get<std::string>();
    } else {
        body = error_document(type.empty() ? "Unhandled" : type, body);
    }
    if (type.empty()) type = "Unhandled";
    complete(Outcome::function_error, std::move(body), std::move(type));
    return {202, R"({"status":"OK"})"};
}

RuntimeReply Worker::on_init_error(std::string_view error_type, std::string body) {
    if (initialised_at_)
        return {403, error_document("InvalidStateTransition", "init error reported after initialisation")};
    auto doc = nlohmann::json::parse(body, nullptr, false);
    std::string type(error_type);
    if (doc.is_object()) {
        if (auto it = doc.find("errorType"); it != doc.end() && it->is_string()) type = it->get<std::string>();
    } else {
        body = error_document(type.empty() ? "Runtime.InitError" : type, body);
    }
    if (type.empty()) type = "Runtime.InitError";
    platform_.init_failed(*log_, fmt::format("INIT_ERROR {} {}", type, body), "error", type,
                          micros(Clock::now() - launched_at_),
                          current_ ? std::string_view(current_->request_id) : std::string_view());
    posted_init_error_.emplace(type, body);
    if (current_) complete(Outcome::init_error, std::move(body), std::move(type));
    kill();
    return {202, R"({"status":"OK"})"};
}

void Worker::on_timer() {
    if (state_ == State::dead || killed_) return;
    if (!initialised_at_) {
        auto message = fmt::format("the runtime did not ask for an event within {} ms of starting",
                                   settings_.init_timeout.count());
        platform_.init_failed(*log_, "INIT_TIMEOUT " + message, "timeout", "Runtime.InitError",
                              micros(Clock::now() - launched_at_),
                          current_ ? std::string_view(current_->request_id) : std::string_view());
        if (current_) complete(Outcome::init_error, error_document("Runtime.InitError", message), "Runtime.InitError");
        kill();
        return;
    }
    if (current_) {
        // Delivered and unanswered, or assigned and never asked for: either way the
        // caller's time is up.
        auto message = fmt::format("Task timed out after {}.00 seconds", fn_->config.timeout_s);
        // Kill first: nothing the function does after its deadline may be observed.
        kill();
        // Lambda logs it as the invocation's own line, before END and REPORT (with JSON,
        // the report's status says it).
        if (!fn_->config.logging.json()) log_->output(current_->request_id, message);
        complete(Outcome::timeout, error_document("Sandbox.Timedout", message), "Sandbox.Timedout");
    }
}

void Worker::kill() {
    if (killed_ || state_ == State::dead) return;
    killed_ = true;
    // Not launched yet: start() ends the process as soon as it exists.
    if (resources_) resources_->signal_kill();
}

void Worker::retire() {
    retiring_ = true;
    if (state_ == State::idle && !current_) kill();
}

void Worker::complete(Outcome outcome, std::string body, std::string error_type, std::string content_type) {
    // Before the invocation is let go, so what it printed is tagged with its request id.
    drain_output();
    InvocationPtr inv = std::move(current_);
    const bool delivered = delivered_;
    // Before END: the invocation's LOGS_DROPPED line is the last of its own lines.
    const std::string dropped_line =
        delivered ? end_output_stretch(inv->request_id, log_->limits().idle_bytes) : std::string();
    current_.reset();
    delivered_ = false;
    timer_.cancel();
    // A stream's caller learns how it ended before the invocation's `done`.
    if (auto stream = std::move(stream_)) {
        if (outcome == Outcome::success) stream->finish();
        else stream->fail(error_type, body);
    }

    const auto now = Clock::now();
    last_used_ = now;
    InvocationResult r;
    r.outcome = outcome;
    r.body = std::move(body);
    r.content_type = std::move(content_type);
    r.error_type = std::move(error_type);
    r.version = fn_->version;
    r.start = delivered ? delivered_wall_ : std::chrono::system_clock::now();
    r.duration_us = delivered ? micros(now - delivered_at_) : 0;
    if (report_init_) {
        report_init_ = false;
        r.init_duration_us = micros((initialised_at_ ? *initialised_at_ : now) - launched_at_);
    }
    r.max_memory_used_bytes = read_memory_peak().value_or(0);

    const bool keeps_running = (outcome == Outcome::success || outcome == Outcome::function_error) && !killed_;
    if (keeps_running) {
        state_ = State::idle;
    } else {
        kill();
    }

    // The caller is answered first; the platform lines only need the figures.
    // Views into what outlives the calls below: `r` is handed over to `done` before the log
    // is written, so the strings it holds are copied.
    const std::string label = fn_->label();
    const std::string error_type_text = r.error_type;
    InvocationFigures figs = figures(*inv, r, (r.max_memory_used_bytes + (1 << 20) - 1) >> 20);
    figs.version = label;
    figs.error_type = error_type_text;
    if (inv->capture_log) {
        if (delivered) {
            if (!dropped_line.empty()) capture(*inv, dropped_line);
            std::string line;
            platform_.end(nullptr, &line, figs);
            if (!line.empty()) capture(*inv, line);
            line.clear();
            platform_.report(nullptr, &line, figs);
            if (!line.empty()) capture(*inv, line);
        }
        r.log_tail = std::move(inv->captured_log);
        if (r.log_tail.size() > kMaxLogTailBytes) r.log_tail.erase(0, r.log_tail.size() - kMaxLogTailBytes);
    }
    auto done = std::move(inv->done);
    done(std::move(r));

    if (delivered) {
        platform_.end(log_.get(), nullptr, figs);
        platform_.report(log_.get(), nullptr, figs);
    }

    if (keeps_running) {
        if (retiring_) {
            kill();
        } else {
            owner_.worker_available(*this);
        }
    }
}

void Worker::on_process_exit() {
    siginfo_t info{};
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(exit_watch_.native_handle()), &info, WEXITED) != 0) {
        if (errno == EAGAIN) {
            // The pidfd reports the exit before the process can be reaped: the init of a
            // PID namespace first waits for the namespace's other processes to go. The
            // descriptor is non-blocking, so look again shortly rather than block the loop.
            exit_retry_.expires_after(kExitRetry);
            exit_retry_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
                if (!ec) self->on_process_exit();
            });
            return;
        }
        spdlog::error("worker: waitid pid={} failed: {} (errno {})", pid_, std::strerror(errno), errno);
    }
    ExitStatus status{info.si_code == CLD_EXITED, info.si_status};
    if (exit_status_) {
        // A sandbox init ran the runtime; its report is the runtime's own status.
        int wait_status = 0;
        if (::read(exit_status_.get(), &wait_status, sizeof wait_status) == sizeof wait_status)
            status = WIFEXITED(wait_status) ? ExitStatus{true, WEXITSTATUS(wait_status)}
                                            : ExitStatus{false, WTERMSIG(wait_status)};
        exit_status_.reset();
    }
    const std::string how = describe(status);
    if (!status.exited && status.code == SIGSYS) {
        // Blocked calls fail with EPERM; SIGSYS means the filter's kill action fired (a
        // syscall through a foreign ABI, e.g. int 0x80): an attempt worth an operator's eye.
        spdlog::warn("sandbox violation: function={} version={} pid={} killed by seccomp (SIGSYS)", fn_->config.name,
                     fn_->version, pid_);
        platform_.notice(*log_, "SANDBOX_VIOLATION the runtime was killed by seccomp (SIGSYS)");
    }
    spdlog::debug("worker: exited function={} pid={} {}", fn_->config.name, pid_, how);
    // The process is gone but what it forked may not be (same group); the rest is made sure
    // of when its resources are dropped, off the loop (WorkerPool::worker_exited).
    resources_->signal_kill();

    InvocationPtr undelivered;
    if (current_) {
        if (delivered_ && resources_->out_of_memory()) {
            platform_.notice(*log_,
                             fmt::format("OUT_OF_MEMORY RequestId: {} memory_mb={}", current_->request_id,
                                         fn_->config.memory_mb),
                             current_->request_id);
            complete(Outcome::exit_error,
                     nlohmann::json{{"errorType", "Runtime.OutOfMemory"},
                                    {"errorMessage", fmt::format("RequestId: {} Error: Runtime exited with error: {}: "
                                                                 "out of memory (memory_mb {})",
                                                                 current_->request_id, how, fn_->config.memory_mb)}}
                         .dump(),
                     "Runtime.OutOfMemory");
        } else if (delivered_) {
            complete(Outcome::exit_error,
                     nlohmann::json{{"errorType", "Runtime.ExitError"},
                                    {"errorMessage", fmt::format("RequestId: {} Error: Runtime exited with error: {}",
                                                                 current_->request_id, how)}}
                         .dump(),
                     "Runtime.ExitError");
        } else if (posted_init_error_) {
            auto [type, body] = *posted_init_error_;
            complete(Outcome::init_error, std::move(body), std::move(type));
        } else if (initialised_at_) {
            // It answered its last event and ended before asking for this one (the Node.js
            // runtime exits on purpose after reporting an uncaught exception): this event
            // never reached it and is no failure of the function.
            spdlog::debug("worker: pid={} exited between invocations; request {} goes to another worker", pid_,
                          current_->request_id);
            undelivered = std::move(current_);
        } else {
            // Exit status 126/127 before asking for work: the entry point could not run.
            const bool bad_entry = status.exited && (status.code == 126 || status.code == 127) && !initialised_at_;
            const char* type = bad_entry ? "Runtime.InvalidEntrypoint" : "Runtime.ExitError";
            complete(Outcome::init_error,
                     error_document(type, fmt::format("Runtime exited with error: {} before it was ready", how)),
                     type);
        }
    }
    state_ = State::dead;
    killed_ = true;
    timer_.cancel();
    drain_output();
    if (telemetry_parser_.mid_record())
        spdlog::debug("worker: pid={} ended in the middle of a telemetry record; its part is dropped", pid_);
    if (!partial_line_.empty()) {
        log_line(current_request_id(), partial_line_);
        partial_line_.clear();
    }
    end_output_stretch({}, log_->limits().idle_bytes);
    endpoint_->close();
    output_.fd.close();
    telemetry_.fd.close();
    waiter_.reset();
    owner_.worker_exited(*this);
    // After the exit is accounted for: its memory is free for the worker that takes over.
    if (undelivered) owner_.run_elsewhere(std::move(undelivered));
}

void Worker::capture(Invocation& inv, std::string_view line) {
    const std::size_t start = inv.captured_log.size();
    inv.captured_log.append(line);
    std::replace(inv.captured_log.begin() + static_cast<std::ptrdiff_t>(start), inv.captured_log.end(), '\n', '\r');
    inv.captured_log.push_back('\n');
    // Only the tail is returned: trim now and then rather than keep a chatty invocation's all.
    if (inv.captured_log.size() > 2 * kMaxLogTailBytes)
        inv.captured_log.erase(0, inv.captured_log.size() - kMaxLogTailBytes);
}

std::string Worker::current_request_id() const {
    return current_ && delivered_ ? current_->request_id : std::string();
}

std::string Worker::end_output_stretch(std::string_view request_id, std::uint64_t next_budget) {
    std::string line;
    if (!fn_->config.logging.json()) {
        line = log_->dropped_output(request_id, output_budget_);
    } else if (output_budget_.dropped_bytes() > 0) {
        log_->count_dropped(output_budget_.dropped_bytes());
        platform_.logs_dropped(log_.get(), &line, {}, output_budget_.dropped_bytes(), output_budget_.dropped_lines(),
                               request_id.empty() ? "output between invocations went over output.idle_bytes"
                                                  : "the invocation printed more than output.invocation_bytes");
    }
    output_budget_.restart(next_budget);
    return line;
}

InvocationFigures Worker::figures(const Invocation& inv, const InvocationResult& r, std::uint64_t max_memory_mb) const {
    InvocationFigures f;
    f.request_id = inv.request_id;
    f.duration_us = r.duration_us;
    f.billed_ms = billed_ms_for(r.duration_us);
    f.memory_mb = fn_->config.memory_mb;
    f.max_memory_used_mb = max_memory_mb;
    f.init_duration_us = r.init_duration_us;
    f.trace_id = inv.trace_id;
    switch (r.outcome) {
        case Outcome::success: f.status = "success"; break;
        case Outcome::timeout: f.status = "timeout"; break;
        case Outcome::function_error: f.status = "error"; break;
        default: f.status = "failure"; break;
    }
    return f;
}

bool Worker::output_held() const {
    return state_ == State::idle && !current_ && output_budget_.exhausted();
}

Worker::OutputRead Worker::read_slice(OutputPipe& pipe, std::size_t max_bytes) {
    const bool telemetry = &pipe == &telemetry_;
    std::size_t total = 0;
    while (total < max_bytes) {
        const ssize_t n = ::read(pipe.fd.native_handle(), read_buffer_.data(),
                                 std::min(read_buffer_.size(), max_bytes - total));
        if (n > 0) {
            if (telemetry) consume_telemetry(read_buffer_.data(), static_cast<std::size_t>(n));
            else consume_output(read_buffer_.data(), static_cast<std::size_t>(n));
            total += static_cast<std::size_t>(n);
            // Idle and over its budget: what is left stays in the pipe (and the writer waits).
            if (!telemetry && output_held()) return OutputRead::more;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return OutputRead::drained;
        // End of file: every process holding the pipe has gone (or closed it).
        if (n < 0)
            spdlog::error("worker: reading the {} of pid={} failed: {} (errno {})",
                          telemetry ? "telemetry descriptor" : "output", pid_, std::strerror(errno), errno);
        return OutputRead::closed;
    }
    return OutputRead::more;
}

void Worker::pump_output(OutputPipe& pipe) {
    if (!pipe.fd.is_open() || output_held()) return;
    continue_reading(pipe, read_slice(pipe, kOutputSlice));
}

void Worker::resume_output() {
    // A wait still armed means nothing is held on that pipe.
    if (!output_.wait_armed) continue_reading(output_, OutputRead::more);
    if (!telemetry_.wait_armed) continue_reading(telemetry_, OutputRead::more);
}

void Worker::continue_reading(OutputPipe& pipe, OutputRead last) {
    // Held: assign() starts reading again.
    if (last == OutputRead::closed || !pipe.fd.is_open() || output_held()) return;
    const bool telemetry = &pipe == &telemetry_;
    if (last == OutputRead::more) {
        // More may be waiting: look again after whatever else is ready to run.
        if (pipe.pump_posted) return;
        pipe.pump_posted = true;
        boost::asio::post(io_, [self = shared_from_this(), telemetry] {
            OutputPipe& p = telemetry ? self->telemetry_ : self->output_;
            p.pump_posted = false;
            self->pump_output(p);
        });
        return;
    }
    // Drained: wait for more. Only armed after a read found the pipe empty, so the wakeup
    // for what comes next cannot have been consumed already.
    if (pipe.wait_armed) return;
    pipe.wait_armed = true;
    pipe.fd.async_wait(boost::asio::posix::descriptor_base::wait_read,
                       [self = shared_from_this(), telemetry](const boost::system::error_code& ec) {
                           OutputPipe& p = telemetry ? self->telemetry_ : self->output_;
                           p.wait_armed = false;
                           if (!ec) self->pump_output(p);
                       });
}

void Worker::drain_output() {
    // What the runtime printed before posting its answer is already in the pipes, and a
    // pipe holds at most its capacity: reading that much takes all of it (and at most that
    // much of what a process it left running keeps printing). The rest is read in slices.
    // Asked each time: the worker may have resized its pipe (up to fs.pipe-max-size).
    for (OutputPipe* pipe : {&output_, &telemetry_}) {
        if (!pipe->fd.is_open()) continue;
        const int capacity = ::fcntl(pipe->fd.native_handle(), F_GETPIPE_SZ);
        continue_reading(*pipe, read_slice(*pipe, capacity > 0 ? static_cast<std::size_t>(capacity) : kOutputSlice));
    }
}

void Worker::log_line(std::string_view request_id, std::string_view line) {
    if (!output_budget_.admit(line.size() + 1)) return;
    log_->output(request_id, line);
    if (!request_id.empty() && current_->capture_log) capture(*current_, line);
}

void Worker::log_frame(std::string_view request_id, const TelemetryFrame& frame) {
    std::string_view text = frame.payload;
    // A record's own last line break (Python's logging and the Node text form end with
    // one) ends the record rather than being part of it.
    if (frame.last && !text.empty() && text.back() == '\n') text.remove_suffix(1);
    // With JSON the function's level is kept here too, as Lambda does: a runtime that
    // writes records below it (one that ignores AWS_LAMBDA_LOG_LEVEL) is filtered all the same.
    const LoggingConfig& logging = fn_->config.logging;
    if (logging.json() && frame.level != LogLevel::none && frame.level < logging.application_level) return;
    if (!output_budget_.admit(text.size() + 1)) return;
    log_->record(LogRecord{request_id, LogStream::function, frame.level, text, frame.time});
    if (!request_id.empty() && current_->capture_log) capture(*current_, text);
}

void Worker::consume_telemetry(const char* data, std::size_t n) {
    // Over the budget the records are still cut apart (the stream must stay in step);
    // admit() then drops and counts each.
    const std::string_view request_id =
        current_ && delivered_ ? std::string_view(current_->request_id) : std::string_view();
    std::string_view chunk(data, n);
    TelemetryFrame frame;
    const bool was_malformed = telemetry_parser_.malformed();
    while (telemetry_parser_.next(chunk, frame)) log_frame(request_id, frame);
    if (!telemetry_parser_.malformed()) return;
    if (!was_malformed) {
        // Said once; what follows cannot be cut into records and is dropped, counted, and
        // read on, so the runtime's writes never block.
        spdlog::warn("worker: function={} pid={}: the telemetry descriptor's stream is malformed ({}); the rest of "
                     "it is dropped",
                     fn_->config.name, pid_, telemetry_parser_.error());
        platform_.notice(*log_,
                         "TELEMETRY_MALFORMED the runtime's telemetry descriptor is malformed (" +
                             telemetry_parser_.error() + "); what it writes from here on is dropped",
                         request_id);
    }
    log_->count_dropped(telemetry_parser_.dropped_bytes() - telemetry_dropped_counted_);
    telemetry_dropped_counted_ = telemetry_parser_.dropped_bytes();
}

void Worker::consume_output(const char* data, std::size_t n) {
    if (output_budget_.exhausted()) {
        // The rest of this stretch is dropped: count it without cutting it into lines.
        output_budget_.drop(partial_line_.size() + n, static_cast<std::uint64_t>(std::count(data, data + n, '\n')));
        partial_line_.clear();
        return;
    }
    // Nothing below changes the invocation, so a view of its id stays valid.
    const std::string_view request_id =
        current_ && delivered_ ? std::string_view(current_->request_id) : std::string_view();
    std::string_view chunk(data, n);
    while (!chunk.empty()) {
        auto nl = chunk.find('\n');
        if (nl == std::string_view::npos) {
            partial_line_.append(chunk);
            if (partial_line_.size() >= kMaxLogLine) {
                log_line(request_id, partial_line_);
                partial_line_.clear();
            }
            return;
        }
        if (partial_line_.empty()) {
            log_line(request_id, chunk.substr(0, nl));
        } else {
            partial_line_.append(chunk.substr(0, nl));
            log_line(request_id, partial_line_);
            partial_line_.clear();
        }
        chunk.remove_prefix(nl + 1);
    }
}

}  // namespace funcd
