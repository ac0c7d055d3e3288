#include "funcd/registry/record_changes.hpp"

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"

namespace funcd {

void set_latest(RecordChange& change, FunctionConfig config, const StoredCode* code, CodeCheck check) {
    validate_config(config);
    const auto now = std::chrono::system_clock::now();
    if (!change.record) {
        change.record = std::make_shared<FunctionRecord>();
        change.record->name = config.name;
        change.record->created = now;
        change.record->policy_revision_id = new_uuid();
    }
    FunctionRecord& r = *change.record;
    if (!code && !r.latest)
        throw ApiError::bad_parameter("code is required when creating function '" + config.name + "'");
    auto next = std::make_shared<FunctionVersion>();
    next->config = std::move(config);
    next->version = kLatestVersion;
    next->generation = r.latest ? r.latest->generation + 1 : 1;
    if (code) {
        next->code_sha256 = code->sha256;
        next->code_size = code->size;
        next->code_dir = code->dir;
    } else {
        next->code_sha256 = r.latest->code_sha256;
        next->code_size = r.latest->code_size;
        next->code_dir = r.latest->code_dir;
    }
    next->opt_dir = change.layer_view(next->config.layers);
    validate_code_for_runtime(next->config, next->code_dir, next->opt_dir, check);
    next->last_modified = now;
    next->revision_id = new_uuid();
    r.latest = std::move(next);
    r.latest_published_as.reset();
    r.revision_id = r.latest->revision_id;
}

FunctionPtr publish_latest(FunctionRecord& r, const std::optional<std::string>& description, bool reuse_unchanged) {
    if (reuse_unchanged && !r.versions.empty()) {
        // Unchanged since it was published, or changed back to the same code and settings
        // (a version's own description aside): Lambda returns the existing version.
        const FunctionPtr& newest = r.versions.rbegin()->second;
        FunctionConfig same = r.latest->config;
        same.description = newest->config.description;
        if (r.latest_published_as == newest->version ||
            (newest->code_sha256 == r.latest->code_sha256 && newest->config.same_version_settings(same))) {
            r.latest_published_as = newest->version;
            return newest;
        }
    }
    auto v = std::make_shared<FunctionVersion>(*r.latest);
    v->version = ++r.last_published;
    v->generation = v->version;
    v->last_modified = std::chrono::system_clock::now();
    v->revision_id = new_uuid();
    if (description) v->config.description = *description;
    r.versions[v->version] = v;
    r.latest_published_as = v->version;
    return v;
}

std::vector<std::string> aliases_of(const FunctionRecord& r, std::int64_t number) {
    std::vector<std::string> out;
    for (const auto& [name, a] : r.aliases)
        if (a.function_version == number || (a.additional_version && a.additional_version->first == number))
            out.push_back(name);
    return out;
}

bool delete_version(FunctionRecord& r, std::int64_t number) {
    if (!r.versions.count(number)) return false;
    if (auto names = aliases_of(r, number); !names.empty()) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        throw ApiError::conflict("Unable to delete version because the following aliases reference it: [" + list +
                                 "]");
    }
    const std::string q = std::to_string(number);
    r.versions.erase(number);
    r.provisioned.erase(q);
    r.policies.erase(q);
    r.urls.erase(q);
    if (r.latest_published_as == number) r.latest_published_as.reset();
    return true;
}

}  // namespace funcd
