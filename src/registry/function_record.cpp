#include "funcd/registry/function_record.hpp"

#include <algorithm>
#include <charconv>

namespace funcd {
namespace {

using nlohmann::json;

// Lambda's limit on an alias name (botocore's model: Alias, max 128).
constexpr std::size_t kMaxAliasBytes = 128;

bool alias_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

json version_to_json(const FunctionVersion& v) {
    return {{"version", v.version},
            {"generation", v.generation},
            {"config", config_to_json(v.config)},
            {"code_sha256", v.code_sha256},
            {"code_size", v.code_size},
            {"last_modified_us", to_unix_us(v.last_modified)},
            {"revision_id", v.revision_id}};
}

std::shared_ptr<FunctionVersion> version_from_json(
    const std::string& name, const json& j, const std::function<std::filesystem::path(const std::string&)>& code_dir_for,
    const std::function<std::filesystem::path(const std::vector<LayerRef>&)>& opt_dir_for) {
    auto v = std::make_shared<FunctionVersion>();
    v->version = j.at("version").get<std::int64_t>();
    v->generation = j.value("generation", v->version);
    v->config = config_from_json(name, j.at("config"));
    v->code_sha256 = j.at("code_sha256").get<std::string>();
    v->code_size = j.at("code_size").get<std::int64_t>();
    v->last_modified = from_unix_us(j.at("last_modified_us").get<std::int64_t>());
    v->revision_id = j.value("revision_id", "");
    v->code_dir = code_dir_for(v->code_sha256);
    if (!v->config.layers.empty()) v->opt_dir = opt_dir_for(v->config.layers);
    return v;
}

json alias_to_json(const Alias& a) {
    json j{{"name", a.name},
           {"function_version", a.function_version},
           {"description", a.description},
           {"revision_id", a.revision_id}};
    if (a.additional_version)
        j["additional_version"] = {{"version", a.additional_version->first}, {"weight", a.additional_version->second}};
    return j;
}

Alias alias_from_json(const json& j) {
    Alias a;
    a.name = j.at("name").get<std::string>();
    a.function_version = j.at("function_version").get<std::int64_t>();
    a.description = j.value("description", "");
    a.revision_id = j.value("revision_id", "");
    if (auto it = j.find("additional_version"); it != j.end())
        a.additional_version = std::make_pair(it->at("version").get<std::int64_t>(), it->at("weight").get<double>());
    return a;
}

json url_to_json(const FunctionUrlConfig& u) {
    return {{"auth", to_string(u.auth)},
            {"cors", to_json(u.cors)},
            {"invoke_mode", u.invoke_mode},
            {"created_us", to_unix_us(u.created)},
            {"last_modified_us", to_unix_us(u.last_modified)}};
}

FunctionUrlConfig url_from_json(const json& j) {
    FunctionUrlConfig u;
    u.auth = parse_url_auth_type(j.at("auth").get<std::string>()).value_or(UrlAuthType::aws_iam);
    u.cors = parse_cors(j.at("cors"));
    u.invoke_mode = j.value("invoke_mode", "BUFFERED");
    u.created = from_unix_us(j.at("created_us").get<std::int64_t>());
    u.last_modified = from_unix_us(j.at("last_modified_us").get<std::int64_t>());
    return u;
}

json layers_to_json(const std::vector<LayerRef>& layers) {
    json out = json::array();
    for (const auto& l : layers)
        out.push_back({{"name", l.name}, {"version", l.version}, {"code_sha256", l.code_sha256}, {"code_size", l.code_size}});
    return out;
}

json recorded_to_json(const RecordedSettings& r) {
    return {{"role", r.role},
            {"tracing_mode", r.tracing_mode},
            {"dead_letter_target_arn", r.dead_letter_target_arn},
            {"log_group", r.log_group}};
}

RecordedSettings recorded_from_json(const json& j) {
    RecordedSettings r;
    r.role = j.value("role", "");
    r.tracing_mode = j.value("tracing_mode", "PassThrough");
    r.dead_letter_target_arn = j.value("dead_letter_target_arn", "");
    r.log_group = j.value("log_group", "");
    return r;
}

json logging_to_json(const LoggingConfig& l) {
    return {{"format", to_string(l.format)},
            {"application_level", to_string(l.application_level)},
            {"system_level", to_string(l.system_level)}};
}

// From the document's "logging" object; from a document written before funcd acted on the
// log settings, from the Lambda API's LoggingConfig it kept among the recorded settings
// ("recorded": {"log_format", "application_log_level", "system_log_level"}). Those were kept
// unchecked: levels Lambda would refuse (unknown names, any level with Text) are dropped
// for INFO rather than make the function unloadable.
LoggingConfig logging_from_json(const json& config) {
    LoggingConfig l;
    const json* from = nullptr;
    const char *format_key = "format", *app_key = "application_level", *system_key = "system_level";
    if (auto it = config.find("logging"); it != config.end() && it->is_object()) {
        from = &*it;
    } else if (auto rec = config.find("recorded"); rec != config.end() && rec->is_object()) {
        from = &*rec;
        format_key = "log_format";
        app_key = "application_log_level";
        system_key = "system_log_level";
    }
    if (!from) return l;
    l.format = parse_log_format(from->value(format_key, "Text")).value_or(LogFormat::text);
    if (!l.json()) return l;
    if (auto a = parse_log_level(from->value(app_key, ""))) l.application_level = *a;
    if (auto s = parse_log_level(from->value(system_key, "")); s && is_system_log_level(*s)) l.system_level = *s;
    return l;
}

}  // namespace

std::string_view to_string(UrlAuthType a) { return a == UrlAuthType::none ? "NONE" : "AWS_IAM"; }

std::optional<UrlAuthType> parse_url_auth_type(std::string_view text) {
    if (text == "NONE") return UrlAuthType::none;
    if (text == "AWS_IAM") return UrlAuthType::aws_iam;
    return std::nullopt;
}

json config_to_json(const FunctionConfig& c) {
    return {{"runtime", c.runtime_name()},
            {"handler", c.handler},
            {"memory_mb", c.memory_mb},
            {"timeout_s", c.timeout_s},
            {"env", c.env},
            {"keep_alive_s", c.keep_alive_s},
            {"description", c.description},
            {"ephemeral_storage_mb", c.ephemeral_storage_mb},
            {"network", to_string(c.network)},
            {"keep_alive", to_string(c.keep_alive_mode)},
            {"url_auth", to_string(c.url_auth)},
            {"invoke_mode", to_string(c.invoke_mode)},
            {"cors", to_json(c.cors)},
            {"architecture", c.architecture},
            {"layers", layers_to_json(c.layers)},
            {"preload", c.preload},
            {"logging", logging_to_json(c.logging)},
            {"recorded", recorded_to_json(c.recorded)}};
}

FunctionConfig config_from_json(const std::string& name, const json& j) {
    FunctionConfig c;
    c.name = name;
    c.runtime_id = j.at("runtime").get<std::string>();
    c.runtime = runtime_family(c.runtime_id).value();
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
    c.invoke_mode = parse_invoke_mode(j.value("invoke_mode", "BUFFERED")).value_or(InvokeMode::buffered);
    if (auto it = j.find("cors"); it != j.end()) c.cors = parse_cors(*it);
    c.architecture = j.value("architecture", std::string(host_architecture()));
    if (auto it = j.find("layers"); it != j.end())
        for (const auto& l : *it)
            c.layers.push_back({l.at("name").get<std::string>(), l.at("version").get<std::int64_t>(),
                                l.at("code_sha256").get<std::string>(), l.at("code_size").get<std::int64_t>()});
    if (auto it = j.find("recorded"); it != j.end()) c.recorded = recorded_from_json(*it);
    c.preload = j.value("preload", std::vector<std::string>{});
    c.logging = logging_from_json(j);
    // Function-level settings in a document written before versions existed.
    if (auto it = j.find("concurrency"); it != j.end()) {
        if (auto r = it->find("reserved_concurrency"); r != it->end() && !r->is_null())
            c.concurrency.reserved = r->get<int>();
        c.concurrency.provisioned = it->value("provisioned_concurrency", 0);
    }
    return c;
}

const FunctionPtr& FunctionRecord::default_target() const {
    if (latest_published_as) {
        auto it = versions.find(*latest_published_as);
        if (it != versions.end()) return it->second;
    }
    return latest;
}

FunctionPtr FunctionRecord::version(std::int64_t number) const {
    if (number == kLatestVersion) return latest;
    auto it = versions.find(number);
    return it == versions.end() ? nullptr : it->second;
}

std::vector<FunctionPtr> FunctionRecord::all_versions() const {
    std::vector<FunctionPtr> out;
    out.reserve(versions.size() + 1);
    out.push_back(latest);
    for (const auto& [n, v] : versions) out.push_back(v);
    return out;
}

void FunctionRecord::collect_code(std::vector<std::string>& out) const {
    for (const auto& v : all_versions()) {
        out.push_back(v->code_sha256);
        for (const auto& l : v->config.layers) out.push_back(l.code_sha256);
    }
}

std::optional<Qualifier> Qualifier::parse(std::string_view text) {
    if (text == kLatestLabel) return Qualifier{};
    if (text.empty() || text.size() > kMaxAliasBytes || !std::all_of(text.begin(), text.end(), alias_char))
        return std::nullopt;
    Qualifier q;
    if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || end != text.data() + text.size() || n < 1) return std::nullopt;
        q.kind = Kind::version;
        q.number = n;
        return q;
    }
    q.kind = Kind::alias;
    q.alias = std::string(text);
    return q;
}

