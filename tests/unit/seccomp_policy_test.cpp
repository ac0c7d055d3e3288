#include "funcd/sandbox/seccomp_policy.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

namespace funcd {
namespace {

// One syscall made with arguments that do nothing harmful should the filter let it through
// (bad fds, null pointers, invalid flags, missing paths).
struct Probe {
    const char* name;
    int expected;  // errno the filter must produce
    long (*call)();
};

long call_or_errno(long rc) { return rc == -1 ? errno : 0; }

#define PROBE(name_, expected_, ...) \
    Probe { name_, expected_, [] { errno = 0; return call_or_errno(::syscall(__VA_ARGS__)); } }

const Probe kProbes[] = {
    PROBE("keyctl", EPERM, SYS_keyctl, -1L, 0L, 0L, 0L, 0L),
    PROBE("add_key", EPERM, SYS_add_key, nullptr, nullptr, nullptr, 0L, 0L),
    PROBE("request_key", EPERM, SYS_request_key, nullptr, nullptr, nullptr, 0L),
    PROBE("bpf", EPERM, SYS_bpf, -1L, nullptr, 0L),
    PROBE("perf_event_open", EPERM, SYS_perf_event_open, nullptr, -1L, -1L, -1L, 0L),
    PROBE("kexec_load", EPERM, SYS_kexec_load, 0L, 0L, nullptr, 0xdeadL),
    PROBE("init_module", EPERM, SYS_init_module, nullptr, 0L, ""),
    PROBE("finit_module", EPERM, SYS_finit_module, -1L, "", 0L),
    PROBE("delete_module", EPERM, SYS_delete_module, "funcd-no-such-module", 0L),
    PROBE("reboot", EPERM, SYS_reboot, 0L, 0L, 0L, nullptr),
    PROBE("swapon", EPERM, SYS_swapon, "/nonexistent/funcd-swap", 0L),
    PROBE("swapoff", EPERM, SYS_swapoff, "/nonexistent/funcd-swap"),
    PROBE("acct", EPERM, SYS_acct, "/nonexistent/funcd-acct"),
    PROBE("clock_settime", EPERM, SYS_clock_settime, -1L, nullptr),
    PROBE("settimeofday", EPERM, SYS_settimeofday, nullptr, nullptr),
    PROBE("adjtimex", EPERM, SYS_adjtimex, nullptr),
    PROBE("mount", EPERM, SYS_mount, nullptr, nullptr, nullptr, 0L, nullptr),
    PROBE("umount2", EPERM, SYS_umount2, "/nonexistent/funcd-mnt", 0L),
    PROBE("pivot_root", EPERM, SYS_pivot_root, "/nonexistent/a", "/nonexistent/b"),
    PROBE("setns", EPERM, SYS_setns, -1L, 0L),
    PROBE("unshare", EPERM, SYS_unshare, 0L),
    PROBE("fsopen", EPERM, SYS_fsopen, nullptr, 0L),
    PROBE("open_tree", EPERM, SYS_open_tree, -1L, nullptr, 0L),
    PROBE("move_mount", EPERM, SYS_move_mount, -1L, nullptr, -1L, nullptr, 0L),
    PROBE("ptrace", EPERM, SYS_ptrace, static_cast<long>(PTRACE_PEEKUSER), 0L, nullptr, nullptr),
    PROBE("process_vm_readv", EPERM, SYS_process_vm_readv, -1L, nullptr, 0L, nullptr, 0L, 0L),
    PROBE("process_vm_writev", EPERM, SYS_process_vm_writev, -1L, nullptr, 0L, nullptr, 0L, 0L),
    PROBE("kcmp", EPERM, SYS_kcmp, -1L, -1L, 99L, 0L, 0L),
    PROBE("pidfd_getfd", EPERM, SYS_pidfd_getfd, -1L, -1L, 0L),
    PROBE("open_by_handle_at", EPERM, SYS_open_by_handle_at, -1L, nullptr, 0L),
    PROBE("name_to_handle_at", EPERM, SYS_name_to_handle_at, -1L, nullptr, nullptr, nullptr, 0L),
    PROBE("userfaultfd", EPERM, SYS_userfaultfd, ~0L),
    PROBE("iopl", EPERM, SYS_iopl, 99L),
    PROBE("ioperm", EPERM, SYS_ioperm, 0L, 0L, 0L),
    PROBE("io_uring_setup", EPERM, SYS_io_uring_setup, 0L, nullptr),
    PROBE("io_uring_enter", EPERM, SYS_io_uring_enter, -1L, 0L, 0L, 0L, nullptr, 0L),
    PROBE("move_pages", EPERM, SYS_move_pages, -1L, 0L, nullptr, nullptr, nullptr, 0L),
    PROBE("syslog", EPERM, SYS_syslog, 99L, nullptr, 0L),
    PROBE("fanotify_init", EPERM, SYS_fanotify_init, ~0L, 0L),
    PROBE("clone3", ENOSYS, SYS_clone3, nullptr, 0L),
    PROBE("clone(CLONE_NEWUSER)", EPERM, SYS_clone, static_cast<long>(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L),
    PROBE("clone(CLONE_NEWNET)", EPERM, SYS_clone, static_cast<long>(CLONE_NEWNET | SIGCHLD), 0L, 0L, 0L, 0L),
    PROBE("clone(CLONE_NEWNS)", EPERM, SYS_clone, static_cast<long>(CLONE_NEWNS | SIGCHLD), 0L, 0L, 0L, 0L),
    PROBE("clone(CLONE_NEWPID)", EPERM, SYS_clone, static_cast<long>(CLONE_NEWPID | SIGCHLD), 0L, 0L, 0L, 0L),
    PROBE("personality(PER_BSD)", EPERM, SYS_personality, static_cast<long>(PER_BSD)),
    PROBE("personality(READ_IMPLIES_EXEC)", EPERM, SYS_personality, static_cast<long>(READ_IMPLIES_EXEC)),
    // Allowed: 0 is the value the filter must see to pass.
    PROBE("personality(0xffffffff)", 0, SYS_personality, 0xffffffffL),
    PROBE("personality(PER_LINUX)", 0, SYS_personality, static_cast<long>(PER_LINUX)),
    PROBE("socket(AF_VSOCK)", EPERM, SYS_socket, 40L, static_cast<long>(SOCK_STREAM), 0L),
    PROBE("socketpair(AF_VSOCK)", EPERM, SYS_socketpair, 40L, static_cast<long>(SOCK_STREAM), 0L, nullptr),
    PROBE("getpid", 0, SYS_getpid),
};

#undef PROBE

// Writes "name expected got\n" per check into `fd`; runs in the forked child, so it sticks
// to snprintf into a stack buffer and write(2).
void report(int fd, const char* name, int expected, long got) {
    char line[160];
    int n = std::snprintf(line, sizeof line, "%s %d %ld\n", name, expected, got);
    if (n > 0) (void)!::write(fd, line, static_cast<std::size_t>(n));
}

void* thread_body(void*) { return nullptr; }

[[noreturn]] void child(int fd, const SeccompPolicy* policy) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        report(fd, "no_new_privs", 0, errno);
        ::_exit(1);
    }
    int rc = policy ? install_seccomp(*policy) : 0;
    report(fd, "install_seccomp", 0, rc);
    if (rc != 0) ::_exit(1);

