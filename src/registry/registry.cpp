#include "funcd/registry/registry.hpp"

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/storage_full.hpp"

namespace funcd {
namespace {

// How often a change is tried again on a newer copy when other nodes keep changing the same
// function first: each try reads their change, so more than a few means a write storm.
constexpr int kChangeAttempts = 5;

std::string read_stored_zip(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Releases code a failed change stored, unless the change committed.
struct DiscardUnlessCommitted {
    CodeStore& code;
    std::vector<StoredCode>& stored;
    bool committed = false;
    ~DiscardUnlessCommitted() {
        if (committed) return;
        for (const auto& s : stored) code.discard(s);
    }
};

}  // namespace

StoredCode RecordChange::put_code(std::string_view zip) {
    StoredCode s = registry_.code_.put(zip);
    stored_.push_back(s);
    return s;
}

LayerVersionPtr RecordChange::layer(std::string_view name, std::int64_t version) const {
    auto l = registry_.find_layer(name, version);
    return l && !l->deleted ? l : nullptr;
}

std::filesystem::path RecordChange::layer_view(const std::vector<LayerRef>& layers) {
    return registry_.views_.build(layers);
}

std::string sealed_record_document(const FunctionRecord& record, const EnvCipher& env_cipher) {
    nlohmann::json doc = to_json(record);
    env_cipher.seal(doc);
    return doc.dump();
}

Registry::Registry(FunctionStore& store, CodeStore& code, LayerViews& views, int max_concurrency,
                   const EnvCipher& env_cipher, CodeBlobStore* shared_code)
    : store_(store),
      code_(code),
      views_(views),
      env_cipher_(env_cipher),
      max_concurrency_(max_concurrency),
      shared_code_(shared_code) {
    load();
}

std::string Registry::write_record(const FunctionRecord& r) const { return sealed_record_document(r, env_cipher_); }

std::shared_ptr<FunctionRecord> Registry::read_record(const std::string& doc, bool* reseal) {
    nlohmann::json j = nlohmann::json::parse(doc);
    const bool stale = env_cipher_.open(j);
    if (reseal) *reseal = stale;
    return record_from_json(
        j,
        [this](const std::string& sha) {
            ensure_code(sha);
            return code_.dir_for(sha);
        },
        [this](const std::vector<LayerRef>& layers) {
            // A view that cannot be rebuilt fails that version's workers at launch, with the
            // reason in the log; it must not make the whole function disappear.
            try {
                return views_.build(layers);
            } catch (const std::exception& e) {
                spdlog::error("registry: cannot merge the layers of a function version: {}", e.what());
                return views_.path_for(layers);
            }
        });
}

// A record funcd cannot read (written by a newer version, or damaged) is not served, but
// the code it names must survive until someone looks at it: every code hash in its text is
// kept from garbage collection.
void Registry::protect_code_named_in(std::string_view doc) {
    constexpr std::size_t kHashLength = 64;
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    std::size_t run = 0;
    for (std::size_t i = 0; i <= doc.size(); ++i) {
        if (i < doc.size() && hex(doc[i])) {
            ++run;
            continue;
        }
        if (run == kHashLength) unreadable_code_.insert(std::string(doc.substr(i - run, run)));
        run = 0;
    }
}

void Registry::ensure_code(const std::string& sha256) {
    if (!shared_code_ || std::filesystem::exists(code_.dir_for(sha256))) return;
    std::optional<std::string> zip = shared_code_->get(sha256);
    if (!zip) throw std::runtime_error("the code " + sha256 + " is not in the shared state");
    // put() hashes what it stores: the zip is checked against its name by that hash.
    const StoredCode stored = code_.put(*zip);
    if (stored.sha256 != sha256) {
        code_.discard(stored);
        throw std::runtime_error("the shared code " + sha256 + " does not match its hash");
    }
    spdlog::info("registry: code {} fetched from the shared state ({} bytes)", sha256.substr(0, 12), zip->size());
}

void Registry::share_code(const std::vector<StoredCode>& stored) {
    if (!shared_code_) return;
    for (const auto& s : stored) {
        if (shared_code_->touch(s.sha256)) continue;
        const std::string zip = read_stored_zip(code_.zip_for(s.sha256));
        shared_code_->put(s.sha256, zip);
    }
}

std::int64_t Registry::revision_of(std::string_view name) const {
    auto it = function_revisions_.find(name);
    return it == function_revisions_.end() ? 0 : it->second;
}

void Registry::load() {
    std::lock_guard write_lock(write_mutex_);
    FunctionStoreChanges all = store_.changes_since(0);
    store_revision_ = all.revision;
    // Layers first: a function's versions are built on their code.
    std::size_t layers = 0;
    for (const auto& stored : all.layers) {
        try {
            auto l = std::make_shared<LayerVersion>(layer_version_from_json(nlohmann::json::parse(stored.doc)));
            ensure_code(l->code_sha256);
            layers_[l->name][l->version] = l;
            ++layers;
        } catch (const std::exception& e) {
            spdlog::error("registry: layer {}:{} is unreadable, skipped (its code is kept): {}", stored.name,
                          stored.version, e.what());
            protect_code_named_in(stored.doc);
        }
    }
    std::vector<std::string> reseal;  // records in plain text or sealed with an older key
    bool unreadable = false;
    for (const auto& stored : all.functions) {
        try {
            bool stale = false;
            functions_.emplace(stored.name, read_record(stored.doc, &stale));
            function_revisions_[stored.name] = stored.revision;
            if (stale) reseal.push_back(stored.name);
        } catch (const std::exception& e) {
            spdlog::error("registry: function {} has an unreadable record, skipped (its code is kept): {}",
                          stored.name, e.what());
            protect_code_named_in(stored.doc);
            unreadable = true;
        }
    }
    std::size_t resealed = 0;
    for (const auto& name : reseal) {
        // A node that changed it meanwhile sealed it with the current key itself.
        if (auto rev = store_.put_function(name, write_record(*functions_.at(name)), revision_of(name))) {
            function_revisions_[name] = *rev;
            ++resealed;
        }
    }
    if (resealed > 0)
        spdlog::info("registry: the environments of {} functions sealed with key {}", resealed,
                     env_cipher_.current_key_id());
    // Older keys go once nothing needs them; a record that could not be read may still.
    if (env_cipher_.has_old_keys() && !unreadable && resealed == reseal.size()) env_cipher_.drop_old_keys();
    spdlog::info("registry: {} functions and {} layer versions loaded", functions_.size(), layers);
}

RegistryChanges Registry::refresh() {
    std::lock_guard write_lock(write_mutex_);
    read_changes();
    RegistryChanges out;
    for (const auto& name : unannounced_) {
        if (auto r = find(name)) out.changed.push_back(std::move(r));
        else out.deleted.push_back(name);
    }
    unannounced_.clear();
    return out;
}

namespace {

// A change that could not be taken in for a passing reason (the shared database out of reach,
// this host's disk full): the read fails before the registry's revision moves past it, so the
// next read (notification or poll) takes it in. Other failures are the record's own.
bool read_again_later(const std::exception& e) {
    if (dynamic_cast<const StorageFull*>(&e)) return true;
    const auto* api = dynamic_cast<const ApiError*>(&e);
    return api && api->status() == 503;
}

}  // namespace

void Registry::read_changes() {
    FunctionStoreChanges changes = store_.changes_since(store_revision_);
    for (const auto& stored : changes.layers) {
        try {
            auto l = std::make_shared<LayerVersion>(layer_version_from_json(nlohmann::json::parse(stored.doc)));
            ensure_code(l->code_sha256);
            std::lock_guard lock(map_mutex_);
            layers_[l->name][l->version] = l;
        } catch (const std::exception& e) {
            if (read_again_later(e)) throw;
            spdlog::error("registry: layer {}:{} as another node wrote it is unreadable, skipped: {}", stored.name,
                          stored.version, e.what());
            protect_code_named_in(stored.doc);
        }
    }
    for (const auto& stored : changes.functions) {
        if (revision_of(stored.name) == stored.revision) continue;  // this node's own write
        try {
            auto record = read_record(stored.doc);
            {
                std::lock_guard lock(map_mutex_);
                functions_[stored.name] = std::move(record);
            }
            function_revisions_[stored.name] = stored.revision;
            unannounced_.insert(stored.name);
        } catch (const std::exception& e) {
            if (read_again_later(e)) throw;
            // Kept at the version this node has; the next change of it is read again.
            spdlog::error("registry: function {} as another node wrote it is unreadable, kept as it was: {}",
                          stored.name, e.what());
            protect_code_named_in(stored.doc);
        }
    }
    for (const auto& name : changes.deleted) {
        if (function_revisions_.erase(name) == 0) continue;  // deleted here, or never seen
        {
            std::lock_guard lock(map_mutex_);
            functions_.erase(name);
        }
        unannounced_.insert(name);
    }
    store_revision_ = changes.revision;
}

FunctionRecordPtr Registry::update(std::string_view name, const std::function<void(RecordChange&)>& edit) {
    std::lock_guard write_lock(write_mutex_);
    for (int attempt = 1;; ++attempt) {
        FunctionRecordPtr before = find(name);
        RecordChange change(*this, before ? std::make_shared<FunctionRecord>(*before) : nullptr);
        DiscardUnlessCommitted guard{code_, change.stored_};
        edit(change);
        std::shared_ptr<FunctionRecord> after = std::move(change.record);
        if (after) {
            after->name = std::string(name);
            apply_function_settings(*after);
            check_concurrency(*after);
        }
        if (!before && !after) return nullptr;  // deleting what does not exist changes nothing
        share_code(change.stored_);
        const std::optional<std::string> doc = after ? std::optional(write_record(*after)) : std::nullopt;
        const std::optional<std::int64_t> revision = store_.put_function(name, doc, revision_of(name));
        if (!revision) {
            // Another node changed it first: read its change, then edit that.
            if (attempt == kChangeAttempts)
                throw ApiError::conflict("function " + std::string(name) + " is being changed by another node; " +
                                         "try again");
            read_changes();
            continue;
        }
        guard.committed = true;
        // A retry read another node's change of it: this change, newer, is the caller's to announce.
        unannounced_.erase(std::string(name));
        {
            std::lock_guard lock(map_mutex_);
            if (after) functions_[std::string(name)] = after;
            else if (auto it = functions_.find(name); it != functions_.end()) functions_.erase(it);
        }
        if (after) function_revisions_[std::string(name)] = *revision;
        else if (auto it = function_revisions_.find(name); it != function_revisions_.end()) function_revisions_.erase(it);
        return after;
    }
}

void Registry::check_concurrency(const FunctionRecord& record) const {
    if (!record.reserved_concurrency) return;
    if (*record.reserved_concurrency > max_concurrency_)
        throw ApiError::bad_parameter("reserved_concurrency " + std::to_string(*record.reserved_concurrency) +
                                      " is above the daemon's --max-concurrency " + std::to_string(max_concurrency_));
    long total = *record.reserved_concurrency;
    std::string holders;
    for (const auto& fn : list()) {
        if (fn->name == record.name || !fn->reserved_concurrency) continue;
        total += *fn->reserved_concurrency;
        holders += (holders.empty() ? "" : ", ") + fn->name + "=" + std::to_string(*fn->reserved_concurrency);
    }
    if (total > max_concurrency_)
        throw ApiError::bad_parameter("reserved_concurrency " + std::to_string(*record.reserved_concurrency) +
                                      " would reserve " + std::to_string(total) + " in all, above the daemon's "
                                      "--max-concurrency " + std::to_string(max_concurrency_) +
                                      " (already reserved: " + holders + ")");
}

int Registry::reserved_total() const {
    int total = 0;
    for (const auto& fn : list()) total += fn->reserved_concurrency.value_or(0);
    return total;
}

std::int64_t Registry::total_code_size() const {
    std::int64_t total = 0;
    for (const auto& fn : list())
        for (const auto& v : fn->all_versions()) total += v->code_size;
    for (const auto& l : list_layers()) total += l->code_size;
    return total;
}

FunctionRecordPtr Registry::find(std::string_view name) const {
    std::lock_guard lock(map_mutex_);
    auto it = functions_.find(name);
    return it == functions_.end() ? nullptr : it->second;
}

std::vector<FunctionRecordPtr> Registry::list() const {
    std::lock_guard lock(map_mutex_);
    std::vector<FunctionRecordPtr> out;
    out.reserve(functions_.size());
    for (const auto& [name, r] : functions_) out.push_back(r);
    return out;
}

LayerVersionPtr Registry::publish_layer(LayerVersion meta, std::string_view zip) {
    std::lock_guard write_lock(write_mutex_);
    std::vector<StoredCode> stored;
    DiscardUnlessCommitted guard{code_, stored};
    stored.push_back(code_.put(zip));
    meta.code_sha256 = stored.back().sha256;
    meta.code_size = stored.back().size;
    meta.created = std::chrono::system_clock::now();
    meta.deleted = false;
    share_code(stored);
    // Deleted versions keep their numbers: the store never gives a number twice.
    store_.add_layer(meta.name, [&meta](std::int64_t version) {
        meta.version = version;
        return to_json(meta).dump();
    });
    auto l = std::make_shared<LayerVersion>(std::move(meta));
    guard.committed = true;
    {
        std::lock_guard lock(map_mutex_);
        layers_[l->name][l->version] = l;
    }
    spdlog::info("registry: published layer={} version={} code={}", l->name, l->version, l->code_sha256.substr(0, 12));
    return l;
}

LayerVersionPtr Registry::find_layer(std::string_view name, std::int64_t version) const {
    std::lock_guard lock(map_mutex_);
    auto it = layers_.find(name);
    if (it == layers_.end()) return nullptr;
    auto v = it->second.find(version);
    return v == it->second.end() ? nullptr : v->second;
}

std::vector<LayerVersionPtr> Registry::list_layers(std::string_view name) const {
    std::lock_guard lock(map_mutex_);
    std::vector<LayerVersionPtr> out;
    for (const auto& [layer, versions] : layers_) {
        if (!name.empty() && layer != name) continue;
        for (auto it = versions.rbegin(); it != versions.rend(); ++it)
            if (!it->second->deleted) out.push_back(it->second);
    }
    return out;
}

bool Registry::delete_layer(std::string_view name, std::int64_t version) {
    std::lock_guard write_lock(write_mutex_);
    auto l = find_layer(name, version);
    if (!l || l->deleted) return false;
    auto copy = std::make_shared<LayerVersion>(*l);
    copy->deleted = true;
    if (!store_.put_layer(name, version, to_json(*copy).dump())) return false;
    {
        std::lock_guard lock(map_mutex_);
        layers_[std::string(name)][version] = copy;
    }
    spdlog::info("registry: deleted layer={} version={}", name, version);
    return true;
}

void Registry::collect_code_garbage(const std::set<std::string>& also_in_use) {
    std::set<std::string> in_use;
    {
        std::lock_guard write_lock(write_mutex_);
        std::vector<std::string> code;
        std::set<std::string> views;
        for (const auto& fn : list()) {
            fn->collect_code(code);
            for (const auto& v : fn->all_versions())
                if (!v->opt_dir.empty()) views.insert(v->opt_dir.filename().string());
        }
        for (const auto& l : list_layers()) code.push_back(l->code_sha256);
        in_use.insert(code.begin(), code.end());
        in_use.insert(unreadable_code_.begin(), unreadable_code_.end());
        in_use.insert(also_in_use.begin(), also_in_use.end());
        views.insert(also_in_use.begin(), also_in_use.end());
        code_.collect_garbage(in_use);
        views_.collect_garbage(views);
    }
    // The shared zips, outside the lock (database round trips), at most once per
    // kSharedCodeCollectInterval on this node: every node collects, and each change brings one.
    if (!shared_code_) return;
    const auto now = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(shared_collect_mutex_);
        if (shared_collected_ != std::chrono::steady_clock::time_point{} &&
            now - shared_collected_ < kSharedCodeCollectInterval)
            return;
        shared_collected_ = now;
    }
    if (const std::size_t removed = shared_code_->collect(in_use, kSharedCodeGrace); removed > 0)
        spdlog::info("registry: {} code zips no function or layer names any more removed from the shared state",
                     removed);
}

}  // namespace funcd