std::string Qualifier::text() const {
    switch (kind) {
        case Kind::latest: return std::string(kLatestLabel);
        case Kind::version: return std::to_string(number);
        case Kind::alias: return alias;
    }
    return {};
}

FunctionPtr resolve(const FunctionRecord& record, const Qualifier& qualifier, double draw) {
    switch (qualifier.kind) {
        case Qualifier::Kind::latest: return record.latest;
        case Qualifier::Kind::version: return record.version(qualifier.number);
        case Qualifier::Kind::alias: {
            auto it = record.aliases.find(qualifier.alias);
            if (it == record.aliases.end()) return nullptr;
            const Alias& a = it->second;
            if (a.additional_version && draw < a.additional_version->second)
                if (auto v = record.version(a.additional_version->first)) return v;
            return record.version(a.function_version);
        }
    }
    return nullptr;
}

void apply_function_settings(FunctionRecord& record) {
    std::map<std::int64_t, int> provisioned;
    if (record.default_provisioned > 0) provisioned[record.default_target()->version] += record.default_provisioned;
    for (const auto& [qualifier, config] : record.provisioned) {
        auto q = Qualifier::parse(qualifier);
        if (!q) continue;
        if (q->kind == Qualifier::Kind::version) {
            provisioned[q->number] += config.requested;
        } else if (q->kind == Qualifier::Kind::alias) {
            // Workers of the alias's main version; invocations routed to its additional
            // version start on demand.
            if (auto a = record.aliases.find(q->alias); a != record.aliases.end())
                provisioned[a->second.function_version] += config.requested;
        }
    }
    auto apply = [&](FunctionPtr& v) {
        ConcurrencySettings wanted{record.reserved_concurrency, provisioned[v->version]};
        if (v->config.concurrency == wanted) return;
        auto copy = std::make_shared<FunctionVersion>(*v);
        copy->config.concurrency = wanted;
        v = std::move(copy);
    };
    apply(record.latest);
    for (auto& [n, v] : record.versions) apply(v);
}

