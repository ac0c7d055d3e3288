#pragma once
// The name under which a store's file or directory is written before its rename into place:
// hidden, and random, so that concurrent writers (daemons sharing a root included) never
// collide.
#include <cstddef>
#include <string>

#include "funcd/common/ids.hpp"

namespace funcd {

// 64 random bits.
inline constexpr std::size_t kTemporaryNameRandomBytes = 8;

inline std::string temporary_name() { return ".tmp-" + random_hex(kTemporaryNameRandomBytes); }

}  // namespace funcd
