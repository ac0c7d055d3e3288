#include "funcd/state/node_store.hpp"

namespace funcd {

nlohmann::json node_report_json(const NodeReport& report) {
    return {{"advertise_url", report.advertise_url},
            {"version", report.version},
            {"started_ms", report.started_ms},
            {"load", report.load}};
}

NodeReport node_report_from_json(const std::string& id, const nlohmann::json& j) {
    NodeReport r;
    r.id = id;
    r.advertise_url = j.value("advertise_url", "");
    r.version = j.value("version", "");
    r.started_ms = j.value("started_ms", std::int64_t{0});
    r.load = j.value("load", nlohmann::json::object());
    return r;
}

}  // namespace funcd
