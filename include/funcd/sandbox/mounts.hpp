#pragma once
// The worker's filesystem: a private mount namespace whose root is a small read-only
// tmpfs holding read-only bind mounts of the host's system directories, a synthetic
// /etc, the function's code at /var/task, the runtimes at /var/runtime, a tmpfs /tmp,
// a minimal /dev, and a /proc of the worker's own PID namespace.
//
// The parent decides everything (what exists on the host, which flags each source mount
// has locked) and writes it down as an ordered list of operations; the child only
// replays the list, so it needs no allocation between clone and exec.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace funcd {

struct MountOp {
    // attach: moves the detached mount at descriptor `fd` (a DetachedTmpfs) to `target`;
    // where the kernel has no detached mounts, mounts source/fstype/data there instead.
    enum class Kind { mount, attach, make_dir, make_file, make_symlink };
    Kind kind = Kind::mount;
    std::string target;        // absolute path in the child's mount namespace, before pivot_root
    std::string source;        // mount: source; make_symlink: the link's contents
    std::string fstype;        // mount only
    std::string data;          // mount: filesystem options; make_file: the file's contents
    unsigned long flags = 0;   // mount only
    mode_t mode = 0755;        // make_dir / make_file
    std::string inside;        // the path as the worker sees it, for error reports
    int fd = -1;               // attach only
};

// A writable tmpfs (/tmp, /dev/shm) the child creates before it takes the worker's ids,
// as a detached mount (fsopen/fsmount) placed at descriptor `slot`. Made while the child
// is still the host's root, it belongs to a uid that mountinfo does not print; made as the
// worker, its options would read "uid=<host uid>,gid=<host gid>" (tmpfs shows owners as
// the host sees them). Its root is 1777, so the worker can use it all the same.
struct DetachedTmpfs {
    std::string size;          // "512m"
    unsigned attributes = 0;   // MOUNT_ATTR_* flags
    int slot = -1;
    std::string inside;        // for error reports
};

struct RootPlan {
    std::string new_root;      // where the root filesystem is mounted before pivot_root
    std::vector<DetachedTmpfs> detached;  // made first (child_make_detached_tmpfs)
    std::vector<MountOp> ops;
};

struct RootSpec {
    std::filesystem::path mount_point;  // an existing empty host directory (see NamespaceLauncher)
    std::filesystem::path code_dir;     // -> /var/task
    std::filesystem::path runtime_dir;  // -> /var/runtime
    // O_PATH descriptors of code_dir and runtime_dir opened by the daemon. The child binds
    // through them (/proc/self/fd/N) because, as an unprivileged host uid, it could not
    // look the paths up itself when a parent directory (the data dir, 0700) is closed to it.
    int code_fd = -1;
    int runtime_fd = -1;
    int tmp_mb = 512;                   // size of /tmp
    // Descriptor numbers (reserved by the parent) for the detached /tmp and /dev/shm.
    int tmp_slot = -1;
    int shm_slot = -1;
    std::string passwd;                 // contents of /etc/passwd
    std::string group;                  // contents of /etc/group
    struct Bind {
        std::filesystem::path host;
        std::string inside;  // under /mnt
        bool writable = false;
        int fd = -1;  // as code_fd
    };
    std::vector<Bind> binds;
    std::filesystem::path opt_dir;      // -> /opt, read-only; empty: /opt stays empty
    int opt_fd = -1;                    // as code_fd
};

// Parent: the operations that build the root. Only reads the host (lstat/statfs).
RootPlan plan_root(const RootSpec& spec);

// Child, before it switches to the worker's ids: creates the plan's detached tmpfs
// mounts. Where the kernel has no fsopen (before 5.2) it leaves them to a plain mount
// later. Returns 0 or errno; `what` names the mount.
int child_make_detached_tmpfs(const RootPlan& plan, const char** what) noexcept;

// Child: replays the plan, then enters the new root (pivot_root), detaches the old one
// and makes the root itself read-only. Returns 0 or errno; `what` names the path.
int child_build_root(const RootPlan& plan, const char** what) noexcept;

}  // namespace funcd
