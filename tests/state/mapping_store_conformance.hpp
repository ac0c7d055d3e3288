#pragma once
// What every MappingStore backend does (include/funcd/event_sources/mapping_store.hpp), as
// one suite: a fixture deriving from MappingStoreConformance says how to open a store on its
// backend with a given keyring, how to let this node move a mapping's checkpoint, and how to
// read a mapping's stored text; FUNCD_MAPPING_STORE_CONFORMANCE(Fixture) defines the tests.
// SQLite runs it among the unit tests, PostgreSQL among the postgres tests.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "funcd/common/api_error.hpp"
#include "funcd/event_sources/mapping_store.hpp"
#include "funcd/registry/env_cipher.hpp"

namespace funcd::testing {

class MappingStoreConformance : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-mappings-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        cipher_ = std::make_unique<EnvCipher>(EnvCipher::load(keys()));
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    virtual std::unique_ptr<MappingStore> open(const EnvCipher& cipher) = 0;
    // Lets this node move `uuid`'s checkpoint (nodes sharing a database: it takes the lease).
    virtual void hold(const std::string& uuid) = 0;
    // The mapping's config as stored, verbatim.
    virtual std::string stored_text(const std::string& uuid) = 0;

    std::filesystem::path keys() const { return dir_ / "env.keys"; }

    static MappingConfig mapping(const std::string& uuid, const std::string& function, const std::string& name) {
        MappingConfig c;
        c.uuid = uuid;
        c.function = function;
        c.name = name;
        c.connection = "host=db.internal user=app password=hunter2-secret dbname=shop";
        c.tables = {"public.orders"};
        c.batch_size = 25;
        return c;
    }

    std::filesystem::path dir_;
    std::unique_ptr<EnvCipher> cipher_;
};

