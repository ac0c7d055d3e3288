#pragma once
// MappingStore in the PostgreSQL database nodes share (funcd_event_source_mappings;
// pg_migrator.cpp). Writes notify kStateChannel with "mappings", so the other nodes read the
// mappings again at once. A checkpoint moves only while this node holds the mapping's lease
// (mapping_lease_name): a node that lost it, and does not know yet, cannot move the position
// the node that took the mapping over resumes from.
#include <string>

#include "funcd/event_sources/mapping_store.hpp"
#include "funcd/state/pg_session.hpp"

namespace funcd {

class PostgresMappingStore final : public MappingStore {
public:
    // Connects now (throws PgError). Mappings sealed under an older key are sealed again
    // under the current one. `node_id`: the lease holder this node's checkpoints need.
    PostgresMappingStore(std::string conninfo, std::string node_id, const EnvCipher& cipher);

    std::vector<StoredMapping> list() override;
    void put(const MappingConfig& c) override;
    bool remove(const std::string& uuid) override;
    bool save_checkpoint(const std::string& uuid, ChangePosition position) override;
    std::vector<MappingConfig> drop_function(const std::string& function) override;

private:
    PgSession session_;
    const std::string node_id_;
    const EnvCipher& cipher_;
};

}  // namespace funcd
