// A function's settings as deployed: the deploy request's JSON body
// (funcd::parse_deploy_json), its query-string form (funcd::parse_deploy_query) and the
// concurrency settings document (funcd::parse_concurrency_json).
//
// Input: a JSON document (deploy JSON and concurrency JSON), or anything else read as a
// query string "key=value&..." (deploy query, with a placeholder zip).
//
// Invariants:
// - bad settings are refused with ApiError 400 (413 for an oversized zip), never another
//   exception, with a message;
// - accepted settings pass validate_config() and describe() as JSON (all their text UTF-8);
// - written back as a deploy JSON body, accepted settings parse to the same settings (and
//   layer ARNs to the same layers);
// - accepted concurrency settings are in range.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "../fuzz_check.hpp"
#include "../refusal_check.hpp"
#include "funcd/common/api_error.hpp"
#include "funcd/registry/arn.hpp"
#include "funcd/registry/function_config.hpp"

namespace {

using json = nlohmann::json;
using funcd::ApiError;

constexpr std::string_view kName = "fuzzed-function";

void check_refusal(const ApiError& e, std::string_view input) { funcd::fuzz::check_refusal(e, input, {400, 413}); }

// The deploy JSON body that says exactly what `req` holds.
json deploy_json(const funcd::DeployRequest& req) {
    const auto& c = req.config;
    json doc = {{"runtime", c.runtime_name()},
                {"handler", c.handler},
                {"memory_mb", c.memory_mb},
                {"timeout_s", c.timeout_s},
                {"keep_alive_s", c.keep_alive_s},
                {"keep_alive", funcd::to_string(c.keep_alive_mode)},
                {"description", c.description},
                {"ephemeral_storage_mb", c.ephemeral_storage_mb},
                {"network", funcd::to_string(c.network)},
                {"url_auth", funcd::to_string(c.url_auth)},
                {"env", c.env}};
    if (c.cors != funcd::CorsSettings{}) doc["cors"] = funcd::to_json(c.cors);
    if (!c.preload.empty()) doc["preload"] = c.preload;
    if (req.concurrency_given) {
        doc["reserved_concurrency"] = c.concurrency.reserved ? json(*c.concurrency.reserved) : json(nullptr);
        doc["provisioned_concurrency"] = c.concurrency.provisioned;
    }
    if (!req.layers.empty()) {
        json layers = json::array();
        for (const auto& l : req.layers)
            layers.push_back(funcd::layer_version_arn(l.region.value_or("us-east-1"), l.account.value_or("000000000000"),
                                                      l.name, l.version));
        doc["layers"] = std::move(layers);
    }
    return doc;
}

void check_accepted(const funcd::DeployRequest& req) {
    const auto& c = req.config;
    FUZZ_CHECK(c.name == kName, "the name changed to " + c.name);
    FUZZ_CHECK(!c.handler.empty(), "no handler");
    try {
        funcd::validate_config(c);
    } catch (const ApiError& e) {
        FUZZ_CHECK(false, std::string("accepted settings fail validate_config: ") + e.what());
    }
    // Accepted settings are stored and described as JSON: every string in them is UTF-8
    // (dump() throws otherwise), whatever bytes the query form carried.
    funcd::FunctionVersion version;
    version.config = c;
    try {
        (void)funcd::describe(version).dump();
    } catch (const json::exception& e) {
        FUZZ_CHECK(false, std::string("accepted settings do not serialise: ") + e.what());
    }

    const std::string again = deploy_json(req).dump();
    funcd::DeployRequest reparsed;
    try {
        reparsed = funcd::parse_deploy_json(kName, again);
    } catch (const ApiError& e) {
        FUZZ_CHECK(false, "settings written back are refused: " + std::string(e.what()) + "\n" + again);
    }
    FUZZ_CHECK(reparsed.config == c, "settings written back parse differently:\n" + again);
    FUZZ_CHECK(reparsed.concurrency_given == req.concurrency_given, "concurrency_given changed");
    FUZZ_CHECK(reparsed.layers.size() == req.layers.size(), "layers changed");
    for (std::size_t i = 0; i < req.layers.size(); ++i)
        FUZZ_CHECK(reparsed.layers[i].name == req.layers[i].name && reparsed.layers[i].version == req.layers[i].version,
                   "layer " + std::to_string(i) + " changed: " + req.layers[i].name + " -> " + reparsed.layers[i].name);
}

std::vector<std::pair<std::string, std::string>> query_params(std::string_view q) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto piece = q.substr(0, amp);
        const auto eq = piece.find('=');
        out.emplace_back(std::string(piece.substr(0, eq)),
                         eq == std::string_view::npos ? std::string() : std::string(piece.substr(eq + 1)));
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (input.starts_with('{')) {
        try {
            check_accepted(funcd::parse_deploy_json(kName, input));
        } catch (const ApiError& e) {
            check_refusal(e, input);
        }
        try {
            const funcd::ConcurrencySettings current{7, 3};
            const auto c = funcd::parse_concurrency_json(input, current);
            if (c.reserved) FUZZ_CHECK(*c.reserved >= 0, "negative reserved concurrency");
            FUZZ_CHECK(c.provisioned >= 0, "negative provisioned concurrency");
        } catch (const ApiError& e) {
            check_refusal(e, input);
        }
        return 0;
    }
    try {
        check_accepted(funcd::parse_deploy_query(kName, query_params(input), "PK\x05\x06"));
    } catch (const ApiError& e) {
        check_refusal(e, input);
    }
    return 0;
}
