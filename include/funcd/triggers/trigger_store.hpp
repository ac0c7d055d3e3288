#pragma once
// Durable trigger definitions in SQLite: schedules and file triggers per function, and
// the route table. Thread-safe; called through the blocking pool (start-up aside).
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"
#include "funcd/registry/sqlite.hpp"

namespace funcd {

struct ScheduleDefinition {
    std::string function;
    std::string name;
    std::string expression;
    std::optional<nlohmann::json> input;  // the event; unset: an EventBridge "Scheduled Event"
    bool enabled = true;
    SystemTime created;  // rate() schedules fire at created + k * period
};

struct FileTriggerDefinition {
    std::string function;
    std::string name;
    std::filesystem::path directory;
    std::vector<std::string> patterns;
    std::vector<std::string> events;  // "created"
    std::optional<std::filesystem::path> output_directory;
};

class TriggerStore {
public:
    explicit TriggerStore(const std::filesystem::path& db_path);

    std::vector<ScheduleDefinition> schedules();
    void put_schedule(const ScheduleDefinition& s);
    bool delete_schedule(const std::string& function, const std::string& name);

    std::vector<FileTriggerDefinition> file_triggers();
    void put_file_trigger(const FileTriggerDefinition& t);
    bool delete_file_trigger(const std::string& function, const std::string& name);

    // The route table as the API last accepted it ([] when never set).
    nlohmann::json routes();
    void put_routes(const nlohmann::json& routes);

    // The function was deleted: its schedules and file triggers go.
    void drop_function(const std::string& function);

private:
    std::mutex mutex_;
    sqlite::Database db_;
};

}  // namespace funcd
