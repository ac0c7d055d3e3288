#include "funcd/triggers/trigger_store.hpp"

namespace funcd {

nlohmann::json schedule_definition_json(const ScheduleDefinition& s) {
    return {{"expression", s.expression},
            {"input", s.input ? *s.input : nlohmann::json(nullptr)},
            {"has_input", s.input.has_value()},
            {"enabled", s.enabled},
            {"created_us", to_unix_us(s.created)}};
}

ScheduleDefinition schedule_definition_from_json(std::string function, std::string name, const nlohmann::json& j) {
    ScheduleDefinition s;
    s.function = std::move(function);
    s.name = std::move(name);
    s.expression = j.at("expression").get<std::string>();
    if (j.value("has_input", false)) s.input = j.at("input");
    s.enabled = j.value("enabled", true);
    s.created = from_unix_us(j.value("created_us", std::int64_t{0}));
    return s;
}

nlohmann::json file_trigger_definition_json(const FileTriggerDefinition& t) {
    return {{"directory", t.directory.string()},
            {"patterns", t.patterns},
            {"events", t.events},
            {"output_directory", t.output_directory ? nlohmann::json(t.output_directory->string()) : nlohmann::json(nullptr)},
            {"node", t.node}};
}

FileTriggerDefinition file_trigger_definition_from_json(std::string function, std::string name, const nlohmann::json& j) {
    FileTriggerDefinition t;
    t.function = std::move(function);
    t.name = std::move(name);
    t.directory = j.at("directory").get<std::string>();
    t.patterns = j.value("patterns", std::vector<std::string>{});
    t.events = j.value("events", std::vector<std::string>{"created"});
    if (j.contains("output_directory") && j["output_directory"].is_string())
        t.output_directory = j["output_directory"].get<std::string>();
    t.node = j.value("node", std::string());
    return t;
}

}  // namespace funcd
