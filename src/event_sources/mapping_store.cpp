#include "funcd/event_sources/mapping_store.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace funcd {
namespace {

using nlohmann::json;

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

// The connection is sealed as EnvCipher seals a function's environment: in a document
// shaped as a function record whose one environment holds it, named after the mapping.
// The name is associated data, so a sealed connection opens only for its own mapping; a
// function's name cannot contain ':', so neither can it pass for a function's environment.
json sealing_document(const std::string& uuid, json env) {
    return {{"name", "event-source-mapping:" + uuid}, {"latest", {{"config", {{"env", std::move(env)}}}}}};
}

json seal_connection(const EnvCipher& cipher, const std::string& uuid, const std::string& connection) {
    json doc = sealing_document(uuid, {{"connection", connection}});
    cipher.seal(doc);
    return doc["latest"]["config"]["env"];
}

// The connection, and whether it should be sealed again (under the current key).
std::pair<std::string, bool> open_connection(const EnvCipher& cipher, const std::string& uuid, const json& sealed) {
    if (!sealed.is_object() || !sealed.contains("sealed"))
        throw std::runtime_error("its connection is not sealed");
    json doc = sealing_document(uuid, sealed);
    const bool stale = cipher.open(doc);
    return {doc["latest"]["config"]["env"].at("connection").get<std::string>(), stale};
}

}  // namespace

MappingStore::MappingStore(const std::filesystem::path& db_path, const EnvCipher& cipher)
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

std::optional<StoredMapping> MappingStore::read_row(sqlite::Statement& q, bool* stale) {
    const std::string uuid = q.column_text(0);
    try {
        json j = json::parse(q.column_text(1));
        auto [connection, old_key] = open_connection(cipher_, uuid, j.at("connection"));
        j["connection"] = std::move(connection);
        if (stale) *stale = old_key;
        StoredMapping m{mapping_config_from_stored_json(j), std::nullopt};
        if (!q.column_is_null(2))
            m.checkpoint = ChangePosition{static_cast<std::uint64_t>(q.column_int(2)),
                                          static_cast<std::uint32_t>(q.column_int(3))};
        return m;
    } catch (const std::exception& e) {
        spdlog::error("event sources: mapping {} is unreadable, skipped: {}", uuid, e.what());
        return std::nullopt;
    }
}

void MappingStore::write(const MappingConfig& c) {
    json j = to_stored_json(c);
    j["connection"] = seal_connection(cipher_, c.uuid, c.connection);
    sqlite::Statement q(db_, R"sql(
        INSERT INTO event_source_mappings (uuid, function, name, config_json) VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT(uuid) DO UPDATE SET function = ?2, name = ?3, config_json = ?4)sql");
    q.bind(1, c.uuid).bind(2, c.function).bind(3, c.name).bind(4, j.dump()).run();
}

std::vector<StoredMapping> MappingStore::list() {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "SELECT uuid, config_json, checkpoint_commit_lsn, checkpoint_ordinal "
                             "FROM event_source_mappings ORDER BY function, name");
    std::vector<StoredMapping> out;
    while (q.step())
        if (auto m = read_row(q, nullptr)) out.push_back(std::move(*m));
    return out;
}

void MappingStore::put(const MappingConfig& c) {
    std::lock_guard lock(mutex_);
    write(c);
}

bool MappingStore::remove(const std::string& uuid) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "DELETE FROM event_source_mappings WHERE uuid = ?1");
    q.bind(1, uuid).run();
    return db_.changes() > 0;
}

void MappingStore::save_checkpoint(const std::string& uuid, ChangePosition position) {
    std::lock_guard lock(mutex_);
    sqlite::Statement q(db_, "UPDATE event_source_mappings SET checkpoint_commit_lsn = ?2, checkpoint_ordinal = ?3 "
                             "WHERE uuid = ?1");
    // LSNs are below 2^63 in practice (PostgreSQL would need 8 EiB of WAL to pass it).
    q.bind(1, uuid)
        .bind(2, static_cast<std::int64_t>(position.commit_lsn))
        .bind(3, static_cast<std::int64_t>(position.ordinal))
        .run();
}

std::vector<MappingConfig> MappingStore::drop_function(const std::string& function) {
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
