// The event store's conformance suite (tests/state/event_store_conformance.hpp) on SQLite.
#include "../state/event_store_conformance.hpp"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "funcd/dispatch/sqlite_event_store.hpp"

namespace funcd::testing {
namespace {

class SqliteEventStoreConformance : public EventStoreConformance {
protected:
    void SetUp() override {
        std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-events-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::unique_ptr<EventStore> open() override { return std::make_unique<SqliteEventStore>(dir_ / "funcd.db"); }

    std::filesystem::path dir_;
};

FUNCD_EVENT_STORE_CONFORMANCE(SqliteEventStoreConformance)

TEST_F(SqliteEventStoreConformance, ASingleHostHasNothingToRescue) {
    auto store = open();
    store->enqueue(event("mine", "fn"));
    EXPECT_FALSE(store->shared());
    store->renew_claims();
    EXPECT_TRUE(open()->rescue(100).empty());
}

}  // namespace
}  // namespace funcd::testing
