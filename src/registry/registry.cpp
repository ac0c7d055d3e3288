#include "funcd/registry/registry.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"

namespace funcd {
namespace {

constexpr std::string_view kRegistrySchema = R"sql(
CREATE TABLE IF NOT EXISTS function_records (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS layer_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
)sql";

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

Registry::Registry(const std::filesystem::path& db_path, CodeStore& code, LayerViews& views, int max_concurrency,
                   const EnvCipher& env_cipher)
    : code_(code), views_(views), env_cipher_(env_cipher), max_concurrency_(max_concurrency), db_(db_path) {
    db_.exec(kRegistrySchema);
    migrate_single_version_table();
    load();
}

std::string Registry::write_record(const FunctionRecord& r) const {
    nlohmann::json doc = to_json(r);
    env_cipher_.seal(doc);
    return doc.dump();
}

std::shared_ptr<FunctionRecord> Registry::read_record(const std::string& doc, bool* reseal) const {
    nlohmann::json j = nlohmann::json::parse(doc);
    const bool stale = env_cipher_.open(j);
    if (reseal) *reseal = stale;
    return record_from_json(
        j, [this](const std::string& sha) { return code_.dir_for(sha); },
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

// Data directories from before versions existed kept one row per function, its current
// version, in `functions`. Each becomes a record whose $LATEST is that version and which
// has it published under its number, so /v1 goes on reporting the same version.
void Registry::migrate_single_version_table() {
    {
        sqlite::Statement exists(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'functions'");
        if (!exists.step()) return;
    }
    sqlite::Transaction tx(db_);
    sqlite::Statement q(db_,
                        "SELECT name, version, config_json, code_sha256, code_size, last_modified_us FROM functions");
    std::size_t migrated = 0;
    while (q.step()) {
        const std::string name = q.column_text(0);
        try {
            auto latest = std::make_shared<FunctionVersion>();
            latest->config = config_from_json(name, nlohmann::json::parse(q.column_text(2)));
            const std::int64_t number = q.column_int(1);
            latest->generation = number;
            latest->code_sha256 = q.column_text(3);
            latest->code_size = q.column_int(4);
            latest->last_modified = from_unix_us(q.column_int(5));
            latest->revision_id = new_uuid();
            auto published = std::make_shared<FunctionVersion>(*latest);
            published->version = number;
            published->revision_id = new_uuid();

            FunctionRecord r;
            r.name = name;
            r.created = latest->last_modified;
            r.reserved_concurrency = latest->config.concurrency.reserved;
            r.default_provisioned = latest->config.concurrency.provisioned;
            r.latest = latest;
            r.versions.emplace(number, published);
            r.last_published = number;
            r.latest_published_as = number;
            r.revision_id = latest->revision_id;
            r.policy_revision_id = new_uuid();
            sqlite::Statement insert(db_, "INSERT OR REPLACE INTO function_records (name, doc) VALUES (?1, ?2)");
            insert.bind(1, name).bind(2, write_record(r));
            insert.run();
            ++migrated;
        } catch (const std::exception& e) {
            spdlog::error("registry: function {} has unreadable settings, not migrated: {}", name, e.what());
        }
    }
    db_.exec("DROP TABLE functions");
    tx.commit();
    spdlog::info("registry: {} functions migrated to versioned records", migrated);
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

void Registry::load() {
    std::vector<std::string> reseal;  // records in plain text or sealed with an older key
    bool unreadable = false;
    {
        sqlite::Statement q(db_, "SELECT name, doc FROM function_records");
        while (q.step()) {
            const std::string name = q.column_text(0);
            const std::string doc = q.column_text(1);
            try {
                bool stale = false;
                functions_.emplace(name, read_record(doc, &stale));
                if (stale) reseal.push_back(name);
            } catch (const std::exception& e) {
                spdlog::error("registry: function {} has an unreadable record, skipped (its code is kept): {}", name,
                              e.what());
                protect_code_named_in(doc);
                unreadable = true;
            }
        }
    }
    if (!reseal.empty()) {
        sqlite::Transaction tx(db_);
        for (const auto& name : reseal) commit(name, functions_.at(name).get());
        tx.commit();
        spdlog::info("registry: the environments of {} functions sealed with key {}", reseal.size(),
                     env_cipher_.current_key_id());
    }
    // Older keys go once nothing needs them; a record that could not be read may still.
    if (env_cipher_.has_old_keys() && !unreadable) env_cipher_.drop_old_keys();
    sqlite::Statement q(db_, "SELECT name, version, doc FROM layer_versions");
    std::size_t layers = 0;
    while (q.step()) {
        try {
            auto l = std::make_shared<LayerVersion>(layer_version_from_json(nlohmann::json::parse(q.column_text(2))));
            layers_[l->name][l->version] = l;
            ++layers;
        } catch (const std::exception& e) {
            spdlog::error("registry: layer {}:{} is unreadable, skipped (its code is kept): {}", q.column_text(0),
                          q.column_int(1), e.what());
            protect_code_named_in(q.column_text(2));
        }
    }
    spdlog::info("registry: {} functions and {} layer versions loaded", functions_.size(), layers);
}

FunctionRecordPtr Registry::update(std::string_view name, const std::function<void(RecordChange&)>& edit) {
    std::lock_guard write_lock(write_mutex_);
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
    commit(name, after.get());
    guard.committed = true;
    {
        std::lock_guard lock(map_mutex_);
        if (after) functions_[std::string(name)] = after;
        else if (auto it = functions_.find(name); it != functions_.end()) functions_.erase(it);
    }
    return after;
}

void Registry::commit(std::string_view name, const FunctionRecord* record) {
    if (!record) {
        sqlite::Statement del(db_, "DELETE FROM function_records WHERE name = ?1");
        del.bind(1, name).run();
        return;
    }
    sqlite::Statement upsert(db_, R"sql(
        INSERT INTO function_records (name, doc) VALUES (?1, ?2)
        ON CONFLICT(name) DO UPDATE SET doc = ?2)sql");
    upsert.bind(1, name).bind(2, write_record(*record));
    upsert.run();
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
    {
        std::lock_guard lock(map_mutex_);
        auto it = layers_.find(meta.name);
        // Deleted versions keep their numbers: a number is never given twice.
        meta.version = it == layers_.end() || it->second.empty() ? 1 : it->second.rbegin()->first + 1;
    }
    auto l = std::make_shared<LayerVersion>(std::move(meta));
    sqlite::Statement insert(db_, "INSERT INTO layer_versions (name, version, doc) VALUES (?1, ?2, ?3)");
    insert.bind(1, l->name).bind(2, l->version).bind(3, to_json(*l).dump());
    insert.run();
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
    sqlite::Statement update(db_, "UPDATE layer_versions SET doc = ?3 WHERE name = ?1 AND version = ?2");
    update.bind(1, name).bind(2, version).bind(3, to_json(*copy).dump());
    update.run();
    {
        std::lock_guard lock(map_mutex_);
        layers_[std::string(name)][version] = copy;
    }
    spdlog::info("registry: deleted layer={} version={}", name, version);
    return true;
}

void Registry::collect_code_garbage(const std::set<std::string>& also_in_use) {
    std::lock_guard write_lock(write_mutex_);
    std::vector<std::string> code;
    std::set<std::string> views;
    for (const auto& fn : list()) {
        fn->collect_code(code);
        for (const auto& v : fn->all_versions())
            if (!v->opt_dir.empty()) views.insert(v->opt_dir.filename().string());
    }
    for (const auto& l : list_layers()) code.push_back(l->code_sha256);
    std::set<std::string> in_use(code.begin(), code.end());
    in_use.insert(unreadable_code_.begin(), unreadable_code_.end());
    in_use.insert(also_in_use.begin(), also_in_use.end());
    views.insert(also_in_use.begin(), also_in_use.end());
    code_.collect_garbage(in_use);
    views_.collect_garbage(views);
}

}  // namespace funcd
