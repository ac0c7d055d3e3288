#pragma once
// TriggerStore in the PostgreSQL database nodes share (funcd_schedules, funcd_file_triggers,
// funcd_routes, funcd_schedule_fires; pg_migrator.cpp). Writes notify kStateChannel with
// "triggers", so the other nodes read the definitions again at once.
#include <string>

#include "funcd/state/pg_session.hpp"
#include "funcd/triggers/trigger_store.hpp"

namespace funcd {

class PostgresTriggerStore final : public TriggerStore {
public:
    // Connects now (throws PgError). `node_id`: recorded with each fire this node takes.
    PostgresTriggerStore(std::string conninfo, std::string node_id);

    bool shared() const override { return true; }
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
    PgSession session_;
    const std::string node_id_;
};

}  // namespace funcd
