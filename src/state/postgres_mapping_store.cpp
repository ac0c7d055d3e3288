#include "funcd/state/postgres_mapping_store.hpp"

#include <cstdint>

#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/state/postgres_function_store.hpp"

namespace funcd {
namespace {

// SQLSTATE unique_violation: another mapping of the function has the name.
constexpr std::string_view kUniqueViolation = "23505";

constexpr const char* kMappingColumns = "uuid, config_json, checkpoint_commit_lsn, checkpoint_ordinal";

void notify_mappings(PgConnection& conn) {
    conn.query("SELECT pg_notify($1, 'mappings')", {std::string(kStateChannel)});
}

// The readable rows of `rows` (an unreadable one is logged and skipped), and the configs
// sealed under an older key when `stale` is given.
std::vector<StoredMapping> mappings_from(const PgRows& rows, const EnvCipher& cipher,
                                         std::vector<std::pair<MappingConfig, std::string>>* stale = nullptr) {
    std::vector<StoredMapping> out;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        const std::string uuid = rows.at(i, "uuid").value_or("");
        const std::string stored = rows.at(i, "config_json").value_or("");
        try {
            auto [config, old_key] = open_mapping_json(cipher, uuid, stored);
            if (old_key && stale) stale->emplace_back(config, stored);
            StoredMapping m{std::move(config), std::nullopt};
            if (const auto& lsn = rows.at(i, "checkpoint_commit_lsn"))
                m.checkpoint = ChangePosition{static_cast<std::uint64_t>(pg_int(lsn)),
                                              static_cast<std::uint32_t>(pg_int(rows.at(i, "checkpoint_ordinal")))};
            out.push_back(std::move(m));
        } catch (const std::exception& e) {
            spdlog::error("event sources: mapping {} is unreadable, skipped: {}", uuid, e.what());
        }
    }
    return out;
}

}  // namespace

PostgresMappingStore::PostgresMappingStore(std::string conninfo, std::string node_id, const EnvCipher& cipher)
    : session_(std::move(conninfo)), node_id_(std::move(node_id)), cipher_(cipher) {
    std::vector<std::pair<MappingConfig, std::string>> stale;
    session_.run([&](PgConnection& conn) {
        mappings_from(conn.query(std::string("SELECT ") + kMappingColumns + " FROM funcd_event_source_mappings"),
                      cipher_, &stale);
    });
    std::size_t resealed = 0;
    for (const auto& [config, was] : stale)
        // Only over what was read: a change another node made since is newer, and sealed
        // under the key that node has (the keyring is shared).
        resealed += session_.run([&](PgConnection& conn) {
            return !conn.query("UPDATE funcd_event_source_mappings SET config_json = $3 "
                               "WHERE uuid = $1 AND config_json = $2 RETURNING uuid",
                               {config.uuid, was, sealed_mapping_json(cipher_, config).dump()})
                        .empty();
        });
    if (resealed > 0)
        spdlog::info("event sources: the connections of {} mappings sealed with key {}", resealed,
                     cipher_.current_key_id());
}

std::vector<StoredMapping> PostgresMappingStore::list() {
    const PgRows rows = session_.run([](PgConnection& conn) {
        return conn.query(std::string("SELECT ") + kMappingColumns +
                          " FROM funcd_event_source_mappings ORDER BY function, name");
    });
    return mappings_from(rows, cipher_);
}

void PostgresMappingStore::put(const MappingConfig& c) {
    const std::string stored = sealed_mapping_json(cipher_, c).dump();
    try {
        session_.transaction([&](PgConnection& conn) {
            conn.query("INSERT INTO funcd_event_source_mappings (uuid, function, name, config_json) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT (uuid) DO UPDATE SET function = excluded.function, "
                       "name = excluded.name, config_json = excluded.config_json",
                       {c.uuid, c.function, c.name, stored});
            notify_mappings(conn);
        });
    } catch (const PgError& e) {
        if (e.sqlstate() != kUniqueViolation) throw;
        throw ApiError::conflict("function '" + c.function + "' already has an event source mapping named '" + c.name +
                                 "' (made through another node)");
    }
}

bool PostgresMappingStore::remove(const std::string& uuid) {
    return session_.transaction([&](PgConnection& conn) {
        const bool removed =
            !conn.query("DELETE FROM funcd_event_source_mappings WHERE uuid = $1 RETURNING uuid", {uuid}).empty();
        conn.query("DELETE FROM funcd_leases WHERE name = $1", {mapping_lease_name(uuid)});
        if (removed) notify_mappings(conn);
        return removed;
    });
}

bool PostgresMappingStore::save_checkpoint(const std::string& uuid, ChangePosition position) {
    return session_.run([&](PgConnection& conn) {
        return !conn.query("UPDATE funcd_event_source_mappings SET checkpoint_commit_lsn = $2, checkpoint_ordinal = $3 "
                           "WHERE uuid = $1 AND EXISTS (SELECT 1 FROM funcd_leases WHERE name = $4 AND holder = $5 "
                           "AND expires_at > now()) RETURNING uuid",
                           {uuid, std::to_string(position.commit_lsn), std::to_string(position.ordinal),
                            mapping_lease_name(uuid), node_id_})
                    .empty();
    });
}

std::vector<MappingConfig> PostgresMappingStore::drop_function(const std::string& function) {
    const PgRows rows = session_.transaction([&](PgConnection& conn) {
        PgRows dropped = conn.query(std::string("DELETE FROM funcd_event_source_mappings WHERE function = $1 RETURNING ") +
                                        kMappingColumns,
                                    {function});
        for (std::size_t i = 0; i < dropped.rows.size(); ++i)
            conn.query("DELETE FROM funcd_leases WHERE name = $1", {mapping_lease_name(dropped.at(i, "uuid").value_or(""))});
        if (!dropped.empty()) notify_mappings(conn);
        return dropped;
    });
    std::vector<MappingConfig> out;
    for (auto& m : mappings_from(rows, cipher_)) out.push_back(std::move(m.config));
    return out;
}

}  // namespace funcd
