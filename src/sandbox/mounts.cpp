#include "funcd/sandbox/mounts.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace funcd {
namespace {

namespace fs = std::filesystem;

// The root and /dev hold only directories, mount points, symlinks and a few small /etc
// files, written by the child before both are made read-only: ramfs, not tmpfs, because
// it needs no size limit then and prints no options in mountinfo (a tmpfs the worker's uid
// mounts prints that uid as the host knows it).
constexpr const char* kReadOnlyFsType = "ramfs";
constexpr const char* kRootFsOptions = "mode=0755";
// POSIX shared memory (multiprocessing, some JITs); Lambda's /dev/shm is small too.
constexpr const char* kShmSize = "64m";
// mount_setattr/fsmount attributes (linux/mount.h), spelled out for older headers.
constexpr unsigned kAttrNoSuid = 0x00000002;
constexpr unsigned kAttrNoDev = 0x00000004;
constexpr unsigned kAttrNoExec = 0x00000008;
// fsopen/fsconfig/fsmount/move_mount constants (linux/mount.h).
constexpr unsigned kFsOpenCloexec = 0x00000001;
constexpr unsigned kFsConfigSetString = 1;
constexpr unsigned kFsConfigCmdCreate = 6;
constexpr unsigned kFsMountCloexec = 0x00000001;
constexpr unsigned kMoveMountFEmptyPath = 0x00000004;

// Host system directories made visible read-only. Those that are symlinks on the host
// (Debian's merged /usr: /bin -> usr/bin) are recreated as the same symlink instead.
constexpr const char* kSystemDirs[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
// The parts of the host's /etc that programs need to resolve names, verify TLS, tell the
// time and load shared libraries. Nothing with secrets (shadow, ssh keys) is listed.
constexpr const char* kEtcEntries[] = {
    "/etc/ssl",           "/etc/ca-certificates", "/etc/resolv.conf", "/etc/localtime", "/etc/nsswitch.conf",
    "/etc/ld.so.cache",   "/etc/alternatives",    "/etc/mime.types",  "/etc/protocols",
    "/etc/services",
};
// The sandbox's own /etc/hosts and /etc/hostname: the host's name the worker's "localhost"
// (the UTS name it is given) resolves through, and nothing about the host (its name, its
// neighbours' addresses).
constexpr const char* kEtcHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
constexpr const char* kEtcHostname = "localhost\n";
// Device nodes bound from the host's /dev: a user namespace may not mknod, and device
// nodes on a filesystem it mounts itself (our tmpfs) cannot be opened at all.
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom"};

class Planner {
public:
    explicit Planner(std::string root) { plan_.new_root = std::move(root); }

    RootPlan take() { return std::move(plan_); }

    std::string host(const std::string& inside) const { return plan_.new_root + inside; }

    void mount(std::string source, const std::string& inside, std::string fstype, unsigned long flags,
               std::string data = {}) {
        MountOp op;
        op.kind = MountOp::Kind::mount;
        op.source = std::move(source);
        op.target = host(inside);
        op.fstype = std::move(fstype);
        op.flags = flags;
        op.data = std::move(data);
        op.inside = inside;
        plan_.ops.push_back(std::move(op));
    }
    // A mount whose target is given as a host path (before the new root exists).
    void host_mount(std::string source, std::string target, std::string fstype, unsigned long flags,
                    std::string label, std::string data = {}) {
        MountOp op;
        op.kind = MountOp::Kind::mount;
        op.source = std::move(source);
        op.target = std::move(target);
        op.fstype = std::move(fstype);
        op.flags = flags;
        op.data = std::move(data);
        op.inside = std::move(label);
        plan_.ops.push_back(std::move(op));
    }
    void dir(const std::string& inside, mode_t mode = 0755) { make(MountOp::Kind::make_dir, inside, {}, {}, mode); }
    void file(const std::string& inside, std::string contents = {}, mode_t mode = 0644) {
        make(MountOp::Kind::make_file, inside, {}, std::move(contents), mode);
    }
    void symlink(const std::string& inside, std::string contents) {
        make(MountOp::Kind::make_symlink, inside, std::move(contents), {}, 0);
    }

    // A read-only bind of a host path. Binding copies the source mount's flags, then a
    // second call makes the copy read-only. In a user namespace that remount fails with
    // EPERM if it would clear any flag the source mount has "locked" (nosuid, nodev,
    // noexec and the atime mode, all locked when the mount came from a more privileged
    // namespace), so the flags the source already has are read here and kept.
    void bind_readonly(const std::string& source, const std::string& inside, unsigned long extra_flags) {
        bind_readonly_via(source, source, inside, extra_flags);
    }
    // The same, mounting from `via` (a /proc/self/fd path to `source`).
    void bind_readonly_via(const std::string& source, const std::string& via, const std::string& inside,
                           unsigned long extra_flags) {
        mount(via, inside, {}, MS_BIND | MS_REC);
        mount({}, inside, {}, MS_REMOUNT | MS_BIND | MS_RDONLY | extra_flags | locked_flags(source));
    }
    // A writable bind, without devices or set-uid programs.
    void bind_writable_via(const std::string& source, const std::string& via, const std::string& inside,
                           unsigned long extra_flags) {
        mount(via, inside, {}, MS_BIND | MS_REC);
        mount({}, inside, {}, MS_REMOUNT | MS_BIND | extra_flags | locked_flags(source));
    }
    // A bind that keeps the source's flags (device nodes: read-write, and dev allowed).
    void bind(const std::string& source, const std::string& inside) { mount(source, inside, {}, MS_BIND); }
    // A writable tmpfs made detached before the worker's ids (see DetachedTmpfs); with
    // no slot, or where the kernel cannot, a plain tmpfs mount with the same limits.
    void tmpfs(const std::string& inside, const std::string& size, unsigned long flags, int slot) {
        unsigned attributes = 0;
        if (flags & MS_NOSUID) attributes |= kAttrNoSuid;
        if (flags & MS_NODEV) attributes |= kAttrNoDev;
        if (flags & MS_NOEXEC) attributes |= kAttrNoExec;
        if (slot >= 0) plan_.detached.push_back({size, attributes, slot, inside});
        mount("tmpfs", inside, "tmpfs", flags, "size=" + size + ",mode=1777");
        if (slot >= 0) {
            plan_.ops.back().kind = MountOp::Kind::attach;
            plan_.ops.back().fd = slot;
        }
    }

private:
    void make(MountOp::Kind kind, const std::string& inside, std::string source, std::string data, mode_t mode) {
        MountOp op;
        op.kind = kind;
        op.target = host(inside);
        op.source = std::move(source);
        op.data = std::move(data);
        op.mode = mode;
        op.inside = inside;
        plan_.ops.push_back(std::move(op));
    }

    static unsigned long locked_flags(const std::string& source) {
        struct statfs st{};
        if (::statfs(source.c_str(), &st) != 0) {
            // The bind itself will fail in the child and be reported with its step name.
            spdlog::debug("sandbox: statfs {} failed: {} (errno {})", source, std::strerror(errno), errno);
            return 0;
        }
        unsigned long flags = 0;
        if (st.f_flags & ST_NOSUID) flags |= MS_NOSUID;
        if (st.f_flags & ST_NODEV) flags |= MS_NODEV;
        if (st.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
        if (st.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
        // The atime mode is locked as a whole, and a remount that names none asks for
        // relatime: a strictatime source (neither bit reported) must say so explicitly.
        if (st.f_flags & ST_NOATIME) flags |= MS_NOATIME;
        else if (st.f_flags & ST_RELATIME) flags |= MS_RELATIME;
        else flags |= MS_STRICTATIME;
        return flags;
    }

    RootPlan plan_;
};

enum class HostKind { missing, symlink, directory, other };

HostKind host_kind(const std::string& path, std::string* link) {
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) return HostKind::missing;
    if (S_ISLNK(st.st_mode)) {
        std::error_code ec;
        *link = fs::read_symlink(path, ec).string();
        return ec ? HostKind::missing : HostKind::symlink;
    }
    return S_ISDIR(st.st_mode) ? HostKind::directory : HostKind::other;
}

// True when `path` resolves to something under /usr, which the sandbox shows as is.
bool resolves_into_usr(const std::string& path) {
    std::error_code ec;
    auto real = fs::canonical(path, ec);
    return !ec && real.string().rfind("/usr/", 0) == 0;
}

}  // namespace

RootPlan plan_root(const RootSpec& spec) {
    Planner p(spec.mount_point.string());
    constexpr unsigned long kNoDevices = MS_NOSUID | MS_NODEV;

    // Stop mount events from travelling between this namespace and the host's in either
    // direction (systemd makes / shared); pivot_root also refuses a shared root.
    p.host_mount({}, "/", {}, MS_REC | MS_PRIVATE, "/ (make private)");
    // The new root: a tmpfs on a directory that exists on the host. Mounted in the
    // worker's private namespace, it hides nothing from the host or other workers, so
    // one empty directory serves every worker at once.
    p.host_mount("none", p.host(""), kReadOnlyFsType, kNoDevices, "/ (root)", kRootFsOptions);

    for (const char* dir : kSystemDirs) {
        std::string link;
        switch (host_kind(dir, &link)) {
            case HostKind::missing: break;
            case HostKind::symlink: p.symlink(dir, link); break;
            case HostKind::directory:
                p.dir(dir);
                p.bind_readonly(dir, dir, MS_NODEV);
                break;
            case HostKind::other: break;  // a file where a directory belongs: leave it out
        }
    }

    p.dir("/etc");
    p.file("/etc/passwd", spec.passwd);
    p.file("/etc/group", spec.group);
    p.file("/etc/hosts", kEtcHosts);
    p.file("/etc/hostname", kEtcHostname);
    for (const char* entry : kEtcEntries) {
        std::string link;
        HostKind kind = host_kind(entry, &link);
        if (kind == HostKind::symlink) {
            // /etc/localtime -> /usr/share/zoneinfo/...: the same link works inside.
            // Anything pointing elsewhere (resolv.conf -> /run/...) is bound as its
            // target instead, since mount() follows the link on the host side.
            if (resolves_into_usr(entry)) {
                p.symlink(entry, link);
                continue;
            }
            std::error_code ec;
            auto target = fs::canonical(entry, ec);
            if (ec) continue;  // dangling on the host: nothing to show
            kind = fs::is_directory(target, ec) ? HostKind::directory : HostKind::other;
        }
        if (kind == HostKind::missing) continue;
        if (kind == HostKind::directory) p.dir(entry);
        else p.file(entry);
        p.bind_readonly(entry, entry, kNoDevices);
    }

    p.dir("/var");
    p.dir("/var/task");
    auto via = [](const fs::path& path, int fd) {
        return fd >= 0 ? "/proc/self/fd/" + std::to_string(fd) : path.string();
    };
    p.bind_readonly_via(spec.code_dir.string(), via(spec.code_dir, spec.code_fd), "/var/task", kNoDevices);
    p.dir("/var/runtime");
    p.bind_readonly_via(spec.runtime_dir.string(), via(spec.runtime_dir, spec.runtime_fd), "/var/runtime",
                        kNoDevices);

    // Layers: read-only and executable (tools in /opt/bin, a custom runtime's /opt/bootstrap).
    p.dir("/opt");
    if (!spec.opt_dir.empty())
        p.bind_readonly_via(spec.opt_dir.string(), via(spec.opt_dir, spec.opt_fd), "/opt", kNoDevices);

    if (!spec.binds.empty()) p.dir("/mnt");
    for (const auto& b : spec.binds) {
        p.dir(b.inside);
        if (b.writable) p.bind_writable_via(b.host.string(), via(b.host, b.fd), b.inside, kNoDevices | MS_NOEXEC);
        else p.bind_readonly_via(b.host.string(), via(b.host, b.fd), b.inside, kNoDevices | MS_NOEXEC);
    }

    p.dir("/tmp", 01777);
    p.tmpfs("/tmp", std::to_string(std::max(spec.tmp_mb, 1)) + "m", kNoDevices, spec.tmp_slot);

    p.dir("/dev");
    p.mount("none", "/dev", kReadOnlyFsType, MS_NOSUID | MS_NOEXEC, kRootFsOptions);
    for (const char* dev : kDevices) {
        const std::string host_dev = std::string("/dev/") + dev;
        struct stat st{};
        if (::stat(host_dev.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) continue;
        p.file(host_dev, {}, 0666);
        p.bind(host_dev, host_dev);
    }
    p.symlink("/dev/fd", "/proc/self/fd");
    p.symlink("/dev/stdin", "/proc/self/fd/0");
    p.symlink("/dev/stdout", "/proc/self/fd/1");
    p.symlink("/dev/stderr", "/proc/self/fd/2");
    p.dir("/dev/shm", 01777);
    p.tmpfs("/dev/shm", kShmSize, kNoDevices | MS_NOEXEC, spec.shm_slot);
    // Nothing may be created in /dev itself; the device binds are separate mounts and
    // keep their own flags.
    p.mount({}, "/dev", {}, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC);

    // A proc of the worker's own PID namespace: the mounting process's namespace is the
    // one shown, and the child is already inside it. Mounted before the old root goes,
    // because the kernel only lets a user namespace mount proc while a complete proc
    // mount is visible to it.
    p.dir("/proc", 0555);
    p.mount("proc", "/proc", "proc", kNoDevices | MS_NOEXEC | MS_RDONLY);
    return p.take();
}

int child_make_detached_tmpfs(const RootPlan& plan, const char** what) noexcept {
    for (const DetachedTmpfs& t : plan.detached) {
        *what = t.inside.c_str();
        const int fs = static_cast<int>(::syscall(SYS_fsopen, "tmpfs", kFsOpenCloexec));
        if (fs < 0) {
            // No new mount API: the attach op mounts it the old way.
            if (errno == ENOSYS) continue;
            return errno;
        }
        int err = 0;
        if (::syscall(SYS_fsconfig, fs, kFsConfigSetString, "size", t.size.c_str(), 0) != 0 ||
            ::syscall(SYS_fsconfig, fs, kFsConfigSetString, "mode", "1777", 0) != 0 ||
            ::syscall(SYS_fsconfig, fs, kFsConfigCmdCreate, nullptr, nullptr, 0) != 0)
            err = errno;
        const int mnt = err ? -1 : static_cast<int>(::syscall(SYS_fsmount, fs, kFsMountCloexec, t.attributes));
        if (!err && mnt < 0) err = errno;
        ::close(fs);
        if (err) return err;
        err = ::dup3(mnt, t.slot, O_CLOEXEC) < 0 ? errno : 0;
        ::close(mnt);
        if (err) return err;
    }
    *what = nullptr;
    return 0;
}

int child_build_root(const RootPlan& plan, const char** what) noexcept {
    for (const MountOp& op : plan.ops) {
        *what = op.inside.c_str();
        switch (op.kind) {
            case MountOp::Kind::attach:
                if (::syscall(SYS_move_mount, op.fd, "", AT_FDCWD, op.target.c_str(), kMoveMountFEmptyPath) == 0)
                    break;
                // The slot holds no mount (no fsopen on this kernel: EINVAL), or there is
                // no move_mount: a plain mount with the same limits.
                if (errno != EINVAL && errno != ENOSYS) return errno;
                if (::mount(op.source.c_str(), op.target.c_str(), op.fstype.c_str(), op.flags, op.data.c_str()) != 0)
                    return errno;
                break;
            case MountOp::Kind::mount:
                if (::mount(op.source.empty() ? nullptr : op.source.c_str(), op.target.c_str(),
                             op.fstype.empty() ? nullptr : op.fstype.c_str(), op.flags,
                             op.data.empty() ? nullptr : op.data.c_str()) != 0)
                    return errno;
                break;
            case MountOp::Kind::make_dir:
                // The umask would otherwise strip the sticky /tmp's write bits.
                if (::mkdir(op.target.c_str(), op.mode) != 0 && errno != EEXIST) return errno;
                if (::chmod(op.target.c_str(), op.mode) != 0) return errno;
                break;
            case MountOp::Kind::make_file: {
                int fd = ::open(op.target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, op.mode);
                if (fd < 0) return errno;
                std::size_t done = 0;
                while (done < op.data.size()) {
                    ssize_t n = ::write(fd, op.data.data() + done, op.data.size() - done);
                    if (n < 0 && errno == EINTR) continue;
                    if (n <= 0) {
                        int err = n < 0 ? errno : EIO;
                        ::close(fd);
                        return err;
                    }
                    done += static_cast<std::size_t>(n);
                }
                ::close(fd);
                break;
            }
            case MountOp::Kind::make_symlink:
                if (::symlink(op.source.c_str(), op.target.c_str()) != 0) return errno;
                break;
        }
    }

    // pivot_root(".", "."): stack the old root under the new one, then detach it. No
    // directory for the old root is needed in the new one, which is read-only later.
    *what = "/ (pivot_root)";
    if (::chdir(plan.new_root.c_str()) != 0) return errno;
    if (::syscall(SYS_pivot_root, ".", ".") != 0) return errno;
    // MNT_DETACH: the old root stays busy (our own cwd, the daemon's open files in this
    // copy of the mount table), so a plain unmount would fail with EBUSY.
    *what = "/ (detach old root)";
    if (::umount2(".", MNT_DETACH) != 0) return errno;
    if (::chdir("/") != 0) return errno;
    *what = "/ (read-only)";
    if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
        return errno;
    *what = nullptr;
    return 0;
}

}  // namespace funcd
