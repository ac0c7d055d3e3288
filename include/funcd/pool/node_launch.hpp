#pragma once
// How a Node.js worker is started (docs/runtimes.md, "What the worker must be started
// with"): V8's heap limits from the function's memory, and the NODE_PATH Lambda's own
// bootstrap gives a function. Both must be set before node starts: V8 sizes its heap and
// Node reads NODE_PATH once, before any JavaScript runs.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace funcd {

// `--max-semi-space-size=S` and `--max-old-space-size=O` for a function of `memory_mb`:
// S = memory_mb / 32 within [1, 64] (V8's young generation is three semi-spaces), and
// O = 0.8 * memory_mb - 3 * S, so the JavaScript heap stays within 80% of the memory and the
// rest is left to Node's native memory and Buffers. Empty when the function's own
// NODE_OPTIONS sets either limit: flags on the command line would override its choice.
std::vector<std::string> node_heap_flags(int memory_mb, const std::map<std::string, std::string>& function_env);

// NODE_PATH: with layers, `<opt>/nodejs/node<major>/node_modules:<opt>/nodejs/node_modules`
// first, then the code root. Nullopt when the function's environment sets its own.
std::optional<std::string> node_path(const std::map<std::string, std::string>& function_env,
                                     std::optional<int> node_major, const std::string& opt_root,
                                     const std::string& task_root);

// Why a Node.js function cannot be forked from a runtime template (runtime_template.hpp),
// whose node started with the template's environment: nullopt when it can. A function
// setting a variable that Node or ICU reads only as the process starts (NODE_OPTIONS,
// NODE_EXTRA_CA_CERTS, any other NODE_* but NODE_PATH and NODE_ENV, LANG, LC_*) starts
// plainly. NODE_PATH and TZ are applied again in a forked runtime (nodejs/template.js).
std::optional<std::string> node_template_refusal(const std::map<std::string, std::string>& function_env);

}  // namespace funcd
