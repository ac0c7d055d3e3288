#include "funcd/sandbox/seccomp_policy.hpp"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "funcd/common/unique_fd.hpp"

namespace funcd {
namespace {

// Refused outright with EPERM. Names this libseccomp does not know are skipped, and names
// of other architectures (stime, vm86, clock_settime64, ...) resolve to pseudo-numbers that
// libseccomp drops from an x86_64 filter, so one list serves every build.
constexpr std::array kBlockedSyscalls = {
    // Kernel keyring: not namespaced, shared with the host.
    "add_key", "request_key", "keyctl",
    // Kernel programmability and introspection.
    "bpf", "perf_event_open", "lookup_dcookie", "syslog",
    // Replacing or extending the kernel.
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "create_module", "get_kernel_syms", "query_module",
    // Host-wide state.
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "nfsservctl", "vhangup",
    "uselib", "ustat", "sysfs", "_sysctl",
    // Clocks are not namespaced (time namespaces only offset the monotonic clocks).
    "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", "settimeofday", "stime",
    "adjtimex",
    // Mounts and namespaces, old and new mount API.
    "mount", "umount", "umount2", "pivot_root", "setns", "unshare", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr",
    // Reaching into other processes.
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    // File handles bypass path permission checks (the "shocker" container escape).
    "open_by_handle_at", "name_to_handle_at",
    // userfaultfd stalls kernel page faults at will, the usual way to widen kernel races.
    "userfaultfd",
    // Raw I/O port access.
    "iopl", "ioperm", "vm86", "vm86old",
    // io_uring performs its operations from kernel workers, outside this filter.
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    // Moving other processes' pages between NUMA nodes.
    "move_pages",
    "fanotify_init",
};

// clone() flags that create namespaces. CLONE_NEWTIME is left out: in clone() it shares
// its bit with the exit-signal byte (CSIGNAL) and the kernel accepts it only through
// clone3() and unshare(), both refused outright.
constexpr std::array<std::uint64_t, 7> kNamespaceCloneFlags = {
    CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
};

// personality() values a runtime may set, as Docker's default profile allows them:
// PER_LINUX, PER_LINUX32 (0x0008), UNAME26 (0x0020000), PER_LINUX32|UNAME26, and
// 0xffffffff, which only queries the current persona.
constexpr std::array<std::uint32_t, 5> kAllowedPersonalities = {0x0, 0x0008, 0x20000, 0x20008, 0xffffffff};

// ioctl's request is an unsigned int in the kernel: bits above 31 are dropped after the
// filter has seen them, so only the low half is compared (else 1<<32|TIOCSTI slips past).
constexpr std::uint64_t kIoctlRequestMask = 0xffffffffu;

// AF_VSOCK (linux/socket.h); spelled out because older libc headers lack the macro.
constexpr std::uint64_t kAddressFamilyVsock = 40;

// Classic BPF programs longer than this are refused by the kernel (BPF_MAXINSNS).
constexpr std::size_t kMaxInstructions = 4096;

[[noreturn]] void fail(const std::string& what, int rc) {
    // libseccomp reports failures as negative errno values.
    spdlog::error("seccomp: {} failed: {} (errno {})", what, std::strerror(-rc), -rc);
    throw std::runtime_error("seccomp: " + what + " failed: " + std::strerror(-rc));
}

struct FilterContext {
    scmp_filter_ctx ctx;
    ~FilterContext() { seccomp_release(ctx); }
};

void add_rule(scmp_filter_ctx ctx, std::uint32_t action, int nr, const char* name, unsigned count,
              const scmp_arg_cmp* args = nullptr) {
    int rc = seccomp_rule_add_array(ctx, action, nr, count, args);
    if (rc < 0) fail(std::string("rule for ") + name, rc);
}

// libseccomp cannot say "EPERM unless the argument is one of these" with a default-allow
// filter: one rule may compare an argument only once, and a rule may not carry the default
// action. So personality() is decided by a few instructions placed before libseccomp's
// program; classic BPF jumps are relative, so the program behind them is unaffected.
std::vector<sock_filter> personality_prologue(std::uint32_t arch, int personality_nr) {
    constexpr std::uint32_t kArchOffset = offsetof(seccomp_data, arch);
    constexpr std::uint32_t kNrOffset = offsetof(seccomp_data, nr);
    // The kernel takes an unsigned int, so only the low half of the 64-bit slot matters.
    constexpr std::uint32_t kArg0LowOffset =
        offsetof(seccomp_data, args) + (std::endian::native == std::endian::little ? 0 : 4);
    const auto n = static_cast<std::uint8_t>(kAllowedPersonalities.size());

    std::vector<sock_filter> p;
    // The count of instructions after the arch and nr tests, used to skip to libseccomp's part.
    const auto rest = static_cast<std::uint8_t>(1 + n + 2);
    p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArchOffset));
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 0, static_cast<std::uint8_t>(2 + rest)));
    p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOffset));
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<std::uint32_t>(personality_nr), 0, rest));
    p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg0LowOffset));
    for (std::uint8_t i = 0; i < n; ++i)
        p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAllowedPersonalities[i], static_cast<std::uint8_t>(n - i), 0));
    p.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)));
    p.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    return p;
}

