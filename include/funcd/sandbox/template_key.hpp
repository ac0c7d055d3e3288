#pragma once
// Which runtime template (runtime_template.hpp) a worker is forked from.
#include <string>
#include <vector>

namespace funcd {

// The runtimes a template can hold.
enum class TemplateRuntime { python, node };

// Workers of every function with the same key share one template. A template holds only
// the interpreter, funcd's runtime and (Python) the preloaded modules, never a function's
// code or settings, so functions with the same interpreter, flags and preloads share it.
struct TemplateKey {
    TemplateRuntime runtime = TemplateRuntime::python;
    std::string interpreter;           // host path of the interpreter
    std::vector<std::string> flags;    // its flags, as a worker started plainly gets them
    std::vector<std::string> preload;  // modules imported into the template, in this order

    // "python:/usr/bin/python3 -I -u", "python:/usr/bin/python3 -I -u+numpy,PIL.Image",
    // "node:/usr/bin/node --max-old-space-size=90 --max-semi-space-size=4".
    std::string id() const;
    bool operator==(const TemplateKey&) const = default;
};

}  // namespace funcd
