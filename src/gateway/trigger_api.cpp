#include "funcd/gateway/trigger_api.hpp"

#include <map>
#include <set>

#include <sys/stat.h>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/json_body.hpp"

namespace funcd {
namespace {

using nlohmann::json;
using namespace api;

json to_json(const ScheduleStatus& s) {
    const ScheduleDefinition& d = s.definition;
    json j{{"function", d.function},
           {"name", d.name},
           {"expression", d.expression},
           {"enabled", d.enabled},
           {"created", format_rfc3339(d.created)},
           {"next_fire", s.next_fire ? json(format_rfc3339(*s.next_fire)) : json(nullptr)},
           {"last_fire", s.last_fire ? json(format_rfc3339(*s.last_fire)) : json(nullptr)}};
    if (d.input) j["input"] = *d.input;
    return j;
}

// Trigger names follow function names' rules: they appear in ARNs and mount paths.
void validate_trigger_name(std::string_view kind, const std::string& name) {
    try {
        validate_function_name(name);
    } catch (const ApiError&) {
        throw ApiError::bad_parameter(std::string(kind) + " name '" + name +
                                      "' is invalid: use 1 to 64 letters, digits, '-' or '_'");
    }
}

ScheduleDefinition parse_schedule(const std::string& function, const std::string& name, std::string_view body) {
    json doc = parse_json_object(body);
    ScheduleDefinition s;
    s.function = function;
    s.name = name;
    s.created = std::chrono::system_clock::now();
    for (const auto& [key, value] : doc.items()) {
        if (key == "expression") {
            if (!value.is_string()) throw ApiError::bad_parameter("expression must be a string");
            s.expression = value.get<std::string>();
        } else if (key == "input") {
            s.input = value;
        } else if (key == "enabled") {
            if (!value.is_boolean()) throw ApiError::bad_parameter("enabled must be true or false");
            s.enabled = value.get<bool>();
        } else {
            throw ApiError::bad_parameter("unknown field '" + key + "' (expected expression, input, enabled)");
        }
    }
    if (s.expression.empty())
        throw ApiError::bad_parameter("expression is required: rate(5 minutes) or cron(0 12 * * ? *)");
    ScheduleExpression::parse(s.expression);  // throws naming the bad part
    return s;
}

}  // namespace

TriggerApi::TriggerApi(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                       TriggerStore& store, Scheduler& scheduler, FileTriggers& files, PoolManager& pools,
                       std::string node_id)
    : io_(io),
      blocking_(blocking),
      registry_(registry),
      store_(store),
      scheduler_(scheduler),
      files_(files),
      pools_(pools),
      node_id_(std::move(node_id)) {}

void TriggerApi::require_function(const std::string& function) const {
    validate_function_name(function);
    if (!registry_.find(function)) throw ApiError::not_found("function '" + function + "' does not exist");
}

void TriggerApi::start() {
    std::size_t schedules = 0;
    for (auto& s : store_.schedules()) {
        if (!registry_.find(s.function)) continue;
        try {
            scheduler_.set(std::move(s));
            ++schedules;
        } catch (const std::exception& e) {
            spdlog::error("schedule: stored schedule {}/{} is unusable: {}", s.function, s.name, e.what());
        }
    }
    std::size_t watched = 0;
    for (auto& f : store_.file_triggers()) {
        if (!registry_.find(f.function)) continue;
        // Another node's directory (on a single host every trigger is this host's).
        if (store_.shared() && !f.node.empty() && f.node != node_id_) continue;
        try {
            files_.set(f);
            ++watched;
        } catch (const std::exception& e) {
            // The directory may be gone or not mounted yet; the definition stays stored.
            spdlog::error("file trigger: function={} trigger={} cannot watch {}: {}", f.function, f.name,
                          f.directory.string(), e.what());
        }
    }
    spdlog::info("triggers: {} schedules and {} file triggers loaded", schedules, watched);
}

void TriggerApi::reload() {
    const auto mark = local_changes_.quiet();
    if (!mark) return;
    auto schedules = store_.schedules();
    auto files = store_.file_triggers();
    boost::asio::post(io_, [this, mark = *mark, schedules = std::move(schedules), files = std::move(files)]() mutable {
        if (!local_changes_.none_since(mark)) return;
        std::map<std::pair<std::string, std::string>, ScheduleDefinition> wanted;
        for (auto& s : schedules)
            if (registry_.find(s.function)) wanted.emplace(std::pair(s.function, s.name), std::move(s));
        for (const auto& d : scheduler_.definitions())
            if (!wanted.count({d.function, d.name})) scheduler_.remove(d.function, d.name);
        for (auto& [key, s] : wanted) {
            const auto now = scheduler_.get(key.first, key.second);
            if (now && schedule_definition_json(now->definition) == schedule_definition_json(s)) continue;
            try {
                scheduler_.set(s);
            } catch (const std::exception& e) {
                spdlog::error("schedule: stored schedule {}/{} is unusable: {}", s.function, s.name, e.what());
            }
        }
        // This node's file triggers that were deleted through another node.
        std::set<std::pair<std::string, std::string>> stored;
        for (const auto& f : files) stored.emplace(f.function, f.name);
        for (const auto& fn : registry_.list())
            for (const auto& f : files_.list(fn->name))
                if (!stored.count({f.function, f.name}) && files_.remove(f.function, f.name))
                    pools_.retire_function(f.function);
    });
}

bool TriggerApi::handle(const ParsedTarget& t, http::Request& req, http::Responder& respond) {
    const auto& s = t.segments;
    const std::string& m = req.method;
    if (s.size() >= 4 && s[1] == "functions" && s[3] == "file-triggers") return handle_file_triggers(t, req, respond);
    if (s.size() < 4 || s[1] != "functions" || s[3] != "schedules") return false;
    const std::string& function = s[2];
    require_function(function);
    if (s.size() == 4) {
        if (m != "GET") return respond(method_not_allowed(m, "GET")), true;
        json list = json::array();
        for (const auto& st : scheduler_.list(function)) list.push_back(to_json(st));
        respond(json_response(200, {{"schedules", std::move(list)}}));
        return true;
    }
    if (s.size() != 5) return false;
    const std::string& name = s[4];
    validate_trigger_name("schedule", name);
    if (m == "PUT") put_schedule(function, name, req, respond);
    else if (m == "DELETE") delete_schedule(function, name, respond);
    else if (m == "GET") {
        auto st = scheduler_.get(function, name);
        if (!st) throw ApiError::not_found("schedule '" + name + "' of function '" + function + "' does not exist");
        respond(json_response(200, to_json(*st)));
    } else {
        respond(method_not_allowed(m, "GET, PUT, DELETE"));
    }
    return true;
}

void TriggerApi::put_schedule(const std::string& function, const std::string& name, http::Request& req,
                              http::Responder& respond) {
    require_json(req);
    ScheduleDefinition s = parse_schedule(function, name, req.body);
    const bool existed = scheduler_.get(function, name).has_value();
    local_changes_.begin();
    commit_then_apply(
        io_, blocking_, std::move(respond),
        [this, s] {
            const LocalChanges::StoreCall call(local_changes_);
            store_.put_schedule(s);
        },
        [this, s, existed] {
            scheduler_.set(s);
            return json_response(existed ? 200 : 201, to_json(*scheduler_.get(s.function, s.name)));
        });
}

void TriggerApi::delete_schedule(const std::string& function, const std::string& name, http::Responder& respond) {
    local_changes_.begin();
    offload(io_, blocking_, std::move(respond), [this, function, name] {
        const LocalChanges::StoreCall call(local_changes_);
        if (!store_.delete_schedule(function, name))
            throw ApiError::not_found("schedule '" + name + "' of function '" + function + "' does not exist");
        boost::asio::post(io_, [this, function, name] { scheduler_.remove(function, name); });
        return http::Response{204, {}, {}, "application/json"};
    });
}

namespace {

json to_json(const FileTriggerDefinition& f) {
    return {{"function", f.function},
            {"name", f.name},
            {"directory", f.directory.string()},
            {"patterns", f.patterns},
            {"events", f.events},
            {"output_directory", f.output_directory ? json(f.output_directory->string()) : json(nullptr)},
            {"node", f.node},
            {"mount", "/mnt/" + f.name},
            {"output_mount", f.output_directory ? json("/mnt/" + f.name + "-out") : json(nullptr)}};
}

std::filesystem::path existing_directory(const json& v, const std::string& field) {
    if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>()[0] != '/')
        throw ApiError::bad_parameter(field + " must be an absolute path");
    std::error_code ec;
    auto canonical = std::filesystem::canonical(v.get<std::string>(), ec);
    if (ec || !std::filesystem::is_directory(canonical, ec))
        throw ApiError::bad_parameter(field + " '" + v.get<std::string>() + "' is not an existing directory");
    return canonical;
}

bool inside(const std::filesystem::path& p, const std::filesystem::path& dir) {
    auto rel = p.lexically_relative(dir);
    return !rel.empty() && *rel.begin() != "..";
}

FileTriggerDefinition parse_file_trigger(const std::string& function, const std::string& name, std::string_view body,
                                         const std::string& node_id) {
    json doc = parse_json_object(body);
    FileTriggerDefinition f;
    f.function = function;
    f.name = name;
    f.node = node_id;
    f.events = {"created"};
    bool have_directory = false;
    for (const auto& [key, value] : doc.items()) {
        if (key == "directory") {
            f.directory = existing_directory(value, "directory");
            have_directory = true;
        } else if (key == "output_directory") {
            if (!value.is_null()) f.output_directory = existing_directory(value, "output_directory");
        } else if (key == "patterns") {
            if (!value.is_array()) throw ApiError::bad_parameter("patterns must be an array of file name globs");
            for (const auto& p : value) {
                if (!p.is_string() || p.get<std::string>().empty() || p.get<std::string>().find('/') != std::string::npos)
                    throw ApiError::bad_parameter("patterns: each must be a non-empty file name glob without '/' (got " +
                                                  p.dump() + ")");
                f.patterns.push_back(p.get<std::string>());
            }
        } else if (key == "node") {
            // The directory is this host's: it is checked and watched here.
            if (value != node_id)
                throw ApiError::bad_parameter("node: a file trigger watches a directory of the node it is set "
                                              "through; this is node '" + node_id + "', so set it through node " +
                                              value.dump() + " (or leave node out)");
        } else if (key == "events") {
            if (!value.is_array() || value.empty())
                throw ApiError::bad_parameter("events must be a non-empty array; the supported event is \"created\"");
            for (const auto& e : value)
                if (e != "created")
                    throw ApiError::bad_parameter("events: " + e.dump() + " is not supported; use \"created\"");
        } else {
            throw ApiError::bad_parameter("unknown field '" + key +
                                          "' (expected directory, patterns, events, output_directory, node)");
        }
    }
    if (!have_directory) throw ApiError::bad_parameter("directory is required");
    if (f.output_directory) {
        // The function writing its results where it watches would trigger itself.
        if (*f.output_directory == f.directory || inside(*f.output_directory, f.directory))
            throw ApiError::bad_parameter("output_directory must not be the watched directory or inside it");
        struct stat st {};
        if (::stat(f.output_directory->c_str(), &st) == 0 && st.st_uid == 0)
            throw ApiError::bad_parameter(
                "output_directory '" + f.output_directory->string() +
                "' is owned by root; the function writes there as the directory's owner, so chown it to the user "
                "who should own the results");
    }
    return f;
}

}  // namespace

