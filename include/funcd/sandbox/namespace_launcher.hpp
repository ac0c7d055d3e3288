#pragma once
// The sandbox: each worker is a process in new user, PID, mount, network, IPC, UTS and
// cgroup namespaces, inside a minimal read-only root entered with pivot_root, with no
// capabilities, no_new_privs, rlimits, a cgroup, and seccomp installed last before exec.
//
// The child is created inside its cgroup (clone3 with CLONE_INTO_CGROUP on v2; on v1 the
// launching thread steps into the cgroup for the clone). Parent and child synchronise over
// a socketpair: the parent writes the id maps (and moves the child into its cgroup where
// it could not be created there), then lets it go on; the child builds its root, binds
// the Runtime API socket (127.0.0.1:9001 in its own network namespace) and sends it to
// the parent with SCM_RIGHTS, then execs funcd-init (sandbox_init.hpp), which starts the
// runtime: nothing of the daemon's memory, command line or environment outlives that
// exec in the sandbox. A failing step is reported back with its name
// and errno, so the parent can log exactly what broke.
#include <sys/types.h>

#include <filesystem>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "funcd/common/unique_fd.hpp"
#include "funcd/sandbox/cgroup.hpp"
#include "funcd/sandbox/launcher.hpp"
#include "funcd/sandbox/runtime_template.hpp"
#include "funcd/sandbox/seccomp_policy.hpp"

namespace funcd {

struct SandboxOptions {
    // Host uids/gids handed to workers, one per live worker (per-uid limits then apply
    // per worker). Only used when the daemon runs as root; otherwise the worker is the
    // daemon's own uid, mapped.
    uid_t uid_base = 200000;
    unsigned uid_slots = 50000;

    // A uid block for this daemon: daemons sharing a host (tests run several at once)
    // must not hand out the same host uids, or one's fork bomb would exhaust the other's
    // RLIMIT_NPROC, which the kernel counts per uid host-wide.
    static SandboxOptions for_daemon(pid_t pid);
    // Inside the sandbox the function runs as this uid/gid (Lambda's sbx_user1051 is 993).
    uid_t inside_uid = 993;
    gid_t inside_gid = 990;
    // An empty host directory the root of every worker is mounted on, each in its own
    // private mount namespace. Empty: /run/funcd/sandbox-root as root, otherwise
    // funcd-sandbox-root-<uid> in the temporary directory.
    std::filesystem::path root_mount_point;
    // The program every sandbox runs as its PID 1 (funcd-init). Empty: the one beside the
    // daemon's binary, else the one this build made (find_sandbox_init).
    std::filesystem::path init_program;
    // Fork workers whose spec names a template from runtime templates (runtime_template.hpp).
    bool runtime_templates = true;
    // The templates' native half. Empty: funcd-template.so beside funcd-init.
    std::filesystem::path template_module;
    // funcd's runtimes on the host (the templates' Python code). Empty: no templates.
    std::filesystem::path runtime_dir;
};

// Hands out distinct host uids; shared with every worker's resources so a slot is
// returned whenever the worker goes, even after the launcher.
class UidPool;

class NamespaceLauncher final : public SandboxLauncher {
public:
    // `cgroups` may be null (no writable cgroup hierarchy: limits are then not enforced).
    NamespaceLauncher(SandboxOptions options, std::unique_ptr<CgroupManager> cgroups, SeccompPolicy seccomp);
    ~NamespaceLauncher() override;

    SandboxPaths paths_for(const std::filesystem::path& code_dir, const std::filesystem::path& runtime_dir,
                           const std::filesystem::path& opt_dir) const override;  // /var/task, /var/runtime
    LaunchedWorker launch(const WorkerSpec& spec) override;
    bool hold_template(const TemplateKey& key) override;
    void release_template(const TemplateKey& key) override;
    // The live templates (id, pid); empty with templates off.
    std::vector<std::pair<std::string, pid_t>> templates() const override;

    // What this host does not let the sandbox enforce (empty when everything is).
    const std::vector<std::string>& unenforced() const { return unenforced_; }

    // Whether this kernel lets us create the namespaces at all (probes with a child).
    static bool supported(std::string* why);

private:
    SandboxOptions options_;
    std::unique_ptr<CgroupManager> cgroups_;
    SeccompPolicy seccomp_;
    std::shared_ptr<UidPool> uids_;
    bool privileged_ = false;
    int last_cap_ = 0;  // the host's highest capability number, read once
    std::vector<std::string> unenforced_;
    std::filesystem::path root_mount_point_;
    std::atomic<std::uint64_t> next_worker_ = 0;  // names worker cgroups uniquely
    // funcd-init, read-only: a sealed in-memory copy, so that /proc/1/exe names no host
    // path and replacing the file on disk does not change what a running daemon starts.
    UniqueFd init_;
    std::unique_ptr<RuntimeTemplates> templates_;  // null: templates off
};

}  // namespace funcd
