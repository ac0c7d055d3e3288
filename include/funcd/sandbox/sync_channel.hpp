#pragma once
// The socketpair between the daemon and a sandbox child (AF_UNIX, SOCK_SEQPACKET, so
// every message keeps its boundaries). The parent sends one "go" byte once the child's
// id maps and cgroup are in place. The child answers with at most two messages: the
// Runtime API listener (SCM_RIGHTS), then either a failure "<step>: errno N" or nothing
// at all -- the child's end is close-on-exec, so end-of-file means execve succeeded.
#include "funcd/common/unique_fd.hpp"

#include <string>

namespace funcd {

// The one byte the parent sends to let the child go on.
inline constexpr char kGoByte = 'g';

// --- child side (async-signal-safe) ---
// Blocks until the go byte arrives; false when the parent closed its end instead.
bool child_wait_for_go(int sock) noexcept;
// True while the parent still holds its end (a zero-timeout poll for hang-up).
bool child_parent_alive(int sock) noexcept;
// Sends `fd` to the parent with SCM_RIGHTS. Returns 0 or errno.
int child_send_fd(int sock, int fd) noexcept;
// Sends "<step>[ <what>]: errno <err>" to the parent. Best effort.
void child_report_failure(int sock, const char* step, const char* what, int err) noexcept;

// --- parent side ---
struct ChildReport {
    enum class Kind { fd, failure, exec, timeout, io_error };
    Kind kind = Kind::io_error;
    UniqueFd fd;            // Kind::fd: the descriptor the child sent (close-on-exec here)
    std::string step;       // Kind::failure: the step and what it was about
    int error = 0;          // Kind::failure: the child's errno; io_error: ours
};

// Sends the go byte. Returns 0 or errno.
int parent_send_go(int sock) noexcept;
// Waits up to `timeout_ms` for the child's next message.
ChildReport parent_receive(int sock, int timeout_ms);

}  // namespace funcd