std::vector<sock_filter> export_program(scmp_filter_ctx ctx) {
    // seccomp_export_bpf writes to a file descriptor; a memfd keeps it off the disk.
    UniqueFd fd(::memfd_create("funcd-seccomp", MFD_CLOEXEC));
    if (!fd) {
        int e = errno;
        spdlog::error("seccomp: memfd_create failed: {} (errno {})", std::strerror(e), e);
        throw std::runtime_error(std::string("seccomp: memfd_create failed: ") + std::strerror(e));
    }
    if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) fail("seccomp_export_bpf", rc);
    off_t size = ::lseek(fd.get(), 0, SEEK_CUR);
    if (size < 0 || ::lseek(fd.get(), 0, SEEK_SET) < 0) {
        int e = errno;
        spdlog::error("seccomp: lseek on the exported filter failed: {} (errno {})", std::strerror(e), e);
        throw std::runtime_error(std::string("seccomp: lseek failed: ") + std::strerror(e));
    }
    if (size == 0 || size % sizeof(sock_filter) != 0)
        throw std::runtime_error("seccomp: exported filter has an odd size: " + std::to_string(size));
    std::vector<sock_filter> program(static_cast<std::size_t>(size) / sizeof(sock_filter));
    auto* out = reinterpret_cast<char*>(program.data());
    std::size_t done = 0;
    while (done < static_cast<std::size_t>(size)) {
        ssize_t n = ::read(fd.get(), out + done, static_cast<std::size_t>(size) - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            spdlog::error("seccomp: reading the exported filter failed: {} (errno {})", std::strerror(e), e);
            throw std::runtime_error(std::string("seccomp: read failed: ") + std::strerror(e));
        }
        done += static_cast<std::size_t>(n);
    }
    return program;
}

}  // namespace

SeccompPolicy SeccompPolicy::build() {
    FilterContext f{seccomp_init(SCMP_ACT_ALLOW)};
    if (!f.ctx) fail("seccomp_init", -ENOMEM);
    scmp_filter_ctx ctx = f.ctx;

    // The child sets no_new_privs itself before installing; the exported program carries
    // no such attribute anyway.
    if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); rc < 0) fail("clearing CTL_NNP", rc);
    // Only the native architecture is in the filter. A call through another ABI (int 0x80
    // i386 calls, x32 numbers) would be judged by other syscall numbers and so slip past
    // every rule; it kills the whole process rather than just the thread, which could leave
    // a runtime hung on a lock the dead thread held.
    if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0)
        fail("setting the bad-arch action", rc);
    // Every syscall of the worker runs through the filter: a binary search over syscall
    // numbers instead of a linear chain of comparisons.
    if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0)
        spdlog::debug("seccomp: binary-tree optimisation not available: {} (errno {})", std::strerror(-rc), -rc);

    for (const char* name : kBlockedSyscalls) {
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR) {
            spdlog::debug("seccomp: libseccomp does not know {}; not blocked", name);
            continue;
        }
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc < 0) {
            if (nr < 0) {  // a syscall of another architecture only
                spdlog::debug("seccomp: {} is not a syscall here: {} (errno {})", name, std::strerror(-rc), -rc);
                continue;
            }
            fail(std::string("rule for ") + name, rc);
        }
    }

    // ENOSYS rather than EPERM: glibc and other libcs then fall back to clone(), whose
    // flags (unlike clone3's, which sit in memory) the filter can inspect.
    add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), "clone3", 0);

    // Separate rules for one syscall and action are OR-ed: any namespace flag refuses.
    for (std::uint64_t flag : kNamespaceCloneFlags) {
        scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
        add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), "clone", 1, &cmp);
    }

    // AF_VSOCK has no network namespace: from a worker with no network it still reaches the
    // hypervisor's side and, with vsock loopback, other workers. Docker's default profile
    // refuses it the same way.
    {
        scmp_arg_cmp cmp = SCMP_A0(SCMP_CMP_EQ, kAddressFamilyVsock);
        add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), "socket", 1, &cmp);
        add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socketpair), "socketpair", 1, &cmp);
    }

    // TIOCSTI pushes input into a terminal the worker may share with the host (a command
    // then runs outside the sandbox); TIOCLINUX can do the same on a virtual console.
    for (unsigned long request : {static_cast<unsigned long>(TIOCSTI), static_cast<unsigned long>(TIOCLINUX)}) {
        scmp_arg_cmp cmp = SCMP_A1(SCMP_CMP_MASKED_EQ, kIoctlRequestMask, request);
        add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), "ioctl", 1, &cmp);
    }

    std::vector<sock_filter> body = export_program(ctx);
    std::vector<sock_filter> program =
        personality_prologue(seccomp_arch_native(), seccomp_syscall_resolve_name("personality"));
    program.insert(program.end(), body.begin(), body.end());
    if (program.size() > kMaxInstructions)
        throw std::runtime_error("seccomp: filter too long: " + std::to_string(program.size()) + " instructions");

    SeccompPolicy policy;
    policy.filter_ = std::move(program);
    policy.aim();
    spdlog::debug("seccomp: worker filter has {} instructions", policy.filter_.size());
    return policy;
}

int install_seccomp(const SeccompPolicy& policy) noexcept {
    // The caller sets no_new_privs first; without it the kernel requires CAP_SYS_ADMIN.
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, policy.program(), 0, 0) != 0) return errno;
    return 0;
}

}  // namespace funcd
