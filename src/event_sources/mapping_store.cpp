#include "funcd/event_sources/mapping_store.hpp"

#include <stdexcept>

namespace funcd {
namespace {

// The connection is sealed as EnvCipher seals a function's environment: in a document
// shaped as a function record whose one environment holds it, named after the mapping.
// The name is associated data, so a sealed connection opens only for its own mapping; a
// function's name cannot contain ':', so neither can it pass for a function's environment.
nlohmann::json connection_sealing_document(const std::string& uuid, nlohmann::json env) {
    return {{"name", "event-source-mapping:" + uuid}, {"latest", {{"config", {{"env", std::move(env)}}}}}};
}

}  // namespace

std::string mapping_lease_name(const std::string& uuid) { return "mapping:" + uuid; }

nlohmann::json sealed_mapping_json(const EnvCipher& cipher, const MappingConfig& c) {
    nlohmann::json j = to_stored_json(c);
    nlohmann::json doc = connection_sealing_document(c.uuid, {{"connection", c.connection}});
    cipher.seal(doc);
    j["connection"] = doc["latest"]["config"]["env"];
    return j;
}

std::pair<MappingConfig, bool> open_mapping_json(const EnvCipher& cipher, const std::string& uuid,
                                                 const std::string& stored) {
    nlohmann::json j = nlohmann::json::parse(stored);
    const nlohmann::json& sealed = j.at("connection");
    if (!sealed.is_object() || !sealed.contains("sealed")) throw std::runtime_error("its connection is not sealed");
    nlohmann::json doc = connection_sealing_document(uuid, sealed);
    const bool stale = cipher.open(doc);
    j["connection"] = doc["latest"]["config"]["env"].at("connection").get<std::string>();
    return {mapping_config_from_stored_json(j), stale};
}

}  // namespace funcd
