#pragma once
// A write failed because the filesystem holding DATA_DIR (or the database on it) is full.
// The request that wrote is refused with 507 InsufficientStorage and nothing of it stays
// stored; the same request succeeds again once space is freed.
#include <stdexcept>
#include <string>

namespace funcd {

class StorageFull : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// True for the errno values of a full filesystem or an exhausted quota.
bool is_storage_full(int err);

}  // namespace funcd
