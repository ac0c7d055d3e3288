#pragma once
// MappingStore in this host's SQLite (funcd.db, table event_source_mappings).
#include <filesystem>
#include <mutex>

#include "funcd/event_sources/mapping_store.hpp"
#include "funcd/registry/sqlite.hpp"

namespace funcd {

class SqliteMappingStore final : public MappingStore {
public:
    // Creates or migrates the table. Mappings sealed under an older key are sealed again
    // under the current one here, before the registry drops keys nothing else uses (so
    // build it before the Registry).
    SqliteMappingStore(const std::filesystem::path& db_path, const EnvCipher& cipher);

    std::vector<StoredMapping> list() override;
    void put(const MappingConfig& c) override;
    bool remove(const std::string& uuid) override;
    bool save_checkpoint(const std::string& uuid, ChangePosition position) override;
    std::vector<MappingConfig> drop_function(const std::string& function) override;

private:
    std::optional<StoredMapping> read_row(sqlite::Statement& q, bool* stale);
    void write(const MappingConfig& c);

    std::mutex mutex_;
    const EnvCipher& cipher_;
    sqlite::Database db_;
};

}  // namespace funcd
