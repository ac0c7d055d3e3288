#pragma once
// Who is at the other end of a TCP connection on this host. TCP carries no credentials
// (SO_PEERCRED is for AF_UNIX), but the kernel knows the socket at the other end when both
// ends are local: its socket diagnostics (NETLINK_SOCK_DIAG, inet_diag) find that socket by
// the connection's addresses and report its owner, the uid that created it.
#include <sys/types.h>

#include <optional>

namespace funcd {

// The host uid owning the socket at the other end of the connected TCP socket `fd`, as seen
// from the daemon's user namespace. Empty when the kernel does not know it: the peer is
// not on this host (or not in our network namespace), it has already closed (a closed
// socket no longer has an owner), or the lookup failed (logged with errno).
std::optional<uid_t> tcp_peer_uid(int fd);

}  // namespace funcd
