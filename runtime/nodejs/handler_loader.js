'use strict';
// Finds the handler a `_HANDLER` string names, the way Lambda's Node runtime does.
//
// `dir/sub/module.a.b`: the module `module` in `dir/sub/` under the task root, and in it the
// export `a`, then its property `b`. The module is, in this order:
//   1. the file `module` itself, without extension (or a directory of that name), required;
//   2. `module.js`, required, unless the nearest package.json above it says "type": "module";
//   3. `module.js` imported as an ES module when it does; then `module.mjs`, imported; then
//      `module.cjs`, required;
//   4. whatever require.resolve() finds for `module` from the task root and from `dir/sub/`:
//      node_modules directories above them, then NODE_PATH.
// ES modules are loaded with import(), so their top-level await runs to completion before
// the first event.
//
// `modules` is Node's module system as the entry point sees it: { require, import(url) }.
// It is passed in because the runtime's own files are not loaded by require() (see
// bootstrap.js), and import() and require.resolve() need a module Node loaded.
const fs = require('node:fs');
const path = require('node:path');

// Only needed when loading fails.
function errors() {
  return require('./runtime_errors.js');
}

async function loadHandler(taskRoot, handlerString, modules) {
  if (handlerString.includes('..')) {
    throw new (errors().MalformedHandlerName)(
      `'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const slash = handlerString.lastIndexOf('/');
  const moduleRoot = handlerString.slice(0, slash + 1);
  const moduleAndPath = handlerString.slice(slash + 1);
  const dot = moduleAndPath.indexOf('.');
  // An empty module name would name the directory itself, which is no handler module.
  if (dot <= 0) throw new (errors().MalformedHandlerName)('Bad handler');
  const moduleName = moduleAndPath.slice(0, dot);
  const exportPath = moduleAndPath.slice(dot + 1);

  const userModule = await loadModule(modules, taskRoot, moduleRoot, moduleName);
  const handler = exportPath.split('.').reduce((value, key) => value && value[key], userModule);
  if (!handler) throw new (errors().HandlerNotFound)(`${handlerString} is undefined or not exported`);
  if (typeof handler !== 'function') throw new (errors().HandlerNotFound)(`${handlerString} is not a function`);
  return handler;
}

async function loadModule(modules, taskRoot, moduleRoot, moduleName) {
  const { require } = modules;
  const importFile = (file) => modules.import(require('node:url').pathToFileURL(file).href);
  try {
    const file = path.resolve(taskRoot, moduleRoot, moduleName);
    if (fs.existsSync(file)) return require(file);
    const typeModule = fs.existsSync(file + '.js') && packageTypeIsModule(path.dirname(file));
    if (!typeModule && fs.existsSync(file + '.js')) return require(file + '.js');
    if (typeModule) return await importFile(file + '.js');
    if (fs.existsSync(file + '.mjs')) return await importFile(file + '.mjs');
    if (fs.existsSync(file + '.cjs')) return require(file + '.cjs');
    return require(require.resolve(moduleName, { paths: [taskRoot, path.resolve(taskRoot, moduleRoot)] }));
  } catch (err) {
    if (err instanceof SyntaxError) throw new (errors().UserCodeSyntaxError)(err);
    if (err && err.code === 'MODULE_NOT_FOUND') throw new (errors().ImportModuleError)(err);
    throw err;
  }
}

// Whether `.js` files in `dir` are ES modules: the nearest package.json at or above it says
// "type": "module". The search stops at a node_modules directory and at the root.
function packageTypeIsModule(dir) {
  for (;;) {
    if (dir.endsWith('/node_modules')) return false;
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        const parsed = JSON.parse(fs.readFileSync(manifest, 'utf8'));
        if (parsed) return parsed.type === 'module';
      } catch (err) {
        console.warn(`${manifest} cannot be read, it will be ignored for ES module detection purposes.`, err);
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

module.exports = { loadHandler };
