#pragma once
// Finds the runtimes this host has, once at start-up: the configured Python and, for each
// Lambda identifier python3.X, the host's own /usr/bin/python3.X when there is one; and the
// configured Node.js's version, which every nodejs identifier runs on.
#include <string>

#include "funcd/pool/runtime_catalog.hpp"

namespace funcd {

RuntimeCatalog probe_runtimes(const std::string& default_python, const std::string& node);

}  // namespace funcd