    const pid_t self = ::getpid();
    for (const Probe& p : kProbes) {
        long got = p.call();
        // A namespace clone that was let through also returns here, in the new child.
        if (::getpid() != self) ::_exit(0);
        report(fd, p.name, p.expected, got);
    }

    // TIOCSTI, also with bits above the 32 the kernel looks at.
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    char c = 'x';
    errno = 0;
    report(fd, "ioctl(TIOCSTI)", EPERM, call_or_errno(::ioctl(null_fd, TIOCSTI, &c)));
    errno = 0;
    report(fd, "ioctl(1<<32|TIOCSTI)", EPERM,
           call_or_errno(::syscall(SYS_ioctl, null_fd, (1UL << 32) | TIOCSTI, &c)));
    errno = 0;
    report(fd, "ioctl(TIOCLINUX)", EPERM, call_or_errno(::ioctl(null_fd, TIOCLINUX, &c)));
    errno = 0;
    // An unrelated ioctl reaches the kernel: /dev/null is no terminal.
    int winsize[2];
    report(fd, "ioctl(TIOCGWINSZ)", ENOTTY, call_or_errno(::ioctl(null_fd, TIOCGWINSZ, winsize)));

    // A plain fork still works (glibc's fork uses clone without namespace flags).
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(7);
    int status = 0;
    bool forked = pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 7;
    report(fd, "fork", 0, forked ? 0 : (pid < 0 ? errno : -1));

