#include "funcd/registry/registry.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"

namespace funcd {
namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    config_json TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    last_modified_us INTEGER NOT NULL
);
)sql";

// Settings are stored as JSON so that new settings need no schema migration.
nlohmann::json config_to_json(const FunctionConfig& c) {
    return {{"runtime", to_string(c.runtime)}, {"handler", c.handler},         {"memory_mb", c.memory_mb},
            {"timeout_s", c.timeout_s},        {"env", c.env},                 {"keep_alive_s", c.keep_alive_s},
            {"description", c.description},    {"ephemeral_storage_mb", c.ephemeral_storage_mb},
            {"network", to_string(c.network)}, {"keep_alive", to_string(c.keep_alive_mode)},
            {"concurrency", describe(c.concurrency)}, {"url_auth", to_string(c.url_auth)},
            {"cors", to_json(c.cors)}};
}

FunctionConfig config_from_json(const std::string& name, const nlohmann::json& j) {
    FunctionConfig c;
    c.name = name;
    c.runtime = parse_runtime(j.at("runtime").get<std::string>()).value();
    c.handler = j.at("handler").get<std::string>();
    c.memory_mb = j.at("memory_mb").get<int>();
    c.timeout_s = j.at("timeout_s").get<int>();
    c.env = j.at("env").get<std::map<std::string, std::string>>();
    c.keep_alive_s = j.at("keep_alive_s").get<int>();
    c.description = j.value("description", "");
    // Settings added after a function was stored take their defaults.
    c.ephemeral_storage_mb = j.value("ephemeral_storage_mb", limits::kDefaultEphemeralStorageMb);
    c.network = parse_network(j.value("network", "none")).value_or(NetworkMode::none);
    c.keep_alive_mode = parse_keep_alive_mode(j.value("keep_alive", "fixed")).value_or(KeepAliveMode::fixed);
    c.url_auth = parse_url_auth(j.value("url_auth", "token")).value_or(UrlAuth::token);
    if (auto it = j.find("cors"); it != j.end()) c.cors = parse_cors(*it);
    if (auto it = j.find("concurrency"); it != j.end()) {
        if (auto r = it->find("reserved_concurrency"); r != it->end() && !r->is_null())
            c.concurrency.reserved = r->get<int>();
        c.concurrency.provisioned = it->value("provisioned_concurrency", 0);
    }
    return c;
}

}  // namespace

Registry::Registry(const std::filesystem::path& db_path, CodeStore& code, int max_concurrency)
    : code_(code), max_concurrency_(max_concurrency), db_(db_path) {
    db_.exec(kSchema);
    load();
}

void Registry::load() {
    sqlite::Statement q(db_, "SELECT name, version, config_json, code_sha256, code_size, last_modified_us FROM functions");
    while (q.step()) {
        auto v = std::make_shared<FunctionVersion>();
        std::string name = q.column_text(0);
        try {
            v->config = config_from_json(name, nlohmann::json::parse(q.column_text(2)));
        } catch (const std::exception& e) {
            spdlog::error("registry: function {} has unreadable settings, skipped: {}", name, e.what());
            continue;
        }
        v->version = q.column_int(1);
        v->code_sha256 = q.column_text(3);
        v->code_size = q.column_int(4);
        v->last_modified = from_unix_us(q.column_int(5));
        v->code_dir = code_.dir_for(v->code_sha256);
        current_.emplace(name, std::move(v));
    }
    spdlog::info("registry: {} functions loaded", current_.size());
}

DeployResult Registry::deploy(DeployRequest request) {
    std::lock_guard deploy_lock(deploy_mutex_);
    const std::string name = request.config.name;
    FunctionPtr previous = find(name);

    auto next = std::make_shared<FunctionVersion>();
    next->config = std::move(request.config);
    if (!request.concurrency_given && previous) next->config.concurrency = previous->config.concurrency;
    check_concurrency(name, next->config.concurrency);
    StoredCode stored;
    if (request.code_zip) {
        stored = code_.put(*request.code_zip);
        next->code_sha256 = stored.sha256;
        next->code_size = stored.size;
        next->code_dir = stored.dir;
    } else if (previous) {
        // A settings-only update keeps the code of the current version.
        next->code_sha256 = previous->code_sha256;
        next->code_size = previous->code_size;
        next->code_dir = previous->code_dir;
    } else {
        throw ApiError::bad_parameter("code is required when creating function '" + name +
                                      "': send code.zip_base64 or the zip as the body");
    }
    next->version = previous ? previous->version + 1 : 1;
    next->last_modified = std::chrono::system_clock::now();
    try {
        validate_code_for_runtime(next->config, next->code_dir);
        commit(*next);
    } catch (...) {
        // Nothing references code this failed deploy unpacked; do not leave it on disk.
        code_.discard(stored);
        throw;
    }
    {
        std::lock_guard lock(map_mutex_);
        current_[name] = next;
    }
    spdlog::info("registry: deployed function={} version={} code={} runtime={}", name, next->version,
                 next->code_sha256.substr(0, 12), to_string(next->config.runtime));
    return {std::move(next), previous == nullptr};
}