#define FUNCD_MAPPING_STORE_CONFORMANCE(Fixture)                                                                \
    TEST_F(Fixture, MappingsComeBackWholeInOrderAndAChangeKeepsTheCheckpoint) {                                 \
        auto store = open(*cipher_);                                                                            \
        store->put(mapping("u-2", "thumb", "orders"));                                                          \
        store->put(mapping("u-1", "resize", "orders"));                                                         \
        auto all = store->list();                                                                               \
        ASSERT_EQ(all.size(), 2u);                                                                              \
        EXPECT_EQ(all[0].config.function, "resize") << "by function, then name";                                \
        EXPECT_EQ(all[0].config.connection, mapping("u-1", "resize", "orders").connection);                     \
        EXPECT_EQ(to_stored_json(all[0].config), to_stored_json(mapping("u-1", "resize", "orders")));           \
        EXPECT_FALSE(all[0].checkpoint);                                                                        \
        hold("u-1");                                                                                            \
        EXPECT_TRUE(store->save_checkpoint("u-1", ChangePosition{0x16B374D848ull, 3}));                         \
        MappingConfig changed = mapping("u-1", "resize", "orders");                                             \
        changed.batch_size = 7;                                                                                 \
        store->put(changed);                                                                                    \
        all = open(*cipher_)->list();                                                                           \
        ASSERT_EQ(all.size(), 2u);                                                                              \
        EXPECT_EQ(all[0].config.batch_size, 7);                                                                 \
        ASSERT_TRUE(all[0].checkpoint) << "a change of settings keeps where delivery got to";                   \
        EXPECT_EQ(all[0].checkpoint->commit_lsn, 0x16B374D848ull);                                              \
        EXPECT_EQ(all[0].checkpoint->ordinal, 3u);                                                              \
        EXPECT_FALSE(all[1].checkpoint);                                                                        \
    }                                                                                                           \
                                                                                                                \
    TEST_F(Fixture, TheConnectionIsSealedAtRestForItsOwnMappingAlone) {                                         \
        auto store = open(*cipher_);                                                                            \
        store->put(mapping("u-1", "resize", "orders"));                                                         \
        const std::string text = stored_text("u-1");                                                            \
        ASSERT_FALSE(text.empty());                                                                             \
        EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;                                             \
        EXPECT_NE(text.find("sealed"), std::string::npos) << text;                                              \
        /* Sealed for u-1: it does not open as another mapping's. */                                           \
        EXPECT_ANY_THROW(open_mapping_json(*cipher_, "u-2", text));                                             \
        EXPECT_EQ(open_mapping_json(*cipher_, "u-1", text).first.connection,                                    \
                  mapping("u-1", "resize", "orders").connection);                                               \
    }                                                                                                           \
                                                                                                                \
    TEST_F(Fixture, ANameTakenByAnotherMappingOfTheFunctionIsAConflict) {                                       \
        auto store = open(*cipher_);                                                                            \
        store->put(mapping("u-1", "resize", "orders"));                                                         \
        try {                                                                                                   \
            store->put(mapping("u-9", "resize", "orders"));                                                     \
            ADD_FAILURE() << "two mappings of one function with one name";                                      \
        } catch (const ApiError& e) {                                                                           \
            EXPECT_EQ(e.status(), 409) << e.what();                                                             \
        }                                                                                                       \
        store->put(mapping("u-9", "thumb", "orders"));                                                          \
        EXPECT_EQ(store->list().size(), 2u);                                                                    \
    }                                                                                                           \
                                                                                                                \
    TEST_F(Fixture, RemovedAndDroppedMappingsGoAndTheirCheckpointsCannotMove) {                                 \
        auto store = open(*cipher_);                                                                            \
        store->put(mapping("u-1", "resize", "orders"));                                                         \
        store->put(mapping("u-2", "resize", "refunds"));                                                        \
        store->put(mapping("u-3", "thumb", "orders"));                                                          \
        EXPECT_TRUE(store->remove("u-3"));                                                                      \
        EXPECT_FALSE(store->remove("u-3"));                                                                     \
        hold("u-3");                                                                                            \
        EXPECT_FALSE(store->save_checkpoint("u-3", ChangePosition{1, 0})) << "the mapping is gone";             \
        const auto dropped = store->drop_function("resize");                                                    \
        ASSERT_EQ(dropped.size(), 2u);                                                                          \
        EXPECT_EQ(dropped[0].connection, mapping("u-1", "resize", "orders").connection)                         \
            << "returned opened, to drop their sources";                                                        \
        EXPECT_TRUE(store->list().empty());                                                                     \
        EXPECT_TRUE(store->drop_function("resize").empty());                                                    \
    }                                                                                                           \
                                                                                                                \
    TEST_F(Fixture, MappingsSealedUnderAnOlderKeyAreSealedAgainWhenTheStoreOpens) {                             \
        open(*cipher_)->put(mapping("u-1", "resize", "orders"));                                                \
        EnvCipher::rotate(keys());                                                                              \
        const EnvCipher rotated = EnvCipher::load(keys());                                                      \
        open(rotated);                                                                                          \
        /* Only the new key left: the mapping still opens. */                                                  \
        std::string first_line;                                                                                 \
        {                                                                                                       \
            std::ifstream in(keys());                                                                           \
            std::getline(in, first_line);                                                                       \
        }                                                                                                       \
        const auto current_only = dir_ / "current.keys";                                                        \
        std::ofstream(current_only) << first_line << "\n";                                                      \
        std::filesystem::permissions(current_only, std::filesystem::perms::owner_read |                         \
                                                       std::filesystem::perms::owner_write);                    \
        const EnvCipher current = EnvCipher::load(current_only);                                                \
        const auto all = open(current)->list();                                                                 \
        ASSERT_EQ(all.size(), 1u);                                                                              \
        EXPECT_EQ(all[0].config.connection, mapping("u-1", "resize", "orders").connection);                     \
    }

}  // namespace funcd::testing
