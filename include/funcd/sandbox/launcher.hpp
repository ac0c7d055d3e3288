#pragma once
// The seam between the pool and however a worker process is contained.
// The pool describes what to run; a launcher decides how it is isolated and where
// the function's code and the runtime appear inside the worker.
//
// Threading contract (every SandboxLauncher):
// - launch() and paths_for() may run on several threads at once on one launcher. What
//   they share is either built in the constructor and only read afterwards (options, the
//   seccomp program) or synchronised inside (the uid pool, the cgroup name counter).
// - launch() blocks its thread until the worker's runtime has been exec'd (a few
//   milliseconds, see `timings`), so it belongs on launcher threads, not the event loop.
//   A launch() that throws leaves nothing behind: no process, cgroup or uid.
// - A worker is killed when the thread that launched it exits. Its parent-death signal
//   (SIGKILL, so that a crashed daemon leaves no worker running) is tied by the kernel to
//   the creating thread, not to the process. Launch only from threads that outlive their
//   workers -- a fixed pool joined at shutdown after the workers are gone -- never from a
//   thread that may end earlier (std::async, a pool that retires idle threads).
// - Descriptors: everything launch() creates is close-on-exec, and each new worker closes
//   every inherited descriptor that is not its own before it can block. So a worker
//   started concurrently by another thread holds nothing of this one past its first
//   microseconds, and this worker's end-of-file signals (the output and exit-status
//   pipes, the end of the sync socket at exec) mean what they say.
// - What launch() returns belongs to the caller: it may be moved to another thread (the
//   event loop) and used there, by one thread at a time.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "funcd/common/unique_fd.hpp"
#include "funcd/sandbox/sandbox_init.hpp"
#include "funcd/sandbox/template_key.hpp"

