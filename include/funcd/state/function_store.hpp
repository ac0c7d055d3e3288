#pragma once
// Where deployed functions and published layers are kept: one document per function and
// one per layer version, opaque here (the registry's JSON, every environment sealed). One
// interface, two backends: SQLite for a single host (sqlite_function_store.hpp), PostgreSQL
// for nodes that share it (postgres_function_store.hpp); tests/state/function_store_conformance.hpp
// holds them to the same behaviour.
//
// Every write takes the store's next revision, and writes are ordered: a reader that has seen
// revision R learns everything after it from changes_since(R), deletions included. That is
// how a node's registry follows the changes other nodes make. A function is written only if
// it is still at the revision its writer read (compare and swap), so two nodes changing one
// function at once cannot lose either change; version numbers stay unique for the same reason.
//
// Calls block (a database round trip): blocking and bulk pools, never the loop.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace funcd {

struct StoredFunction {
    std::string name;
    std::string doc;
    std::int64_t revision = 0;  // the store's revision when it was last written
};

struct StoredLayer {
    std::string name;
    std::int64_t version = 0;
    std::string doc;
    std::int64_t revision = 0;
};

// What changed after some revision, up to `revision`.
struct FunctionStoreChanges {
    std::vector<StoredFunction> functions;  // created or changed
    std::vector<std::string> deleted;       // functions deleted (and not created again)
    std::vector<StoredLayer> layers;        // published or changed (marked deleted)
    std::int64_t revision = 0;              // pass it to the next changes_since
};

class FunctionStore {
public:
    virtual ~FunctionStore() = default;

    // Everything written after `revision`; changes_since(0) is the whole store.
    virtual FunctionStoreChanges changes_since(std::int64_t revision) = 0;

    // Writes function `name`'s document (nullopt deletes it) if the function is still as its
    // writer read it: at revision `expected`, or absent when `expected` is 0. Returns the
    // write's revision, or nullopt when another writer changed the function first (nothing
    // is written then; read the changes and try again).
    virtual std::optional<std::int64_t> put_function(std::string_view name, const std::optional<std::string>& doc,
                                                     std::int64_t expected) = 0;

    // Publishes layer `name`'s next version: one above every version it ever had, deleted
    // ones included (a number is never given twice). `doc_for(version)` is its document.
    virtual StoredLayer add_layer(std::string_view name,
                                  const std::function<std::string(std::int64_t version)>& doc_for) = 0;
    // Replaces an existing layer version's document (to mark it deleted); returns the
    // write's revision, or nullopt when there is no such version.
    virtual std::optional<std::int64_t> put_layer(std::string_view name, std::int64_t version,
                                                  const std::string& doc) = 0;
};

}  // namespace funcd
