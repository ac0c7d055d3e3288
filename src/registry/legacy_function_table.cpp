#include "funcd/registry/legacy_function_table.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/ids.hpp"
#include "funcd/registry/registry.hpp"
#include "funcd/registry/sqlite.hpp"

namespace funcd {

void migrate_legacy_function_table(const std::filesystem::path& db_path, FunctionStore& store,
                                   const EnvCipher& env_cipher) {
    sqlite::Database db(db_path);
    {
        sqlite::Statement exists(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'functions'");
        if (!exists.step()) return;
    }
    sqlite::Statement q(db, "SELECT name, version, config_json, code_sha256, code_size, last_modified_us FROM functions");
    std::size_t migrated = 0;
    while (q.step()) {
        const std::string name = q.column_text(0);
        try {
            auto latest = std::make_shared<FunctionVersion>();
            latest->config = config_from_json(name, nlohmann::json::parse(q.column_text(2)));
            const std::int64_t number = q.column_int(1);
            latest->generation = number;
            latest->code_sha256 = q.column_text(3);
            latest->code_size = q.column_int(4);
            latest->last_modified = from_unix_us(q.column_int(5));
            latest->revision_id = new_uuid();
            auto published = std::make_shared<FunctionVersion>(*latest);
            published->version = number;
            published->revision_id = new_uuid();

            FunctionRecord r;
            r.name = name;
            r.created = latest->last_modified;
            r.reserved_concurrency = latest->config.concurrency.reserved;
            r.default_provisioned = latest->config.concurrency.provisioned;
            r.latest = latest;
            r.versions.emplace(number, published);
            r.last_published = number;
            r.latest_published_as = number;
            r.revision_id = latest->revision_id;
            r.policy_revision_id = new_uuid();
            // A row migrated by a run that stopped before dropping the table is already there.
            if (store.put_function(name, sealed_record_document(r, env_cipher), 0)) ++migrated;
        } catch (const std::exception& e) {
            spdlog::error("registry: function {} has unreadable settings, not migrated: {}", name, e.what());
        }
    }
    q.reset();
    db.exec("DROP TABLE functions");
    spdlog::info("registry: {} functions migrated to versioned records", migrated);
}

}  // namespace funcd
