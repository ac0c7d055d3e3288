#pragma once
// The worker's user namespace: one inside uid/gid mapped to one host uid/gid. Written
// by the parent into /proc/<pid>/{setgroups,uid_map,gid_map} while the child waits.
#include <sys/types.h>

#include <string>

namespace funcd {

struct IdMapping {
    uid_t inside_uid = 0;
    gid_t inside_gid = 0;
    uid_t host_uid = 0;
    gid_t host_gid = 0;
    // Whether the writer has CAP_SETGID over the host gid. Without it the kernel only
    // accepts a gid_map after setgroups was denied, and the child then keeps the
    // supplementary groups it inherited (it cannot drop them).
    bool privileged = false;
};

// Writes the maps of `pid`. Throws std::system_error naming the file (logged).
void write_id_maps(pid_t pid, const IdMapping& ids);

// Child side: drops inherited supplementary groups (only possible with a privileged
// mapping, see above), then switches to the inside gid and uid. Returns 0 or errno.
int child_switch_ids(const IdMapping& ids, const char** what) noexcept;

}  // namespace funcd
