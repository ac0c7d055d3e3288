// The mapping store's conformance suite (tests/state/mapping_store_conformance.hpp) on SQLite.
#include "../state/mapping_store_conformance.hpp"

#include "funcd/event_sources/sqlite_mapping_store.hpp"
#include "funcd/registry/sqlite.hpp"

namespace funcd::testing {
namespace {

class SqliteMappingStoreConformance : public MappingStoreConformance {
protected:
    std::unique_ptr<MappingStore> open(const EnvCipher& cipher) override {
        return std::make_unique<SqliteMappingStore>(dir_ / "funcd.db", cipher);
    }
    // One host: its checkpoints are its own.
    void hold(const std::string&) override {}
    std::string stored_text(const std::string& uuid) override {
        sqlite::Database db(dir_ / "funcd.db");
        sqlite::Statement q(db, "SELECT config_json FROM event_source_mappings WHERE uuid = ?1");
        q.bind(1, uuid);
        return q.step() ? q.column_text(0) : std::string();
    }
};

FUNCD_MAPPING_STORE_CONFORMANCE(SqliteMappingStoreConformance)

}  // namespace
}  // namespace funcd::testing
