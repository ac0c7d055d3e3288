// The node store's conformance suite (tests/state/node_store_conformance.hpp) on SQLite.
#include "../state/node_store_conformance.hpp"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "funcd/state/sqlite_node_store.hpp"

namespace funcd::testing {
namespace {

class SqliteNodeStoreConformance : public NodeStoreConformance {
protected:
    void SetUp() override {
        std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-nodes-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    // Each a connection of its own to the same database file, as the other stores have.
    std::unique_ptr<NodeStore> open() override { return std::make_unique<SqliteNodeStore>(dir_ / "funcd.db"); }

    std::filesystem::path dir_;
};

FUNCD_NODE_STORE_CONFORMANCE(SqliteNodeStoreConformance)

}  // namespace
}  // namespace funcd::testing