void Registry::commit(const FunctionVersion& v) {
    sqlite::Statement upsert(db_, R"sql(
        INSERT INTO functions (name, version, config_json, code_sha256, code_size, last_modified_us)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        ON CONFLICT(name) DO UPDATE SET version = ?2, config_json = ?3, code_sha256 = ?4,
            code_size = ?5, last_modified_us = ?6)sql");
    upsert.bind(1, v.config.name)
        .bind(2, v.version)
        .bind(3, config_to_json(v.config).dump())
        .bind(4, v.code_sha256)
        .bind(5, v.code_size)
        .bind(6, to_unix_us(v.last_modified));
    upsert.run();
}

void Registry::check_concurrency(std::string_view name, const ConcurrencySettings& settings) const {
    validate_concurrency(settings, max_concurrency_);
    if (!settings.reserved) return;
    long total = *settings.reserved;
    std::string holders;
    for (const auto& fn : list()) {
        if (fn->config.name == name || !fn->config.concurrency.reserved) continue;
        total += *fn->config.concurrency.reserved;
        holders += (holders.empty() ? "" : ", ") + fn->config.name + "=" + std::to_string(*fn->config.concurrency.reserved);
    }
    if (total > max_concurrency_)
        throw ApiError::bad_parameter("reserved_concurrency " + std::to_string(*settings.reserved) +
                                      " would reserve " + std::to_string(total) + " in all, above the daemon's "
                                      "--max-concurrency " + std::to_string(max_concurrency_) +
                                      " (already reserved: " + holders + ")");
}

FunctionPtr Registry::set_concurrency(std::string_view name, const ConcurrencySettings& settings) {
    std::lock_guard deploy_lock(deploy_mutex_);
    FunctionPtr previous = find(name);
    if (!previous) throw ApiError::not_found("function '" + std::string(name) + "' does not exist");
    check_concurrency(name, settings);
    auto next = std::make_shared<FunctionVersion>(*previous);
    next->config.concurrency = settings;
    sqlite::Statement update(db_, "UPDATE functions SET config_json = ?2 WHERE name = ?1");
    update.bind(1, name).bind(2, config_to_json(next->config).dump());
    update.run();
    {
        std::lock_guard lock(map_mutex_);
        current_[std::string(name)] = next;
    }
    spdlog::info("registry: function={} version={} reserved_concurrency={} provisioned_concurrency={}", name,
                 next->version, settings.reserved ? std::to_string(*settings.reserved) : "unset",
                 settings.provisioned);
    return next;
}

FunctionPtr Registry::remove(std::string_view name) {
    std::lock_guard deploy_lock(deploy_mutex_);
    FunctionPtr previous = find(name);
    if (!previous) return nullptr;
    sqlite::Statement del(db_, "DELETE FROM functions WHERE name = ?1");
    del.bind(1, name).run();
    {
        std::lock_guard lock(map_mutex_);
        current_.erase(current_.find(name));
    }
    spdlog::info("registry: deleted function={} version={}", name, previous->version);
    return previous;
}

FunctionPtr Registry::find(std::string_view name) const {
    std::lock_guard lock(map_mutex_);
    auto it = current_.find(name);
    return it == current_.end() ? nullptr : it->second;
}

std::vector<FunctionPtr> Registry::list() const {
    std::lock_guard lock(map_mutex_);
    std::vector<FunctionPtr> out;
    out.reserve(current_.size());
    for (const auto& [name, v] : current_) out.push_back(v);
    return out;
}

std::set<std::string> Registry::code_in_use() const {
    std::lock_guard lock(map_mutex_);
    std::set<std::string> out;
    for (const auto& [name, v] : current_) out.insert(v->code_sha256);
    return out;
}

void Registry::collect_code_garbage(const std::set<std::string>& also_in_use) {
    std::lock_guard deploy_lock(deploy_mutex_);
    std::set<std::string> in_use = code_in_use();
    in_use.insert(also_in_use.begin(), also_in_use.end());
    code_.collect_garbage(in_use);
}

}  // namespace funcd
