#pragma once
// TriggerStore on the single host's SQLite database (funcd.db): schedules, file_triggers,
// routes, and schedule_fires (the fires taken, kept a week).
#include <filesystem>
#include <mutex>

#include "funcd/registry/sqlite.hpp"
#include "funcd/triggers/trigger_store.hpp"

namespace funcd {

class SqliteTriggerStore final : public TriggerStore {
public:
    explicit SqliteTriggerStore(const std::filesystem::path& db_path);

    bool shared() const override { return false; }
    std::vector<ScheduleDefinition> schedules() override;
    void put_schedule(const ScheduleDefinition& s) override;
    bool delete_schedule(const std::string& function, const std::string& name) override;
    bool claim_fire(const std::string& function, const std::string& name, SystemTime at) override;
    std::vector<FileTriggerDefinition> file_triggers() override;
    void put_file_trigger(const FileTriggerDefinition& t) override;
    bool delete_file_trigger(const std::string& function, const std::string& name) override;
    nlohmann::json routes() override;
    void put_routes(const nlohmann::json& routes) override;
    void drop_function(const std::string& function) override;

private:
    std::mutex mutex_;
    sqlite::Database db_;
};

}  // namespace funcd
