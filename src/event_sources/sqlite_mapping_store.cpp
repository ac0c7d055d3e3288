#include "funcd/event_sources/sqlite_mapping_store.hpp"

#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"

#include <nlohmann/json.hpp>

namespace funcd {
namespace {

// One row per mapping: its settings as JSON (the connection sealed), its checkpoint in
// columns of their own so saving one is a small UPDATE.
constexpr std::string_view kMappingSchema = R"sql(
CREATE TABLE IF NOT EXISTS event_source_mappings (
    uuid TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    config_json TEXT NOT NULL,
    checkpoint_commit_lsn INTEGER,
    checkpoint_ordinal INTEGER,
    UNIQUE (function, name)
);
)sql";

}  // namespace

SqliteMappingStore::SqliteMappingStore(const std::filesystem::path& db_path, const EnvCipher& cipher)
    : cipher_(cipher), db_(db_path) {
    db_.exec(kMappingSchema);
    std::vector<MappingConfig> reseal;
    {
        sqlite::Statement q(db_, "SELECT uuid, config_json, checkpoint_commit_lsn, checkpoint_ordinal "
                                 "FROM event_source_mappings");
        while (q.step()) {
            bool stale = false;
            if (auto m = read_row(q, &stale); m && stale) reseal.push_back(m->config);
        }
    }
    if (reseal.empty()) return;
    sqlite::Transaction tx(db_);
    for (const auto& c : reseal) write(c);
    tx.commit();
    spdlog::info("event sources: the connections of {} mappings sealed with key {}", reseal.size(),
                 cipher_.current_key_id());
}

std::optional<StoredMapping> SqliteMappingStore::read_row(sqlite::Statement& q, bool* stale) {
    const std::string uuid = q.column_text(0);
    try {
        auto [config, old_key] = open_mapping_json(cipher_, uuid, q.column_text(1));
        if (stale) *stale = old_key;
        StoredMapping m{std::move(config), std::nullopt};
        if (!q.column_is_null(2))
            m.checkpoint = ChangePosition{static_cast<std::uint64_t>(q.column_int(2)),
                                          static_cast<std::uint32_t>(q.column_int(3))};
        return m;
    } catch (const std::exception& e) {
        spdlog::error("event sources: mapping {} is unreadable, skipped: {}", uuid, e.what());
        return std::nullopt;
    }
}

void SqliteMappingStore::write(const MappingConfig& c) {
    {
        sqlite::Statement taken(db_, "SELECT uuid FROM event_source_mappings WHERE function = ?1 AND name = ?2 "
                                     "AND uuid != ?3");
        taken.bind(1, c.function).bind(2, c.name).bind(3, c.uuid);
        if (taken.step())
            throw ApiError::conflict("function '" + c.function + "' already has an event source mapping named '" +
                                     c.name + "'");
    }
    const nlohmann::json j = sealed_mapping_json(cipher_, c);
    sqlite::Statement q(db_, R"sql(
        INSERT INTO event_source_mappings (uuid, function, name, config_json) VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT(uuid) DO UPDATE SET function = ?2, name = ?3, config_json = ?4)sql");
    q.bind(1, c.uuid).bind(2, c.function).bind(3, c.name).bind(4, j.dump()).run();
}

std::vector<StoredMapping> SqliteMappingStore::list() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT uuid, config_json, checkpoint_commit_lsn, checkpoint_ordinal "
                             "FROM event_source_mappings ORDER BY function, name");
    std::vector<StoredMapping> out;
    while (q.step())
        if (auto m = read_row(q, nullptr)) out.push_back(std::move(*m));
    return out;
}

void SqliteMappingStore::put(const MappingConfig& c) {
    std::lock_guard lock(mutex_);
    write(c);
}

bool SqliteMappingStore::remove(const std::string& uuid) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "DELETE FROM event_source_mappings WHERE uuid = ?1");
    q.bind(1, uuid).run();
    return db_.changes() > 0;
}

bool SqliteMappingStore::save_checkpoint(const std::string& uuid, ChangePosition position) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "UPDATE event_source_mappings SET checkpoint_commit_lsn = ?2, checkpoint_ordinal = ?3 "
                             "WHERE uuid = ?1");
    // LSNs are below 2^63 in practice (PostgreSQL would need 8 EiB of WAL to pass it).
    q.bind(1, uuid)
        .bind(2, static_cast<std::int64_t>(position.commit_lsn))
        .bind(3, static_cast<std::int64_t>(position.ordinal))
        .run();
    return db_.changes() > 0;
}

std::vector<MappingConfig> SqliteMappingStore::drop_function(const std::string& function) {
    std::lock_guard lock(mutex_);
    std::vector<MappingConfig> dropped;
    sqlite::Transaction tx(db_);
    {
        sqlite::Statement q(db_, "SELECT uuid, config_json, checkpoint_commit_lsn, checkpoint_ordinal "
                                 "FROM event_source_mappings WHERE function = ?1");
        q.bind(1, function);
        while (q.step())
            if (auto m = read_row(q, nullptr)) dropped.push_back(std::move(m->config));
    }
    sqlite::Statement del(db_, "DELETE FROM event_source_mappings WHERE function = ?1");
    del.bind(1, function).run();
    tx.commit();
    return dropped;
}

}  // namespace funcd
