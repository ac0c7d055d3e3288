#pragma once
// Bytecode for the python3 runtime, compiled once when the daemon starts.
//
// Inside the sandbox /var/runtime is a read-only bind of the runtime directory, so a
// worker's interpreter can read __pycache__ there but never write it: without this step
// every python3 cold start would compile the runtime from source, a few milliseconds
// each time. The bind keeps the sources' mtime and size, which is what a timestamp-checked .pyc is
// validated against, so the files compiled on the host are valid inside.
#include <chrono>
#include <filesystem>
#include <string>

namespace funcd {

// Generous: compiling the runtime takes ~100 ms, but a host busy starting up can stall.
inline constexpr std::chrono::milliseconds kPythonBytecodeTimeout{30'000};

// Runs `python -I -m compileall` over `runtime_dir`/python and waits for it. Returns
// whether it succeeded; a failure is logged as a warning and is not fatal, since workers
// then still run the runtime from source, only slower. `python` must be the interpreter
// workers run, whose version decides the name and format of the cache files.
bool compile_python_runtime(const std::string& python, const std::filesystem::path& runtime_dir,
                            std::chrono::milliseconds timeout = kPythonBytecodeTimeout);

}  // namespace funcd