bool TriggerApi::handle_file_triggers(const ParsedTarget& t, http::Request& req, http::Responder& respond) {
    const auto& s = t.segments;
    const std::string& m = req.method;
    const std::string& function = s[2];
    require_function(function);
    if (s.size() == 4) {
        if (m != "GET") return respond(method_not_allowed(m, "GET")), true;
        json list = json::array();
        for (const auto& f : files_.list(function)) list.push_back(to_json(f));
        respond(json_response(200, {{"file_triggers", std::move(list)}}));
        return true;
    }
    if (s.size() != 5) return false;
    const std::string& name = s[4];
    validate_trigger_name("file trigger", name);
    if (m == "PUT") {
        put_file_trigger(function, name, req, respond);
    } else if (m == "GET") {
        const auto* f = files_.get(function, name);
        if (!f) throw ApiError::not_found("file trigger '" + name + "' of function '" + function + "' does not exist");
        respond(json_response(200, to_json(*f)));
    } else if (m == "DELETE") {
        local_changes_.begin();
        commit_then_apply(
            io_, blocking_, std::move(respond),
            [this, function, name] {
                const LocalChanges::StoreCall call(local_changes_);
                if (!store_.delete_file_trigger(function, name))
                    throw ApiError::not_found("file trigger '" + name + "' of function '" + function +
                                              "' does not exist");
            },
            [this, function, name] {
                files_.remove(function, name);
                // Workers started with the trigger's mounts give way to ones without.
                pools_.retire_function(function);
                return http::Response{204, {}, {}, "application/json"};
            });
    } else {
        respond(method_not_allowed(m, "GET, PUT, DELETE"));
    }
    return true;
}

