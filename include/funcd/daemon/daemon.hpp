#pragma once
// Builds the daemon's parts from its options, wires them through their constructors,
// and runs the event loop until SIGINT/SIGTERM. Two phases: construct everything
// (opening the database, replaying the usage journal), then listen.
#include "funcd/daemon/options.hpp"

namespace funcd {

// Returns the process exit code.
int run_daemon(const DaemonOptions& options);

// The API token from the options, or the one stored in DATA_DIR/api-token (created,
// mode 0600, on first start).
std::string load_or_create_api_token(const DaemonOptions& options);

}  // namespace funcd
