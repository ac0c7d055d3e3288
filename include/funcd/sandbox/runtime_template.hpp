#pragma once
// Runtime templates: an interpreter (Python or Node.js, with funcd's runtime loaded) started once
// and kept waiting, from which sandboxed workers are forked instead of started, so a cold
// start does not pay the interpreter's start and the runtime's imports again.
//
// The template is a plain process of the host, exec'd by the daemon (never a copy of the
// daemon's memory), in a cgroup of its own, with no function's code, environment or
// secrets: it loads the native half (template_server.cpp) and blocks in it. A fork request
// carries the sandbox's plan; the template clones the sandbox's first process with the
// sandbox's namespaces, as the daemon's child (CLONE_PARENT), and that process contains
// itself with the same steps a daemon-made sandbox runs (sandbox_child.hpp), forks the
// runtime from itself, and becomes funcd-init. The runtime gets its environment from the
// daemon only then, over its own sync socket, and goes on into the function's code.
//
// Threading: fork requests to one template are serialised (a mutex held for the request
// and its reply, well under a millisecond); different templates run in parallel. Like
// launch(), a template must be started from a thread that outlives every worker forked
// from it: their parent-death signal follows that thread.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "funcd/common/unique_fd.hpp"
#include "funcd/sandbox/cgroup.hpp"
#include "funcd/sandbox/sandbox_child.hpp"
#include "funcd/sandbox/seccomp_policy.hpp"
#include "funcd/sandbox/template_key.hpp"

namespace funcd {

// The native half's file name, beside funcd-init in a build and an installation.
inline constexpr const char* kTemplateModuleName = "funcd-template.so";

// Where a template's files are on the host.
struct TemplateFiles {
    std::filesystem::path module;       // the native half (funcd-template.so)
    std::filesystem::path runtime_dir;  // funcd's runtimes (python/funcd_template.py, nodejs/template.js)
    std::string sandbox_runtime_dir;    // where a sandbox sees them (LAMBDA_RUNTIME_DIR)
};

// What a fork request made: the sandbox's first process (the daemon's child), and whether
// it was born in the worker's cgroup (else the caller moves it there).
struct TemplateFork {
    pid_t pid = -1;
    bool in_cgroup = false;
};

class RuntimeTemplate {
public:
    // Starts the interpreter, in a cgroup of `cgroups` named `cgroup_id`. Throws
    // std::system_error when it cannot be started; a template that starts but cannot serve
    // shows up at the first fork request.
    RuntimeTemplate(const TemplateKey& key, const TemplateFiles& files, const SeccompPolicy& seccomp, int init,
                    CgroupManager* cgroups, const std::string& cgroup_id);
    ~RuntimeTemplate();  // kills it and reaps it
    RuntimeTemplate(const RuntimeTemplate&) = delete;
    RuntimeTemplate& operator=(const RuntimeTemplate&) = delete;

    // Asks the template to clone a sandbox's first process for `plan` (fork_runtime). `fds`
    // are the daemon's descriptors the plan names: the clone has each at the same number.
    // The first must be the sync socket. `cgroup`, if any, is where the clone is born.
    // Throws std::system_error.
    TemplateFork fork_sandbox(const ChildPlan& plan, std::span<const int> fds, WorkerCgroup* cgroup);

    // False once the process ended or its interpreter changed on disk; `why` says which.
    bool usable(std::string* why) const;
    pid_t pid() const { return pid_; }
    const TemplateKey& key() const { return key_; }

private:
    TemplateKey key_;
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd control_;
    std::unique_ptr<WorkerCgroup> cgroup_;
    struct FileStamp {
        dev_t dev = 0;
        ino_t ino = 0;
        std::int64_t mtime_ns = 0;
    };
    FileStamp interpreter_;
    bool answered_ = false;  // it served a request: later failures are not start-up ones
    std::mutex request_;     // one fork request at a time
};

// The templates of one launcher, by key: started at a worker's first launch for a key,
// restarted when one died or its interpreter changed, ended when no pool holds the key.
class RuntimeTemplates {
public:
    RuntimeTemplates(TemplateFiles files, const SeccompPolicy& seccomp, int init, CgroupManager* cgroups);
    ~RuntimeTemplates();

    // A usable template for `key`, started now if there is none. nullptr when none can
    // be had; `why` then says why (the caller starts the worker plainly and logs it).
    std::shared_ptr<RuntimeTemplate> get(const TemplateKey& key, std::string* why);
    // A pool that forks from `key` holds it while it lives; the template ends with the last hold.
    void hold(const TemplateKey& key);
    void release(const TemplateKey& key);
    // Live templates, for /metrics and tests.
    std::vector<std::pair<std::string, pid_t>> list() const;

private:
    struct Entry {
        std::shared_ptr<RuntimeTemplate> running;
        int holds = 0;
        std::string last_failure;  // logged once, not on every launch
        std::chrono::steady_clock::time_point retry_after{};
    };
    TemplateFiles files_;
    const SeccompPolicy& seccomp_;
    int init_;
    CgroupManager* cgroups_;
    mutable std::mutex mutex_;
    std::mutex start_;  // one template starts at a time
    std::map<std::string, Entry> entries_;
    std::uint64_t started_ = 0;  // names the templates' cgroups uniquely (under start_)
};

}  // namespace funcd
