#pragma once
// What the daemon and a runtime template (runtime_template.hpp) say to each other over
// their socketpair (AF_UNIX, SOCK_SEQPACKET: one message per datagram, descriptors riding
// along with SCM_RIGHTS). Bodies are JSON.
//
// 1. Setup, daemon -> template, once: {"seccomp": [[code, jt, jf, k], ...], "daemon": pid,
//    "home": [i, ...]} with descriptors [funcd-init, home cgroup entries...]. "home" indexes
//    the descriptors: the template's own cgroup v1 `tasks` files, which its thread returns
//    to after each clone (empty on v2, where the clone itself names the worker's cgroup).
// 2. Fork request, daemon -> template: {"plan": <ChildPlan>, "targets": [n, ...],
//    "cgroup_dir": i | -1, "cgroup_tasks": [i, ...]}. Descriptor i is placed at number
//    targets[i] in the sandbox's first process (the numbers the plan names: the daemon's
//    own, where it built the plan); -1 for the cgroup descriptors, which only the template
//    uses: a v2 cgroup directory for CLONE_INTO_CGROUP, or v1 `tasks` files its thread
//    enters for the clone.
// 3. Reply, template -> daemon: {"pid": n} (the sandbox's first process, a child of the
//    daemon: the template clones it with CLONE_PARENT) or {"error": "...", "errno": n}.
// 4. After the go byte on the sync socket, daemon -> runtime on the same socket: the
//    runtime's environment, NUL-separated KEY=VALUE entries, which the template never sees.
#include <sys/types.h>

#include <nlohmann/json_fwd.hpp>

#include <span>
#include <string>
#include <vector>

#include "funcd/common/unique_fd.hpp"
#include "funcd/sandbox/sandbox_child.hpp"

namespace funcd {

// Largest message either side sends: a fork request holds a plan (mount operations with
// /etc's files, a few KB); the environment is capped far lower (kMaxEnvBytes, 4 KB, plus
// funcd's own variables).
inline constexpr std::size_t kTemplateMessageMax = 64 * 1024;
// Descriptors in one message: a fork request's (sync, /dev/null, output, telemetry, exit
// status, Runtime API, up to three cgroup entries) and a setup's.
inline constexpr std::size_t kTemplateMessageMaxFds = 16;

// The plan as JSON, without what a template must never hold or gets otherwise: the
// environment and the runtime's command line (exec_init only), the seccomp program (sent
// once, at setup).
nlohmann::json encode_child_plan(const ChildPlan& plan);
// Throws std::runtime_error (naming the field) on a malformed plan. `seccomp` must outlive it.
ChildPlan decode_child_plan(const nlohmann::json& j, const SeccompPolicy* seccomp);

nlohmann::json encode_seccomp(const SeccompPolicy& policy);
SeccompPolicy decode_seccomp(const nlohmann::json& j);

// Sends one message with `fds` attached. Returns 0 or errno.
int send_template_message(int sock, const std::string& body, std::span<const int> fds) noexcept;

struct TemplateMessage {
    std::string body;
    std::vector<UniqueFd> fds;  // close-on-exec
    int error = 0;              // errno; EMSGSIZE when the body or descriptors were cut
    bool closed = false;        // the other end is gone
};
// Blocks for the next message (EINTR is retried).
TemplateMessage receive_template_message(int sock);

// The environment as the runtime receives it, and back.
std::string encode_environment(const std::vector<std::string>& env);
std::vector<std::string> decode_environment(std::string_view block);

}  // namespace funcd
