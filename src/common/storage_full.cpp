#include "funcd/common/storage_full.hpp"

#include <cerrno>

namespace funcd {

bool is_storage_full(int err) { return err == ENOSPC || err == EDQUOT; }

}  // namespace funcd
