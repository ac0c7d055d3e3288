'use strict';
// Entry point of funcd's Node.js runtime: runs one function's handler against the Lambda
// Runtime API, as Lambda's Node.js runtime does. funcd starts it as
//   node --max-old-space-size=<MB> --max-semi-space-size=<MB> /var/runtime/nodejs/bootstrap.js
// in the function's code root, with NODE_PATH set (docs/runtimes.md).
//
// It uses nothing but Node's own modules, and loads at start only what the loop needs
// (node:net, which stdout needs anyway); streaming, ES module loading, the HTTP response
// prelude and everything about errors are loaded when first used, because everything
// loaded here is paid for on every cold start.
const fs = require('node:fs');
const path = require('node:path');
const { compileFunction } = require('node:vm');

// The runtime's own files are loaded by runtimeModule(), not by require(): require() also
// resolves, stats and realpaths each file and looks for its package.json, which for the
// nine loaded at start cost about 2.5 ms of a cold start (Node 20 on the reference VM: 6 ms
// with require(), 3.5 ms without). They stay out of require.cache, so handler code cannot reach
// them by accident. Their own require() takes './<file>.js' (another of them) or a Node
// module.
const runtimeModules = new Map();

function runtimeModule(file) {
  let module = runtimeModules.get(file);
  if (module) return module.exports;
  module = { exports: {} };
  runtimeModules.set(file, module);
  const filename = path.join(__dirname, file);
  const parameters = ['exports', 'require', 'module', '__filename', '__dirname'];
  const body = compileFunction(fs.readFileSync(filename, 'utf8'), parameters, { filename });
  body.call(module.exports, module.exports, runtimeRequire, module, filename, __dirname);
  return module.exports;
}

function runtimeRequire(specifier) {
  return specifier.startsWith('./') ? runtimeModule(specifier.slice(2)) : require(specifier);
}

// Node's module system, for loading the handler: import() works only in code Node loaded.
const handlerModules = { require, import: (url) => import(url) };

// Names where the function's layers are (/opt in the sandbox).
const LAYERS_ROOT_VARIABLE = 'FUNCD_LAYERS_ROOT';

function main() {
  const { RuntimeApiClient, API_FD_VARIABLE } = runtimeModule('runtime_api_client.js');
  const { Runtime } = runtimeModule('runtime.js');
  const { loadHandler } = runtimeModule('handler_loader.js');
  const { patchConsole } = runtimeModule('console_log.js');
  const { installAwslambdaGlobal } = runtimeModule('awslambda_global.js');

  const env = process.env;
  // Read, then removed: neither is the handler's business.
  const apiFd = env[API_FD_VARIABLE];
  const layersRoot = env[LAYERS_ROOT_VARIABLE];
  delete env[API_FD_VARIABLE];
  delete env[LAYERS_ROOT_VARIABLE];

  const taskRoot = env.LAMBDA_TASK_ROOT || process.cwd();
  if (env.NODE_PATH === undefined) runtimeModule('module_paths.js').useDefaultNodePath(env, layersRoot, taskRoot);
  const logError = patchConsole(env);
  installAwslambdaGlobal(env);
  const client = new RuntimeApiClient(env.AWS_LAMBDA_RUNTIME_API || '', apiFd);
  new Runtime(client, logError, env).start(() => loadHandler(taskRoot, env._HANDLER || '', handlerModules));
}

main();