namespace funcd {

// Paths as the worker process sees them.
struct SandboxPaths {
    std::string task_root;     // the function's code (LAMBDA_TASK_ROOT)
    std::string runtime_root;  // funcd's runtimes directory (LAMBDA_RUNTIME_DIR)
    std::string opt_root;      // the function's layers (/opt on Lambda); empty without layers
};

// A host directory the worker sees at `inside` (file triggers' directories).
struct BindMount {
    std::filesystem::path host;
    std::string inside;  // absolute, e.g. /mnt/uploads
    bool writable = false;
};

// The environment variable naming the runtime's descriptor of its own Runtime API connection.
inline constexpr const char* kRuntimeApiFdVariable = "FUNCD_RUNTIME_API_FD";
// The environment variable naming the runtime's telemetry descriptor (kTelemetryLogFd), as
// Lambda names it: AWS's runtime interface clients and funcd's runtimes write framed log
// records there, so a multi-line record (a stack trace) stays one record.
inline constexpr const char* kTelemetryFdVariable = "_LAMBDA_TELEMETRY_LOG_FD";
// The environment variable naming where the function's layers are (/opt in the sandbox),
// for funcd's runtimes to put the layers' library directories on their search paths.
inline constexpr const char* kLayersRootVariable = "FUNCD_LAYERS_ROOT";

struct WorkerSpec {
    std::string function_name;
    std::int64_t version = 0;
    int memory_mb = 128;
    std::filesystem::path code_dir;     // on the host
    std::filesystem::path runtime_dir;  // on the host
    std::vector<std::string> argv;      // argv[0] is the program, as the worker sees it
    std::vector<std::string> env;       // KEY=VALUE, all but AWS_LAMBDA_RUNTIME_API
    int ephemeral_storage_mb = 512;     // size of the worker's /tmp
    bool host_network = false;          // share the host's network instead of a private loopback
    std::vector<BindMount> binds;       // extra directories, bound in this order
    // The function's layers, merged (see LayerViews): read-only at /opt. Empty: /opt is
    // an empty directory, as on Lambda without layers.
    std::filesystem::path opt_dir;
    // Run as this host user and group instead of a uid of the daemon's pool: files written
    // to a writable bind then belong to that user (an output directory's owner).
    std::optional<std::pair<uid_t, gid_t>> host_identity;
    // Fork the runtime from this template where the launcher keeps templates (the
    // sandbox's do, runtime_template.hpp): argv is then what it stands for, not run.
    std::optional<TemplateKey> from_template;
};

// Resources that live as long as one worker (process group, cgroup, ...).
class WorkerResources {
public:
    // Kills what is left and gives back the cgroup and uid. It may wait, in 1 ms steps, for
    // the killed processes to finish exiting before the cgroup can go: usually a few ms,
    // up to ~0.2 s each when hundreds of workers die at once. A cost for whichever thread
    // drops it.
    virtual ~WorkerResources() = default;
    // Kills every process of the worker, stopped ones included. Idempotent. May wait.
    virtual void kill_all() = 0;
    // Sends the kill and returns at once: what the event loop calls. kill_all() and the
    // destructor, run elsewhere, then make sure nothing is left.
    virtual void signal_kill() { kill_all(); }
    // Highest memory use of the worker so far, in bytes, if known.
    virtual std::optional<std::uint64_t> peak_memory_bytes() = 0;
    // True when the worker hit its memory limit and the kernel killed it for that.
    virtual bool out_of_memory() { return false; }
};

// Where one launch() spent the time its caller was blocked, for logs and benchmarks.
struct LaunchTimings {
    std::chrono::microseconds prepare{0};  // before the process: uid, cgroup, descriptors, plans
    std::chrono::microseconds spawn{0};    // clone or fork, namespaces included
    std::chrono::microseconds place{0};    // putting it in its cgroup, writing its id maps
    std::chrono::microseconds child{0};    // the child's own setup, up to its exec
    std::chrono::microseconds total{0};
};

struct LaunchedWorker {
    pid_t pid = -1;
    UniqueFd pidfd;                 // readable once the worker's main process exited
    UniqueFd output;                // read end of the worker's stdout+stderr
    UniqueFd telemetry;             // read end of the runtime's telemetry descriptor
    UniqueFd runtime_api_listener;  // listening TCP socket the worker's runtime connects to
    // Set when that listener is reachable by more than the worker's own processes (it is on
    // the host's loopback: a host-network worker): only connections from sockets this host
    // uid owns may be served on it. Empty: the listener is in a network namespace of the
    // worker's own, or nothing can tell the worker's sockets apart (no sandbox).
    std::optional<uid_t> runtime_api_peer_uid;
    // Optional: our end of a connected AF_UNIX stream socket; the runtime starts with the
    // other end open, its number in FUNCD_RUNTIME_API_FD. The Runtime API is served on it
    // like on a TCP connection, for a runtime that knows to use it (ours do): a round trip
    // over it costs about two thirds of one over loopback TCP.
    UniqueFd runtime_api_connection;
    // Optional: where the sandbox's init writes the runtime's wait status (an int) when
    // the runtime is not the process `pid` itself. Non-blocking: once the pidfd is
    // readable, the status is there in full, or was never written (the init was killed).
    UniqueFd exit_status;
    std::unique_ptr<WorkerResources> resources;
    LaunchTimings timings;
};

class SandboxLauncher {
public:
    virtual ~SandboxLauncher() = default;
    // Where a worker launched for this code and runtime sees them. Pure: any thread.
    virtual SandboxPaths paths_for(const std::filesystem::path& code_dir, const std::filesystem::path& runtime_dir,
                                   const std::filesystem::path& opt_dir) const = 0;
    // Starts one worker; blocks until its runtime was exec'd. Any thread, concurrently
    // (see the contract above). Throws std::system_error when the worker cannot be started.
    virtual LaunchedWorker launch(const WorkerSpec& spec) = 0;
    // A pool whose specs name a template holds it while it lives: the launcher may keep
    // the template until the last hold is released. Any thread. True when this launcher
    // keeps templates at all (the pool then counts the template's memory).
    virtual bool hold_template(const TemplateKey&) { return false; }
    virtual void release_template(const TemplateKey&) {}
    // The live runtime templates (TemplateKey::id, pid); none for a launcher without them.
    // Any thread.
    virtual std::vector<std::pair<std::string, pid_t>> templates() const { return {}; }
};

}  // namespace funcd
