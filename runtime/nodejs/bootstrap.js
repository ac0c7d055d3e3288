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

// The V8 flags that size the JavaScript heap (funcd passes both, from the function's memory).
const HEAP_FLAGS = ['--max-old-space-size', '--max-semi-space-size'];

// Node compiles its own modules that are not in its startup snapshot (node:vm, node:net and
// the streams under it here; node:https, node:crypto, node:zlib and so on for a handler that
// loads them) from a code cache built into the binary. V8 takes a code cache only when the
// flags it runs with are those the cache was made with, Node's defaults; with the heap flags
// funcd starts every worker with, it refuses it and each of those modules is compiled from
// source instead: node:net took about three times as long (Node 20, docs/benchmarks.md).
// V8 reads the heap flags only when it creates the heap, before any JavaScript runs, so
// setting them back to their defaults changes the check and nothing else (the heap keeps
// its limits: v8.getHeapStatistics().heap_size_limit does not move). They are set again
// once the function is initialised, so that from then on (worker threads the handler starts,
// v8.cachedDataVersionTag()) everything sees the flags the process was started with.
// Returns what sets them again.
function unsetHeapFlags() {
  const given = heapFlagsGiven();
  if (!given.length) return () => {};
  let v8;
  try {
    // Not node:v8: loading it loads the streams modules, compiled from source before the
    // flags are unset, which is most of what this saves. process.binding('v8') warns that it
    // is deprecated; the warning is not the function's business.
    const quiet = process.noDeprecation;
    process.noDeprecation = true;
    try {
      v8 = process.binding('v8');
    } finally {
      process.noDeprecation = quiet;
    }
  } catch {
    return () => {};  // a Node without it: modules are compiled from source, as before
  }
  if (typeof v8?.setFlagsFromString !== 'function') return () => {};
  for (const flag of HEAP_FLAGS) v8.setFlagsFromString(`${flag}=0`);
  return () => {
    for (const flag of given) v8.setFlagsFromString(flag);
  };
}

// The heap flags the process was started with, as --name=value, in the order Node applied
// them: NODE_OPTIONS, then the command line. V8 takes '_' for '-' in a flag's name, and
// the value as the next word.
function heapFlagsGiven() {
  const words = [...(process.env.NODE_OPTIONS || '').split(' ').filter(Boolean), ...process.execArgv];
  const given = [];
  for (let i = 0; i < words.length; i++) {
    const equals = words[i].indexOf('=');
    const name = (equals < 0 ? words[i] : words[i].slice(0, equals)).replace(/_/g, '-');
    if (!HEAP_FLAGS.includes(name)) continue;
    if (equals >= 0) given.push(`${name}=${words[i].slice(equals + 1)}`);
    else if (i + 1 < words.length) given.push(`${name}=${words[++i]}`);
  }
  return given;
}

const setHeapFlagsAgain = unsetHeapFlags();
const { compileFunction } = require('node:vm');

// The runtime's own files are loaded by runtimeModule(), not by require(): require() also
// resolves, stats and realpaths each file and looks for its package.json, which for the
// nine loaded at start cost about 2.5 ms of a cold start (Node 20 on the reference VM: 6 ms
// with require(), 3.5 ms without). They stay out of require.cache, so handler code cannot reach
// them by accident. Their own require() takes './<file>.js' (another of them) or a Node
// module.
const runtimeModules = new Map();
// Where they are read from, and the directory they are named in (stack traces, __dirname):
// this file's, except in a runtime template (template.js), which reads them on the host
// and names them as a sandbox sees them.
const runtimeDir = { read: __dirname, shown: __dirname };

function runtimeModule(file) {
  let module = runtimeModules.get(file);
  if (module) return module.exports;
  module = { exports: {} };
  runtimeModules.set(file, module);
  const filename = path.join(runtimeDir.shown, file);
  const parameters = ['exports', 'require', 'module', '__filename', '__dirname'];
  const body = compileFunction(fs.readFileSync(path.join(runtimeDir.read, file), 'utf8'), parameters, { filename });
  body.call(module.exports, module.exports, runtimeRequire, module, filename, runtimeDir.shown);
  return module.exports;
}

function runtimeRequire(specifier) {
  return specifier.startsWith('./') ? runtimeModule(specifier.slice(2)) : require(specifier);
}

// Node's module system, for loading the handler: import() works only in code Node loaded.
const handlerModules = { require, import: (url) => import(url) };

// Names where the function's layers are (/opt in the sandbox).
const LAYERS_ROOT_VARIABLE = 'FUNCD_LAYERS_ROOT';

// The files main() loads, in a runtime template before it forks: each forked runtime
// starts with them compiled. Those used only by some functions (streaming, ES modules,
// errors) are loaded when first used, from `sandboxDir`, where a forked runtime finds them.
function loadRuntime(sandboxDir) {
  runtimeDir.shown = sandboxDir;
  for (const file of STARTUP_FILES) runtimeModule(file);
  runtimeModule('module_paths.js');
}

// Once forked into a sandbox: the rest is read where the sandbox has it.
function enterSandbox() {
  runtimeDir.read = runtimeDir.shown;
}

const STARTUP_FILES = [
  'runtime_api_client.js', 'runtime.js', 'handler_loader.js', 'console_log.js', 'awslambda_global.js',
];

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
  new Runtime(client, logError, env).start(async () => {
    try {
      return await loadHandler(taskRoot, env._HANDLER || '', handlerModules);
    } finally {
      setHeapFlagsAgain();
    }
  });
}

if (require.main === module) main();
else module.exports = { loadRuntime, enterSandbox, main, runtimeModule };
