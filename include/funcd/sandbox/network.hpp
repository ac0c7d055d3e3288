#pragma once
// The worker's network namespace: nothing but a loopback interface, and the Runtime API
// listener bound inside it at the address every Lambda runtime expects.
namespace funcd {

// Port of the Runtime API inside a private network namespace (AWS_LAMBDA_RUNTIME_API).
inline constexpr unsigned short kRuntimeApiPort = 9001;
inline constexpr const char* kRuntimeApiAddress = "127.0.0.1:9001";
// Connections a worker's Runtime API socket queues; a runtime opens one or two.
inline constexpr int kRuntimeApiBacklog = 16;

// Child: a new network namespace starts with `lo` down; bring it up. Returns 0 or errno.
int child_bring_loopback_up() noexcept;
// Child: a non-blocking, close-on-exec TCP socket listening on 127.0.0.1:9001.
// Returns 0 and the fd in `*fd`, or errno.
int child_listen_runtime_api(int* fd, const char** what) noexcept;

}  // namespace funcd
