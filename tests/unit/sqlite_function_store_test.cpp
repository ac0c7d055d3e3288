// The function store's conformance suite (tests/state/function_store_conformance.hpp) on
// SQLite, and what the SQLite backend adds: data from before revisions existed.
#include "../state/function_store_conformance.hpp"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "funcd/registry/sqlite.hpp"
#include "funcd/state/sqlite_function_store.hpp"

namespace funcd::testing {
namespace {

class SqliteFunctionStoreConformance : public FunctionStoreConformance {
protected:
    void SetUp() override {
        std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-functions-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    // Each a connection of its own to the same database file.
    std::unique_ptr<FunctionStore> open() override { return std::make_unique<SqliteFunctionStore>(dir_ / "funcd.db"); }

    std::filesystem::path dir_;
};

FUNCD_FUNCTION_STORE_CONFORMANCE(SqliteFunctionStoreConformance)

// A database an older funcd wrote, without revisions: its rows are read, and changed by a
// writer that read them (at revision 1).
TEST_F(SqliteFunctionStoreConformance, RowsFromBeforeRevisionsAreReadAndChangedAtRevisionOne) {
    {
        sqlite::Database db(dir_ / "funcd.db");
        db.exec("CREATE TABLE function_records (name TEXT PRIMARY KEY, doc TEXT NOT NULL);"
                "CREATE TABLE layer_versions (name TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,"
                " PRIMARY KEY (name, version));"
                "INSERT INTO function_records VALUES ('old', 'OLD');"
                "INSERT INTO layer_versions VALUES ('deps', 4, 'DEPS4');");
    }
    auto store = open();
    const auto all = store->changes_since(0);
    ASSERT_EQ(all.functions.size(), 1u);
    EXPECT_EQ(all.functions[0].doc, "OLD");
    EXPECT_EQ(all.functions[0].revision, 1);
    ASSERT_EQ(all.layers.size(), 1u);
    EXPECT_EQ(all.layers[0].version, 4);
    EXPECT_FALSE(store->put_function("old", std::string("NEW"), 0)) << "it exists";
    const auto changed = store->put_function("old", std::string("NEW"), 1);
    ASSERT_TRUE(changed);
    EXPECT_GT(*changed, 1);
    EXPECT_EQ(store->add_layer("deps", [](std::int64_t v) { return std::to_string(v); }).version, 5);
    EXPECT_EQ(open()->changes_since(all.revision).functions.at(0).doc, "NEW") << "a second open upgrades nothing twice";
}

}  // namespace
}  // namespace funcd::testing
