'use strict';
// Where require() looks for packages beyond the node_modules directories above a module:
// NODE_PATH, which Node reads once when it starts. Lambda's runtime sets it to its layers'
// directories and the task root when the function has not set it; so should whoever
// starts this runtime (see docs/runtimes.md):
//   <layers>/nodejs/node<major>/node_modules:<layers>/nodejs/node_modules:<task root>
// where <layers> is FUNCD_LAYERS_ROOT (only when the function has layers). When it was
// not set, the runtime sets it now and has Node read it again, so the handler and
// everything it requires see the same search path either way.

function defaultNodePath(layersRoot, taskRoot, nodeMajor) {
  const dirs = [];
  if (layersRoot) dirs.push(`${layersRoot}/nodejs/node${nodeMajor}/node_modules`, `${layersRoot}/nodejs/node_modules`);
  dirs.push(taskRoot);
  return dirs.join(':');
}

// Sets NODE_PATH to the default above; for a runtime started without it.
function useDefaultNodePath(env, layersRoot, taskRoot) {
  env.NODE_PATH = defaultNodePath(layersRoot, taskRoot, process.versions.node.split('.')[0]);
  // Module._initPaths is how Node itself reads NODE_PATH at start; calling it again is the
  // long-standing way to apply a NODE_PATH set later.
  require('node:module')._initPaths();
}

module.exports = { useDefaultNodePath, defaultNodePath };