json describe(const FunctionRecord& r) {
    json j = describe(*r.default_target());
    j["reserved_concurrency"] = r.reserved_concurrency ? json(*r.reserved_concurrency) : json(nullptr);
    j["provisioned_concurrency"] = r.default_provisioned;
    json versions = json::array();
    for (const auto& [n, v] : r.versions) versions.push_back(n);
    j["versions"] = std::move(versions);
    json aliases = json::object();
    for (const auto& [name, a] : r.aliases) {
        json alias{{"version", a.function_version == kLatestVersion ? json(kLatestLabel) : json(a.function_version)}};
        if (a.additional_version)
            alias["additional_version"] = {{"version", a.additional_version->first},
                                           {"weight", a.additional_version->second}};
        aliases[name] = std::move(alias);
    }
    j["aliases"] = std::move(aliases);
    j["tags"] = r.tags;
    return j;
}

json to_json(const FunctionRecord& r) {
    json versions = json::array();
    for (const auto& [n, v] : r.versions) versions.push_back(version_to_json(*v));
    json aliases = json::array();
    for (const auto& [name, a] : r.aliases) aliases.push_back(alias_to_json(a));
    json provisioned = json::object();
    for (const auto& [q, p] : r.provisioned)
        provisioned[q] = {{"requested", p.requested}, {"last_modified_us", to_unix_us(p.last_modified)}};
    json urls = json::object();
    for (const auto& [q, u] : r.urls) urls[q] = url_to_json(u);
    json policies = json::object();
    for (const auto& [q, statements] : r.policies) policies[q] = statements;
    return {{"name", r.name},
            {"created_us", to_unix_us(r.created)},
            {"latest", version_to_json(*r.latest)},
            {"versions", std::move(versions)},
            {"last_published", r.last_published},
            {"latest_published_as", r.latest_published_as ? json(*r.latest_published_as) : json(nullptr)},
            {"aliases", std::move(aliases)},
            {"tags", r.tags},
            {"reserved_concurrency", r.reserved_concurrency ? json(*r.reserved_concurrency) : json(nullptr)},
            {"default_provisioned", r.default_provisioned},
            {"provisioned", std::move(provisioned)},
            {"policies", std::move(policies)},
            {"policy_revision_id", r.policy_revision_id},
            {"urls", std::move(urls)},
            {"revision_id", r.revision_id}};
}

