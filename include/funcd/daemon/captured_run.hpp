#pragma once
// Runs a helper program to completion with its output captured: the daemon's short-lived
// children at start-up (compiling the Python runtime, asking interpreters their version).
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace funcd {

struct CapturedRun {
    bool started = false;     // false: `failure` says why nothing ran
    bool timed_out = false;   // killed after the timeout
    int status = 0;           // wait status
    std::string output;       // stdout and stderr, at most the limit asked for
    std::string failure;

    bool succeeded() const;
    // "exit status 1", "killed by signal 9", or why it did not start.
    std::string describe() const;
};

// Runs argv[0] (a path: no PATH search) with `argv`, stdin /dev/null, stdout and stderr
// into one pipe, an environment of only LANG=C.UTF-8 (none of the daemon's, which may
// hold the API token), and `umask`. Blocks until it exits or `timeout` passes.
CapturedRun run_captured(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         std::size_t max_output, mode_t umask = 022);

}  // namespace funcd
