#pragma once
// Deployed functions and published layers: durable in a FunctionStore (one JSON document per
// function, one per layer version; SQLite on a single host, PostgreSQL shared by nodes) and
// mirrored in memory for the invoke path. Thread-safe: changes run off the event loop, one at
// a time, each committed before it becomes visible; a change that fails leaves everything as
// it was. Changes other nodes made are read by refresh().
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "funcd/registry/env_cipher.hpp"
#include "funcd/registry/code_store.hpp"
#include "funcd/registry/function_record.hpp"
#include "funcd/registry/layer_version.hpp"
#include "funcd/registry/layer_views.hpp"
#include "funcd/state/code_blob_store.hpp"
#include "funcd/state/function_store.hpp"

namespace funcd {

// How often a node looks for shared code zips to remove: they wait an hour anyway
// (kSharedCodeGrace), and every node's changes and drained pools ask for a collection.
inline constexpr std::chrono::minutes kSharedCodeCollectInterval{10};

class Registry;

// What a change of one function works with, under the registry's write lock.
class RecordChange {
public:
    // A copy of the function's record to edit; null when the function does not exist.
    // Set it to create the function; reset it to delete the function.
    std::shared_ptr<FunctionRecord> record;

    // Stores code for this change; if the change fails, code it newly stored is removed.
    StoredCode put_code(std::string_view zip);
    // A layer version that exists and is not deleted, or null.
    LayerVersionPtr layer(std::string_view name, std::int64_t version) const;
    // The merged view of `layers` (built if needed).
    std::filesystem::path layer_view(const std::vector<LayerRef>& layers);

private:
    friend class Registry;
    RecordChange(Registry& registry, std::shared_ptr<FunctionRecord> r) : record(std::move(r)), registry_(registry) {}
    Registry& registry_;
    std::vector<StoredCode> stored_;
};

// What refresh() found other writers changed.
struct RegistryChanges {
    std::vector<FunctionRecordPtr> changed;  // created or changed, as they are now
    std::vector<std::string> deleted;
    bool empty() const { return changed.empty() && deleted.empty(); }
};

// A function's document as the store keeps it: to_json(record) with every environment sealed.
std::string sealed_record_document(const FunctionRecord& record, const EnvCipher& env_cipher);

class Registry {
public:
    // `max_concurrency` bounds the functions' reserved concurrency, in sum.
    // `env_cipher` seals every function's environment in the store (see EnvCipher).
    // `shared_code`: where nodes sharing `store` keep code zips; null on a single host, where
    // the code store's files are the only copy.
    Registry(FunctionStore& store, CodeStore& code, LayerViews& views, int max_concurrency,
             const EnvCipher& env_cipher, CodeBlobStore* shared_code = nullptr);

    FunctionRecordPtr find(std::string_view name) const;
    std::vector<FunctionRecordPtr> list() const;  // by name

    // Changes the function `name`: `edit` gets a copy of its record (null if it does not
    // exist) and changes it, creates it or deletes it, throwing ApiError to refuse. The
    // result is checked (reserved concurrency within max_concurrency), committed, and only
    // then visible. Returns the new record (null once deleted). On any error nothing changes.
    // When another node changed the function meanwhile, its change is read and `edit` runs
    // again on it, so `edit` must not count on running once.
    FunctionRecordPtr update(std::string_view name, const std::function<void(RecordChange&)>& edit);

    // Layers. publish_layer stores the zip and assigns the next version number.
    LayerVersionPtr publish_layer(LayerVersion meta, std::string_view zip);
    // The version, deleted ones included (functions keep using them), or null.
    LayerVersionPtr find_layer(std::string_view name, std::int64_t version) const;
    // Live (not deleted) versions of one layer, newest first; of every layer when `name` is empty.
    std::vector<LayerVersionPtr> list_layers(std::string_view name = {}) const;
    // Marks the version deleted; true if it existed and was live.
    bool delete_layer(std::string_view name, std::int64_t version);

    int max_concurrency() const { return max_concurrency_; }
    // Sum of the reserved concurrency of every function.
    int reserved_total() const;
    // Bytes of zips stored for every version and live layer (Lambda's TotalCodeSize).
    std::int64_t total_code_size() const;

    // Removes stored code and layer views that no function version, live layer version
    // or `also_in_use` (code hashes and view names of workers still running) references.
    // Runs under the write lock, so code a change has stored but not yet committed is never taken.
    // With shared code, then also the shared zips none of those name, past their grace
    // (code_blob_store.hpp), at most once per kSharedCodeCollectInterval.
    void collect_code_garbage(const std::set<std::string>& also_in_use);

    // Reads what other writers changed since the last read (a deploy through another node)
    // into the mirror, fetching the code it names first, and returns what changed that was
    // not announced yet. Blocks on the store: off the loop.
    RegistryChanges refresh();

    CodeStore& code() { return code_; }

private:
    friend class RecordChange;
    void load();
    // refresh() under write_mutex_; what it finds is added to unannounced_.
    void read_changes();
    void protect_code_named_in(std::string_view doc);
    // The code `sha256` in the local code store, from the shared one if it is not there yet.
    void ensure_code(const std::string& sha256);
    // Puts code a change stored into the shared store, before the record naming it is written.
    void share_code(const std::vector<StoredCode>& stored);
    std::int64_t revision_of(std::string_view name) const;
    // `reseal`: set when the stored document is not sealed under the current key.
    std::shared_ptr<FunctionRecord> read_record(const std::string& doc, bool* reseal = nullptr);
    // The stored form of `r`: its document with every environment sealed.
    std::string write_record(const FunctionRecord& r) const;
    // Throws ApiError(400) if the reserved concurrency of `record` would take the total
    // over max_concurrency_. Called under write_mutex_.
    void check_concurrency(const FunctionRecord& record) const;

    FunctionStore& store_;
    CodeStore& code_;
    LayerViews& views_;
    const EnvCipher& env_cipher_;
    const int max_concurrency_;
    CodeBlobStore* const shared_code_;
    std::mutex shared_collect_mutex_;
    std::chrono::steady_clock::time_point shared_collected_{};  // the last collection of shared zips
    std::mutex write_mutex_;  // one change at a time: versions and revisions are assigned in order
    // Under write_mutex_: the store's revision the mirror is at, each function's revision
    // (what its next write expects), and changes read but not yet returned by refresh().
    std::int64_t store_revision_ = 0;
    std::map<std::string, std::int64_t, std::less<>> function_revisions_;
    std::set<std::string> unannounced_;
    mutable std::mutex map_mutex_;
    std::map<std::string, FunctionRecordPtr, std::less<>> functions_;
    std::map<std::string, std::map<std::int64_t, LayerVersionPtr>, std::less<>> layers_;
    // Code named by records that could not be read at start: never collected.
    std::set<std::string> unreadable_code_;
};

}  // namespace funcd
