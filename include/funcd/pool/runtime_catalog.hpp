#pragma once
// The runtimes this host runs: which interpreter serves each runtime identifier, and the
// version really used, which funcd reports (Lambda's RuntimeVersionConfig, the
// `INIT_START Runtime Version:` log line) because a `python3.12` function may run on
// another Python 3 when the host has no 3.12.
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace funcd {

struct Interpreter {
    std::string path;     // e.g. /usr/bin/python3.11
    std::string version;  // e.g. 3.11.2; empty when unknown
};

class RuntimeCatalog {
public:
    // `default_python` serves `python3` and every python3.X the host has no own interpreter
    // for; `exact` maps identifiers (python3.11) to the host's interpreter of that version.
    RuntimeCatalog(Interpreter default_python, std::map<std::string, Interpreter, std::less<>> exact = {});

    const Interpreter& python_for(std::string_view runtime_id) const;
    // What INIT_START and RuntimeVersionConfig name: "python:3.11.2", "provided:funcd".
    std::string runtime_version(std::string_view runtime_id) const;
    // A stable id of that version, for Lambda's RuntimeVersionArn.
    std::string runtime_version_hash(std::string_view runtime_id) const;
    // Every distinct Python interpreter in use (each needs the runtime's bytecode).
    std::vector<std::string> python_paths() const;

private:
    Interpreter default_python_;
    std::map<std::string, Interpreter, std::less<>> exact_;
};

}  // namespace funcd
