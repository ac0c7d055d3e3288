'use strict';
// Entry point of funcd's Node.js runtime: runs one function's handler against the Lambda
// Runtime API, as Lambda's Node.js runtime does. funcd starts it as
//   node --max-old-space-size=<MB> --max-semi-space-size=<MB> /var/runtime/nodejs/bootstrap.js
// in the function's code root, with NODE_PATH set (docs/runtimes.md).
//
// It uses nothing but Node's own modules, and loads at start only what the loop needs
// (node:net, which stdout needs anyway); streaming, ES module loading and the HTTP response
// prelude are loaded when first used, because everything loaded here is paid for on every
// cold start.
const { RuntimeApiClient, API_FD_VARIABLE } = require('./runtime_api_client.js');
const { Runtime } = require('./runtime.js');
const { loadHandler } = require('./handler_loader.js');
const { patchConsole } = require('./console_log.js');
const { installAwslambdaGlobal } = require('./awslambda_global.js');
const { useModulePaths } = require('./module_paths.js');

// Names where the function's layers are (/opt in the sandbox).
const LAYERS_ROOT_VARIABLE = 'FUNCD_LAYERS_ROOT';

function main() {
  const env = process.env;
  // Read, then removed: neither is the handler's business.
  const apiFd = env[API_FD_VARIABLE];
  const layersRoot = env[LAYERS_ROOT_VARIABLE];
  delete env[API_FD_VARIABLE];
  delete env[LAYERS_ROOT_VARIABLE];

  const taskRoot = env.LAMBDA_TASK_ROOT || process.cwd();
  useModulePaths(env, layersRoot, taskRoot);
  const logError = patchConsole(env);
  installAwslambdaGlobal(env);
  const client = new RuntimeApiClient(env.AWS_LAMBDA_RUNTIME_API || '', apiFd);
  new Runtime(client, logError, env).start(() => loadHandler(taskRoot, env._HANDLER || ''));
}

main();
