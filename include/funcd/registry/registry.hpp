#pragma once
// Deployed functions: the current version of each, durable in SQLite and mirrored in
// memory for the invoke path. Thread-safe: deploys run off the event loop.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "funcd/registry/code_store.hpp"
#include "funcd/registry/function_config.hpp"
#include "funcd/registry/sqlite.hpp"

namespace funcd {

using FunctionPtr = std::shared_ptr<const FunctionVersion>;

struct DeployResult {
    FunctionPtr function;
    bool created = false;  // no earlier version existed
};

class Registry {
public:
    // `max_concurrency` bounds the functions' reserved concurrency, in sum.
    Registry(const std::filesystem::path& db_path, CodeStore& code, int max_concurrency);

    // Stores the code (if any), checks it fits the runtime, and commits version N+1.
    // Atomic: on any error (ApiError for the client's, std::exception otherwise) the
    // previous version stays current and nothing new is referenced.
    DeployResult deploy(DeployRequest request);

    // Changes a function's concurrency settings in place: same version, same code, no new
    // workers for the settings alone. Throws ApiError: 404 unknown function, 400 over a limit.
    FunctionPtr set_concurrency(std::string_view name, const ConcurrencySettings& settings);

    // Removes the function; returns the version that was current, or null if unknown.
    FunctionPtr remove(std::string_view name);

    FunctionPtr find(std::string_view name) const;
    std::vector<FunctionPtr> list() const;  // by name

    // Code hashes referenced by current versions.
    std::set<std::string> code_in_use() const;

    // Removes stored code that no current version and nothing in `also_in_use` (code of
    // workers still running) references. Runs under the deploy lock, so code a deploy
    // has stored but not yet committed is never taken.
    void collect_code_garbage(const std::set<std::string>& also_in_use);

private:
    void load();
    void commit(const FunctionVersion& v);  // the durable write of a deploy
    // Throws ApiError(400) if `settings` for `name` would take the reserved total over
    // max_concurrency_. Called under deploy_mutex_.
    void check_concurrency(std::string_view name, const ConcurrencySettings& settings) const;

    CodeStore& code_;
    const int max_concurrency_;
    sqlite::Database db_;
    std::mutex deploy_mutex_;  // one deploy or delete at a time: versions are assigned in order
    mutable std::mutex map_mutex_;
    std::map<std::string, FunctionPtr, std::less<>> current_;
};

}  // namespace funcd
