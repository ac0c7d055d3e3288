#pragma once
// One daemon per data directory: two on the same database, journal and code store would
// each believe they own what the other writes (the journal's segments, code garbage
// collection, provisioned workers). Held with flock(2) on DATA_DIR/funcd.lock for the
// daemon's life; the kernel drops it when the process dies, however it dies.
#include <filesystem>

#include "funcd/common/unique_fd.hpp"

namespace funcd {

class DataDirLock {
public:
    // Throws std::runtime_error naming the directory (and the holder's pid when known)
    // when another process holds it.
    explicit DataDirLock(const std::filesystem::path& data_dir);

private:
    UniqueFd fd_;
};

}  // namespace funcd
