#pragma once
// The entry point of a runtime template's native half (src/sandbox/template/), which the
// template's interpreter calls once: Python through ctypes, Node.js through the N-API
// module in the same library (node_addon.cpp).
#include <cstddef>

// Serves the daemon's fork requests on `control` for as long as the template lives.
// Returns 0 only in a forked runtime, inside its sandbox, with `*env` (malloc'd,
// NUL-separated KEY=VALUE entries, the runtime's environment) and `*env_len`; in the
// template it never returns: it exits when the daemon closes its end.
extern "C" __attribute__((visibility("default"))) int funcd_template_serve(int control, char** env,
                                                                            std::size_t* env_len);
