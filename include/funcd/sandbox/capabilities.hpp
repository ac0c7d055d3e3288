#pragma once
// Capabilities of the sandbox child. It starts with every capability inside its user
// namespace (it is that namespace's first process); the runtime must have none.
namespace funcd {

// The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap),
// read by the parent before clone. Falls back to the number the headers know.
int last_capability();

// Child, once nothing left needs a capability: empties the bounding set and the
// ambient set. Returns 0 or errno.
int child_drop_bounding_and_ambient(int last_cap, const char** what) noexcept;
// Child, right after: clears effective, permitted and inheritable sets.
int child_clear_capability_sets() noexcept;

}  // namespace funcd
