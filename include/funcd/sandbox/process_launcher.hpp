#pragma once
// Runs each worker as a plain child process: its own process group, the code root as
// working directory, a clean environment, stdin from /dev/null, stdout/stderr into a
// pipe, and a parent-death signal so a killed daemon leaves no worker behind.
#include "funcd/sandbox/launcher.hpp"

namespace funcd {

class ProcessLauncher final : public SandboxLauncher {
public:
    SandboxPaths paths() const override;  // the host paths themselves
    LaunchedWorker launch(const WorkerSpec& spec) override;

    // Set by launch() per worker: the worker's code and runtime dirs are host paths.
    // Used by paths() callers only through WorkerSpec, so they are not stored here.
};

}  // namespace funcd
