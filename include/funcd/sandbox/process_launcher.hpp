#pragma once
// Runs each worker as a plain child process: its own process group, the code root as
// working directory, a clean environment, stdin from /dev/null, stdout/stderr into one
// pipe, and a parent-death signal so a killed daemon leaves no worker behind.
// No isolation beyond that: a developer mode, and the base the sandbox builds on.
#include "funcd/sandbox/launcher.hpp"

namespace funcd {

class ProcessLauncher final : public SandboxLauncher {
public:
    // The worker sees the host's paths.
    SandboxPaths paths_for(const std::filesystem::path& code_dir, const std::filesystem::path& runtime_dir,
                           const std::filesystem::path& opt_dir) const override;
    LaunchedWorker launch(const WorkerSpec& spec) override;
};

// Creates a TCP socket listening on 127.0.0.1 on a port the kernel picks.
// Throws std::system_error.
UniqueFd listen_loopback_ephemeral();
// The port a bound socket listens on.
unsigned short local_port(int fd);

}  // namespace funcd
