#pragma once
// FunctionStore and CodeBlobStore in the PostgreSQL database the nodes share
// (funcd_functions, funcd_layer_versions, funcd_code, funcd_code_chunks; pg_migrator.cpp).
// Every write notifies kStateChannel, so that the other nodes' listeners read the change at
// once (PgListener); their revision poll covers notifications lost while disconnected.
#include <string>

#include "funcd/state/code_blob_store.hpp"
#include "funcd/state/function_store.hpp"
#include "funcd/state/pg_session.hpp"

namespace funcd {

// The channel a write of shared state notifies; the payload names what changed ("functions").
inline constexpr const char* kStateChannel = "funcd_state";

class PostgresFunctionStore final : public FunctionStore {
public:
    // Connects now (throws PgError). The schema must be migrated (pg_migrator.hpp).
    explicit PostgresFunctionStore(std::string conninfo);

    FunctionStoreChanges changes_since(std::int64_t revision) override;
    std::optional<std::int64_t> put_function(std::string_view name, const std::optional<std::string>& doc,
                                             std::int64_t expected) override;
    StoredLayer add_layer(std::string_view name,
                          const std::function<std::string(std::int64_t version)>& doc_for) override;
    std::optional<std::int64_t> put_layer(std::string_view name, std::int64_t version, const std::string& doc) override;

private:
    PgSession session_;
};

class PostgresCodeBlobStore final : public CodeBlobStore {
public:
    explicit PostgresCodeBlobStore(std::string conninfo);

    bool touch(const std::string& sha256) override;
    void put(const std::string& sha256, std::string_view zip) override;
    std::optional<std::string> get(const std::string& sha256) override;
    std::size_t collect(const std::set<std::string>& in_use, std::chrono::seconds grace) override;

private:
    PgSession session_;
};

}  // namespace funcd
