#pragma once
// Room for the event loop's per-descriptor state, reserved while the heap is still empty.
//
// Asio's epoll reactor allocates one state object per registered descriptor and, when the
// descriptor closes, keeps the object in a free list for reuse; it never gives the memory
// back. A burst of workers (each registers its Runtime API listener and connection, its
// pidfd and its output pipe, and every caller's connection one more) allocates those
// objects in between the burst's short-lived allocations, so after scale to zero each
// pooled object pins a heap page of its own that malloc_trim cannot release: 200 workers
// left ~2.6 MiB resident in the daemon's heap for ~0.2 MiB of such objects. Objects
// reserved up front sit side by side on a few pages, and bursts reuse them first.
#include <cstddef>

#include <boost/asio/io_context.hpp>

namespace funcd {

// Descriptors a burst of 500 workers registers (four each) plus its 500 callers'
// connections: the burst our scale target names. ~180 bytes each, ~450 KiB in all.
inline constexpr std::size_t kReactorSlots = 2'560;

// Registers and closes `slots` descriptors on `io`'s reactor. Returns how many it could
// reserve (fewer when the descriptor limit is lower); never throws.
std::size_t reserve_reactor_slots(boost::asio::io_context& io, std::size_t slots = kReactorSlots);

}  // namespace funcd
