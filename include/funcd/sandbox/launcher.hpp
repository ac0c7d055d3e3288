#pragma once
// The seam between the pool and however a worker process is contained.
// The pool describes what to run; a launcher decides how it is isolated and where
// the function's code and the runtime appear inside the worker.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "funcd/common/unique_fd.hpp"

namespace funcd {

// Paths as the worker process sees them.
struct SandboxPaths {
    std::string task_root;     // the function's code (LAMBDA_TASK_ROOT)
    std::string runtime_root;  // funcd's runtimes directory (LAMBDA_RUNTIME_DIR)
};

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
};

// Resources that live as long as one worker (process group, cgroup, ...).
class WorkerResources {
public:
    virtual ~WorkerResources() = default;
    // Kills every process of the worker, stopped ones included. Idempotent.
    virtual void kill_all() = 0;
    // Highest memory use of the worker so far, in bytes, if known.
    virtual std::optional<std::uint64_t> peak_memory_bytes() = 0;
    // True when the worker hit its memory limit and the kernel killed it for that.
    virtual bool out_of_memory() { return false; }
};

struct LaunchedWorker {
    pid_t pid = -1;
    UniqueFd pidfd;                 // readable once the worker's main process exited
    UniqueFd output;                // read end of the worker's stdout+stderr
    UniqueFd runtime_api_listener;  // listening TCP socket the worker's runtime connects to
    // Optional: where the sandbox's init writes the runtime's wait status (an int) when
    // the runtime is not the process `pid` itself.
    UniqueFd exit_status;
    std::unique_ptr<WorkerResources> resources;
};

class SandboxLauncher {
public:
    virtual ~SandboxLauncher() = default;
    // Where a worker launched for this code and runtime sees them.
    virtual SandboxPaths paths_for(const std::filesystem::path& code_dir,
                                   const std::filesystem::path& runtime_dir) const = 0;
    // Starts one worker. Throws std::system_error when the worker cannot be started.
    virtual LaunchedWorker launch(const WorkerSpec& spec) = 0;
};

}  // namespace funcd
