#pragma once
// Event source mappings and their checkpoints. A mapping's connection string is sealed with
// the environment cipher (EnvCipher) before it is written, so the database, a copy or a
// backup of it, holds no database password. The checkpoint is the position of the last
// change delivered; after a restart (a crash included), or on the node that takes the
// mapping over, delivery resumes after it, so a change is delivered at least once.
// One interface, two backends: this host's funcd.db (SqliteMappingStore) or the database
// nodes share (PostgresMappingStore).
// Thread-safe; every call may wait on disk or the network, so the loop calls it through the
// blocking pool (start-up aside).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/event_sources/mapping_config.hpp"
#include "funcd/registry/env_cipher.hpp"

namespace funcd {

struct StoredMapping {
    MappingConfig config;
    std::optional<ChangePosition> checkpoint;  // unset: nothing delivered yet
};

class MappingStore {
public:
    virtual ~MappingStore() = default;

    // Every mapping that can be read, by function then name; unreadable ones are logged and
    // skipped.
    virtual std::vector<StoredMapping> list() = 0;
    // Inserts or replaces the mapping's config (its checkpoint stays). Another mapping of the
    // same function with the same name: ApiError::conflict.
    virtual void put(const MappingConfig& c) = 0;
    virtual bool remove(const std::string& uuid) = 0;
    // False when this node may not move the mapping's checkpoint: the mapping is gone, or
    // (nodes sharing a database) another node has taken it over.
    virtual bool save_checkpoint(const std::string& uuid, ChangePosition position) = 0;
    // The function was deleted: its mappings go; returns them (to tear their sources down).
    virtual std::vector<MappingConfig> drop_function(const std::string& function) = 0;
};

// The lease a node holds while it runs a mapping (LeaseStore): one node at a time.
std::string mapping_lease_name(const std::string& uuid);

// The config as stored: its JSON with the connection sealed for this mapping alone (the
// mapping's uuid is the sealed value's associated data).
nlohmann::json sealed_mapping_json(const EnvCipher& cipher, const MappingConfig& c);
// The config from what sealed_mapping_json stored, and whether its connection should be
// sealed again (it is sealed under an older key). Throws when it cannot be read or opened.
std::pair<MappingConfig, bool> open_mapping_json(const EnvCipher& cipher, const std::string& uuid,
                                                 const std::string& stored);

}  // namespace funcd
