'use strict';
// The runtime's own diagnostics: lines on stderr, outside the handler's log format, so
// they are never mistaken for what the function printed.

function log(message) {
  process.stderr.write(`funcd runtime: ${message}\n`);
}

// Something the runtime cannot go on from (the Runtime API is gone or broken): the worker
// ends and funcd replaces it. stdout and stderr are pipes, written synchronously on Linux,
// so nothing printed before is lost by exiting at once.
function fatal(message) {
  log(message);
  process.exit(1);
}

module.exports = { log, fatal };