void TriggerApi::put_file_trigger(const std::string& function, const std::string& name, http::Request& req,
                                  http::Responder& respond) {
    require_json(req);
    FileTriggerDefinition f = parse_file_trigger(function, name, req.body, node_id_);
    const bool existed = files_.get(function, name) != nullptr;
    // Watching first: what cannot be watched is refused before anything is stored.
    try {
        files_.set(f);
    } catch (const std::system_error& e) {
        throw ApiError::bad_parameter("directory '" + f.directory.string() + "' cannot be watched: " + e.what());
    }
    local_changes_.begin();
    commit_then_apply(
        io_, blocking_, std::move(respond),
        [this, f] {
            const LocalChanges::StoreCall call(local_changes_);
            store_.put_file_trigger(f);
        },
        [this, f, existed] {
            // Workers started before get the new mounts by being replaced.
            pools_.retire_function(f.function);
            return json_response(existed ? 200 : 201, to_json(f));
        });
}

void TriggerApi::function_deleted(const std::string& name, bool drop_stored) {
    files_.function_deleted(name);
    scheduler_.function_deleted(name);
    if (!drop_stored) return;
    boost::asio::post(blocking_, [this, name] {
        try {
            store_.drop_function(name);
        } catch (const std::exception& e) {
            spdlog::error("triggers: cannot drop the triggers of deleted function={}: {}", name, e.what());
        }
    });
}

}  // namespace funcd
