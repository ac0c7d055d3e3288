#pragma once
// Which runtime template (runtime_template.hpp) a worker is forked from.
#include <string>
#include <vector>

namespace funcd {

// Workers of every function with the same key share one template. A template holds only
// the interpreter, funcd's runtime and the preloaded modules of the host's Python, never a
// function's code or settings, so functions that preload the same modules share it too.
struct TemplateKey {
    std::string interpreter;           // host path of the Python interpreter
    std::vector<std::string> preload;  // modules imported into the template, in this order

    // "python:/usr/bin/python3", or "python:/usr/bin/python3+numpy,PIL.Image".
    std::string id() const;
    bool operator==(const TemplateKey&) const = default;
};

}  // namespace funcd
