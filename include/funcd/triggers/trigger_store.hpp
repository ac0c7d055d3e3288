#pragma once
// Durable trigger definitions: schedules and file triggers per function, the route table,
// and which schedule fires were taken. One interface, two backends: SQLite on a single host
// (sqlite_trigger_store.hpp), PostgreSQL shared by nodes (postgres_trigger_store.hpp).
// Thread-safe; called through the blocking pool (start-up aside).
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/common/time_format.hpp"

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
    // The node that watches the directory (a host's directory): the node it was set
    // through. Empty in definitions from before nodes existed: this host's.
    std::string node;
};

// How long taken schedule fires are remembered (TriggerStore::claim_fire): nodes ask about a
// fire within seconds of its time, so a week leaves room for any clock a node may have.
inline constexpr std::chrono::hours kScheduleFiresKept{24 * 7};

// The stored forms of definitions, the same in every backend.
nlohmann::json schedule_definition_json(const ScheduleDefinition& s);
ScheduleDefinition schedule_definition_from_json(std::string function, std::string name, const nlohmann::json& j);
nlohmann::json file_trigger_definition_json(const FileTriggerDefinition& t);
FileTriggerDefinition file_trigger_definition_from_json(std::string function, std::string name,
                                                        const nlohmann::json& j);

class TriggerStore {
public:
    virtual ~TriggerStore() = default;

    // Whether other nodes share the store (and change its definitions).
    virtual bool shared() const = 0;

    virtual std::vector<ScheduleDefinition> schedules() = 0;
    virtual void put_schedule(const ScheduleDefinition& s) = 0;
    virtual bool delete_schedule(const std::string& function, const std::string& name) = 0;
    // Takes the fire of schedule (function, name) at `at` for the caller: true once per fire
    // time, whichever node asks first; false for every later ask.
    virtual bool claim_fire(const std::string& function, const std::string& name, SystemTime at) = 0;

    virtual std::vector<FileTriggerDefinition> file_triggers() = 0;
    virtual void put_file_trigger(const FileTriggerDefinition& t) = 0;
    virtual bool delete_file_trigger(const std::string& function, const std::string& name) = 0;

    // The route table as the API last accepted it ([] when never set).
    virtual nlohmann::json routes() = 0;
    virtual void put_routes(const nlohmann::json& routes) = 0;

    // The function was deleted: its schedules and file triggers go.
    virtual void drop_function(const std::string& function) = 0;
};

}  // namespace funcd
