#pragma once
// Event source mappings and their checkpoints in SQLite (funcd.db). A mapping's connection
// string is sealed with the environment cipher (EnvCipher) before it is written, so the
// database, a copy or a backup of it, holds no database password. The checkpoint is the
// position of the last change delivered; after a restart (a crash included) delivery
// resumes after it, so a change is delivered at least once.
// Thread-safe; every call may wait on disk, so the loop calls it through the blocking pool
// (start-up aside).
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "funcd/event_sources/mapping_config.hpp"
#include "funcd/registry/env_cipher.hpp"
#include "funcd/registry/sqlite.hpp"

namespace funcd {

struct StoredMapping {
    MappingConfig config;
    std::optional<ChangePosition> checkpoint;  // unset: nothing delivered yet
};

class MappingStore {
public:
    // Creates or migrates the table. Mappings sealed under an older key are sealed again
    // under the current one here, before the registry drops keys nothing else uses (so
    // build it before the Registry).
    MappingStore(const std::filesystem::path& db_path, const EnvCipher& cipher);

    // Every mapping that can be read; unreadable ones are logged and skipped.
    std::vector<StoredMapping> list();
    // Inserts or replaces the mapping's config (its checkpoint stays).
    void put(const MappingConfig& c);
    bool remove(const std::string& uuid);
    void save_checkpoint(const std::string& uuid, ChangePosition position);
    // The function was deleted: its mappings go; returns them (to tear their sources down).
    std::vector<MappingConfig> drop_function(const std::string& function);

private:
    std::optional<StoredMapping> read_row(sqlite::Statement& q, bool* stale);
    void write(const MappingConfig& c);

    std::mutex mutex_;
    const EnvCipher& cipher_;
    sqlite::Database db_;
};

}  // namespace funcd
