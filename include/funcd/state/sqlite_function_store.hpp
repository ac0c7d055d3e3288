#pragma once
// FunctionStore on the single host's SQLite database (funcd.db): function_records and
// layer_versions as before revisions existed (a row of an older funcd is at revision 1), plus
// deleted_functions (what changes_since reports as deleted) and store_revisions (the counter).
#include <filesystem>
#include <mutex>

#include "funcd/registry/sqlite.hpp"
#include "funcd/state/function_store.hpp"

namespace funcd {

class SqliteFunctionStore final : public FunctionStore {
public:
    explicit SqliteFunctionStore(const std::filesystem::path& db_path);

    FunctionStoreChanges changes_since(std::int64_t revision) override;
    std::optional<std::int64_t> put_function(std::string_view name, const std::optional<std::string>& doc,
                                             std::int64_t expected) override;
    StoredLayer add_layer(std::string_view name,
                          const std::function<std::string(std::int64_t version)>& doc_for) override;
    std::optional<std::int64_t> put_layer(std::string_view name, std::int64_t version, const std::string& doc) override;

private:
    // The next revision; called in a write transaction, which orders the writers.
    std::int64_t next_revision();

    std::mutex mutex_;  // the connection is not shared between threads
    sqlite::Database db_;
};

}  // namespace funcd
