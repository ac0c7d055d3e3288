#pragma once
// The worker's seccomp filter, built once in the daemon with libseccomp and exported
// as a raw BPF program, so the child only needs prctl() between fork and exec (libseccomp
// allocates, which a child of a multi-threaded process must not do).
//
// Blocked (EPERM unless noted, so runtimes that probe keep working): what Docker's default
// profile blocks -- keyring calls, bpf, perf_event_open, kexec/module calls, reboot,
// swapon/off, acct, quotactl, clock setting, mount/umount2/pivot_root/setns/unshare and
// the new mount API, clone with namespace flags, clone3 (ENOSYS, so libcs fall back to
// clone), ptrace, process_vm_readv/writev, kcmp, pidfd_getfd, open_by_handle_at,
// userfaultfd, personality changes, iopl/ioperm -- plus io_uring and the TIOCSTI ioctl.
#include <linux/filter.h>

#include <utility>
#include <vector>

namespace funcd {

class SeccompPolicy {
public:
    // Throws std::runtime_error when libseccomp fails.
    static SeccompPolicy build();
    // A program built elsewhere: the daemon's, as a runtime template receives it.
    static SeccompPolicy from_program(std::vector<sock_filter> filter) {
        SeccompPolicy policy;
        policy.filter_ = std::move(filter);
        policy.aim();
        return policy;
    }

    // program_ points into filter_, so copies and moves must re-aim it at their own vector.
    SeccompPolicy() = default;
    SeccompPolicy(const SeccompPolicy& other) : filter_(other.filter_) { aim(); }
    SeccompPolicy(SeccompPolicy&& other) noexcept : filter_(std::move(other.filter_)) {
        aim();
        other.aim();
    }
    SeccompPolicy& operator=(const SeccompPolicy& other) {
        if (this != &other) {
            filter_ = other.filter_;
            aim();
        }
        return *this;
    }
    SeccompPolicy& operator=(SeccompPolicy&& other) noexcept {
        if (this != &other) {
            filter_ = std::move(other.filter_);
            aim();
            other.aim();
        }
        return *this;
    }

    // The same program by value, for callers that keep it on their own stack.
    sock_fprog fprog() const {
        return sock_fprog{static_cast<unsigned short>(filter_.size()), const_cast<sock_filter*>(filter_.data())};
    }

    // The program for prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program()).
    const sock_fprog* program() const { return &program_; }
    std::size_t instructions() const { return filter_.size(); }
    const std::vector<sock_filter>& filter() const { return filter_; }

private:
    void aim() noexcept {
        program_.len = static_cast<unsigned short>(filter_.size());
        program_.filter = filter_.data();
    }

    std::vector<sock_filter> filter_;
    sock_fprog program_{};
};

// In a child, after no_new_privs: installs the filter. Async-signal-safe; returns 0 or errno.
int install_seccomp(const SeccompPolicy& policy) noexcept;

}  // namespace funcd
