#pragma once
// The runtimes this host runs: which interpreter serves each runtime identifier, and the
// version really used, which funcd reports (Lambda's RuntimeVersionConfig, the
// `INIT_START Runtime Version:` log line) because a `python3.12` function may run on
// another Python 3 when the host has no 3.12, and every `nodejsNN.x` runs on the host's
// one Node.js.
#include <map>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace funcd {

struct Interpreter {
    std::string path;     // e.g. /usr/bin/python3.11
    std::string version;  // e.g. 3.11.2; empty when unknown
};

// The oldest Node.js funcd's runtime (runtime/nodejs) is tested on: 18, Debian 12's Node.js
// (18.19) and the oldest major Lambda still runs (nodejs18.x).
inline constexpr int kMinNodeMajor = 18;

class RuntimeCatalog {
public:
    // `default_python` serves `python3` and every python3.X the host has no own interpreter
    // for; `exact` maps identifiers (python3.11) to the host's interpreter of that version.
    // `node` serves `nodejs` and every nodejsNN.x; an empty path: this host runs none.
    RuntimeCatalog(Interpreter default_python, std::map<std::string, Interpreter, std::less<>> exact = {},
                   Interpreter node = {});

    const Interpreter& python_for(std::string_view runtime_id) const;
    const Interpreter& node() const { return node_; }
    // The major version of the host's Node.js, if it is known.
    std::optional<int> node_major() const;
    // Why this host cannot run functions of `runtime_id` (a message for the deploy's 400),
    // or nullopt when it can. Only a Node.js identifier can be refused: one asking for a
    // newer major version than the host's Node.js, or any when the host has no usable
    // Node.js. An older major version runs on the host's newer Node.js.
    std::optional<std::string> refusal(std::string_view runtime_id) const;
    // Modules a function may preload into its template (--preload-modules), and why a list
    // is refused (a message for the deploy's 400), or nullopt.
    void allow_preload(std::set<std::string, std::less<>> modules) { preloadable_ = std::move(modules); }
    std::optional<std::string> preload_refusal(const std::vector<std::string>& modules) const;
    // What INIT_START and RuntimeVersionConfig name: "python:3.11.2", "nodejs:20.20.2",
    // "provided:funcd".
    std::string runtime_version(std::string_view runtime_id) const;
    // A stable id of that version, for Lambda's RuntimeVersionArn.
    std::string runtime_version_hash(std::string_view runtime_id) const;
    // Every distinct Python interpreter in use (each needs the runtime's bytecode).
    std::vector<std::string> python_paths() const;

private:
    Interpreter default_python_;
    std::map<std::string, Interpreter, std::less<>> exact_;
    Interpreter node_;
    std::set<std::string, std::less<>> preloadable_;
};

}  // namespace funcd