    // Threads still start: glibc tries clone3 first and falls back to clone on ENOSYS.
    pthread_t thread;
    int trc = ::pthread_create(&thread, nullptr, thread_body, nullptr);
    if (trc == 0) ::pthread_join(thread, nullptr);
    report(fd, "pthread_create", 0, trc);
    ::_exit(0);
}

// Runs the checks in a child, under `policy` (none when null); name -> (expected, got).
std::map<std::string, std::pair<int, long>> run_child(const SeccompPolicy* policy) {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0) << std::strerror(errno);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        child(fds[1], policy);
    }
    ::close(fds[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status << "\n" << out;

    std::map<std::string, std::pair<int, long>> results;
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
        auto last = line.rfind(' ');
        auto mid = line.rfind(' ', last - 1);
        results[line.substr(0, mid)] = {std::stoi(line.substr(mid + 1, last - mid - 1)), std::stol(line.substr(last + 1))};
    }
    return results;
}

TEST(SeccompPolicy, BuildsAProgram) {
    SeccompPolicy policy = SeccompPolicy::build();
    EXPECT_GT(policy.instructions(), 20u);
    EXPECT_EQ(policy.program()->len, policy.instructions());

    // Copies and moves point at their own instructions.
    SeccompPolicy copy = policy;
    EXPECT_EQ(copy.program()->len, policy.instructions());
    EXPECT_NE(copy.program()->filter, policy.program()->filter);
    EXPECT_EQ(std::memcmp(copy.program()->filter, policy.program()->filter, policy.instructions() * sizeof(sock_filter)), 0);
    SeccompPolicy moved = std::move(copy);
    EXPECT_EQ(moved.program()->len, policy.instructions());
    EXPECT_EQ(moved.fprog().filter, moved.program()->filter);
    SeccompPolicy assigned;
    assigned = moved;
    EXPECT_EQ(assigned.program()->len, policy.instructions());
    EXPECT_NE(assigned.program()->filter, moved.program()->filter);
}

TEST(SeccompPolicy, InstallFailsCleanlyWithoutNoNewPrivs) {
    if (::geteuid() == 0) GTEST_SKIP() << "root may install filters without no_new_privs";
    SeccompPolicy policy = SeccompPolicy::build();
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(install_seccomp(policy) == EACCES ? 0 : 1);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(SeccompPolicy, ForbiddenSyscallsFailAndTheRestWorks) {
    SeccompPolicy policy = SeccompPolicy::build();
    auto results = run_child(&policy);
    ASSERT_TRUE(results.count("install_seccomp")) << "child reported nothing";
    ASSERT_EQ(results["install_seccomp"].second, 0) << std::strerror(static_cast<int>(results["install_seccomp"].second));

    std::size_t expected_checks = std::size(kProbes) + 4 /* ioctls */ + 2 /* fork, thread */ + 1 /* install */;
    EXPECT_EQ(results.size(), expected_checks);
    for (const auto& [name, r] : results) {
        auto [expected, got] = r;
        EXPECT_EQ(got, expected) << name << ": expected " << (expected ? std::strerror(expected) : "success")
                                 << ", got " << (got > 0 ? std::strerror(static_cast<int>(got)) : std::to_string(got));
    }
}

// The probes prove something only if the kernel itself would not answer EPERM already.
TEST(SeccompPolicy, ProbesAreNotRefusedWithoutTheFilter) {
    auto results = run_child(nullptr);
    ASSERT_TRUE(results.count("install_seccomp")) << "child reported nothing";
    int refused_anyway = 0;
    std::string names;
    for (const auto& [name, r] : results) {
        auto [expected, got] = r;
        if ((expected == EPERM || expected == ENOSYS) && got == expected) {
            ++refused_anyway;
            names += " " + name;
        }
    }
    // Unprivileged runs (or sysctls such as io_uring_disabled) refuse a few on their own.
    if (::geteuid() == 0) {
        EXPECT_LE(refused_anyway, 3) << "refused without a filter:" << names;
    }
    if (refused_anyway) std::printf("refused without a filter:%s\n", names.c_str());
}

}  // namespace
}  // namespace funcd
