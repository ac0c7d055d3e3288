#pragma once
// What every FunctionStore backend does (include/funcd/state/function_store.hpp), as one
// suite: a fixture deriving from FunctionStoreConformance says how to open a store on its
// backend (each open() is another node's handle on the same state), and
// FUNCD_FUNCTION_STORE_CONFORMANCE(Fixture) defines the tests for it. SQLite runs it among the
// unit tests, PostgreSQL among the postgres tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "funcd/state/function_store.hpp"

namespace funcd::testing {

class FunctionStoreConformance : public ::testing::Test {
protected:
    virtual std::unique_ptr<FunctionStore> open() = 0;

    static std::vector<std::string> names(const std::vector<StoredFunction>& functions) {
        std::vector<std::string> out;
        for (const auto& f : functions) out.push_back(f.name);
        std::sort(out.begin(), out.end());
        return out;
    }
    static const StoredFunction* named(const FunctionStoreChanges& c, const std::string& name) {
        for (const auto& f : c.functions)
            if (f.name == name) return &f;
        return nullptr;
    }
};

#define FUNCD_FUNCTION_STORE_CONFORMANCE(Fixture)                                                                \
    TEST_F(Fixture, AFunctionIsCreatedOnlyWhenAbsentAndChangedOnlyAtTheRevisionItsWriterRead) {                \
        auto store = open();                                                                                   \
        const auto created = store->put_function("f", std::string("{\"v\":1}"), 0);                            \
        ASSERT_TRUE(created);                                                                                  \
        EXPECT_FALSE(store->put_function("f", std::string("{\"v\":\"again\"}"), 0)) << "it exists now";       \
        const auto changed = store->put_function("f", std::string("{\"v\":2}"), *created);                     \
        ASSERT_TRUE(changed);                                                                                  \
        EXPECT_GT(*changed, *created);                                                                         \
        EXPECT_FALSE(store->put_function("f", std::string("{\"v\":\"stale\"}"), *created))                    \
            << "a writer that read an older revision is refused";                                              \
        EXPECT_FALSE(store->put_function("f", std::nullopt, *created)) << "deletes too";                       \
        const auto all = store->changes_since(0);                                                              \
        ASSERT_EQ(all.functions.size(), 1u);                                                                   \
        EXPECT_EQ(all.functions[0].doc, "{\"v\":2}") << "refused writes wrote nothing";                       \
        EXPECT_EQ(all.functions[0].revision, *changed);                                                        \
        EXPECT_GE(all.revision, *changed);                                                                     \
        EXPECT_FALSE(store->put_function("ghost", std::nullopt, 0)) << "nothing to delete";                    \
    }                                                                                                          \
                                                                                                               \
    TEST_F(Fixture, ChangesSinceARevisionAreWhatWasWrittenAfterItDeletionsIncluded) {                           \
        auto writer = open();                                                                                  \
        auto reader = open();                                                                                  \
        const auto a = writer->put_function("a", std::string("A1"), 0);                                        \
        const auto b = writer->put_function("b", std::string("B1"), 0);                                        \
        ASSERT_TRUE(a && b);                                                                                   \
        const auto first = reader->changes_since(0);                                                           \
        EXPECT_EQ(names(first.functions), (std::vector<std::string>{"a", "b"}));                               \
        EXPECT_TRUE(first.deleted.empty());                                                                    \
        EXPECT_TRUE(reader->changes_since(first.revision).functions.empty()) << "nothing new";                \
        ASSERT_TRUE(writer->put_function("a", std::string("A2"), *a));                                         \
        ASSERT_TRUE(writer->put_function("b", std::nullopt, *b));                                              \
        ASSERT_TRUE(writer->put_function("c", std::string("C1"), 0));                                          \
        const auto second = reader->changes_since(first.revision);                                             \
        EXPECT_EQ(names(second.functions), (std::vector<std::string>{"a", "c"}));                              \
        EXPECT_EQ(named(second, "a")->doc, "A2");                                                              \
        EXPECT_EQ(second.deleted, std::vector<std::string>{"b"});                                              \
        EXPECT_GT(second.revision, first.revision);                                                            \
        EXPECT_EQ(names(reader->changes_since(0).functions), (std::vector<std::string>{"a", "c"}))             \
            << "a deleted function is not in the whole store";                                                 \
        /* Created again after its deletion: a change, no longer a deletion. */                                \
        ASSERT_TRUE(writer->put_function("b", std::string("B2"), 0));                                          \
        const auto third = reader->changes_since(second.revision);                                             \
        EXPECT_EQ(names(third.functions), std::vector<std::string>{"b"});                                      \
        EXPECT_TRUE(third.deleted.empty());                                                                    \
    }                                                                                                          \
                                                                                                               \
    TEST_F(Fixture, TwoWritersChangingOneFunctionAtOnceNeverBothWinTheSameRevision) {                          \
        auto setup = open();                                                                                   \
        auto start = setup->put_function("counter", std::string("0"), 0);                                      \
        ASSERT_TRUE(start);                                                                                    \
        /* Each writer adds its increments by read, change, compare-and-swap, again on a refusal. */          \
        constexpr int kIncrements = 25;                                                                        \
        auto add = [this](int n) {                                                                             \
            auto store = open();                                                                               \
            for (int i = 0; i < n; ++i) {                                                                      \
                while (true) {                                                                                 \
                    const auto now = store->changes_since(0);                                                  \
                    const StoredFunction* f = named(now, "counter");                                           \
                    const int value = std::stoi(f->doc);                                                       \
                    if (store->put_function("counter", std::to_string(value + 1), f->revision)) break;         \
                }                                                                                              \
            }                                                                                                  \
        };                                                                                                     \
        std::thread first(add, kIncrements);                                                                   \
        std::thread second(add, kIncrements);                                                                  \
        first.join();                                                                                          \
        second.join();                                                                                         \
        EXPECT_EQ(named(setup->changes_since(0), "counter")->doc, std::to_string(2 * kIncrements))            \
            << "no increment lost";                                                                            \
    }                                                                                                          \
                                                                                                               \
    TEST_F(Fixture, LayerVersionsAreNumberedByTheStoreAndNeverGivenTwice) {                                     \
        auto first = open();                                                                                   \
        auto second = open();                                                                                  \
        const auto v1 = first->add_layer("deps", [](std::int64_t v) { return "deps v" + std::to_string(v); }); \
        const auto v2 = second->add_layer("deps", [](std::int64_t v) { return "deps v" + std::to_string(v); });\
        const auto other = first->add_layer("other", [](std::int64_t v) { return std::to_string(v); });        \
        EXPECT_EQ(v1.version, 1);                                                                              \
        EXPECT_EQ(v2.version, 2) << "the second node's publish is numbered after the first's";                \
        EXPECT_EQ(v2.doc, "deps v2");                                                                          \
        EXPECT_EQ(other.version, 1) << "numbers are per layer";                                                \
        const auto before = second->changes_since(0);                                                          \
        ASSERT_EQ(before.layers.size(), 3u);                                                                   \
        const auto marked = first->put_layer("deps", 2, "deps v2 deleted");                                    \
        ASSERT_TRUE(marked);                                                                                   \
        EXPECT_FALSE(first->put_layer("deps", 9, "x")) << "no such version";                                   \
        const auto after = second->changes_since(before.revision);                                             \
        ASSERT_EQ(after.layers.size(), 1u);                                                                    \
        EXPECT_EQ(after.layers[0].version, 2);                                                                 \
        EXPECT_EQ(after.layers[0].doc, "deps v2 deleted");                                                     \
        /* A deleted version keeps its number: the next is 3. */                                               \
        EXPECT_EQ(second->add_layer("deps", [](std::int64_t v) { return std::to_string(v); }).version, 3);     \
    }                                                                                                          \
                                                                                                               \
    TEST_F(Fixture, ConcurrentPublishersOfOneLayerGetDistinctNumbers) {                                         \
        std::vector<std::int64_t> got[2];                                                                      \
        auto publish = [this](std::vector<std::int64_t>* out) {                                                \
            auto store = open();                                                                               \
            for (int i = 0; i < 15; ++i)                                                                       \
                out->push_back(store->add_layer("shared", [](std::int64_t v) { return std::to_string(v); }).version); \
        };                                                                                                     \
        std::thread a(publish, &got[0]);                                                                       \
        std::thread b(publish, &got[1]);                                                                       \
        a.join();                                                                                              \
        b.join();                                                                                              \
        std::set<std::int64_t> all(got[0].begin(), got[0].end());                                              \
        all.insert(got[1].begin(), got[1].end());                                                              \
        EXPECT_EQ(all.size(), 30u);                                                                            \
        EXPECT_EQ(*all.begin(), 1);                                                                            \
        EXPECT_EQ(*all.rbegin(), 30);                                                                          \
    }

}  // namespace funcd::testing