std::shared_ptr<FunctionRecord> record_from_json(
    const json& doc, const std::function<std::filesystem::path(const std::string&)>& code_dir_for,
    const std::function<std::filesystem::path(const std::vector<LayerRef>&)>& opt_dir_for) {
    auto r = std::make_shared<FunctionRecord>();
    r->name = doc.at("name").get<std::string>();
    r->created = from_unix_us(doc.at("created_us").get<std::int64_t>());
    r->latest = version_from_json(r->name, doc.at("latest"), code_dir_for, opt_dir_for);
    for (const auto& v : doc.at("versions")) {
        auto version = version_from_json(r->name, v, code_dir_for, opt_dir_for);
        r->versions.emplace(version->version, std::move(version));
    }
    r->last_published = doc.at("last_published").get<std::int64_t>();
    if (const auto& p = doc.at("latest_published_as"); !p.is_null()) r->latest_published_as = p.get<std::int64_t>();
    for (const auto& a : doc.at("aliases")) {
        Alias alias = alias_from_json(a);
        r->aliases.emplace(alias.name, std::move(alias));
    }
    r->tags = doc.at("tags").get<std::map<std::string, std::string>>();
    if (const auto& rc = doc.at("reserved_concurrency"); !rc.is_null()) r->reserved_concurrency = rc.get<int>();
    r->default_provisioned = doc.value("default_provisioned", 0);
    for (const auto& [q, p] : doc.at("provisioned").items())
        r->provisioned[q] = {p.at("requested").get<int>(), from_unix_us(p.at("last_modified_us").get<std::int64_t>())};
    for (const auto& [q, statements] : doc.at("policies").items())
        r->policies[q] = statements.get<std::vector<json>>();
    r->policy_revision_id = doc.value("policy_revision_id", "");
    for (const auto& [q, u] : doc.at("urls").items()) r->urls[q] = url_from_json(u);
    r->revision_id = doc.value("revision_id", "");
    apply_function_settings(*r);
    return r;
}

}  // namespace funcd
