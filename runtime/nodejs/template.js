'use strict';
// A runtime template: funcd's Node.js runtime, loaded once and forked into sandboxes.
//
// Started by the daemon as
//   node <a worker's heap flags> --single-threaded template.js <native module> <control fd> <runtime dir>
// with the same node and heap flags as a worker (--single-threaded: V8 gives no work to
// other threads, which a fork of this one does not have). It loads the runtime's files,
// compiled under the names a sandbox sees them by (<runtime dir>, LAMBDA_RUNTIME_DIR),
// warms the runtime's client up, then hands the control socket to the native half
// (funcd-template.so), which serves the daemon's fork requests and returns only in a forked
// runtime: inside its own sandbox, as the worker's user, with its own event loop and the
// environment the daemon sent it. This process never holds a function's code, environment
// or secrets; what it loads here is shared, copy-on-write, by every runtime forked from it.
const net = require('node:net');
const path = require('node:path');
const v8 = require('node:v8');
const Module = require('node:module');

const [nativeModule, controlFd, runtimeDir] = process.argv.slice(2);
const native = { exports: {} };
process.dlopen(native, nativeModule);
// Compiled whole here, once: V8 compiles a function's body when it first runs, which in
// every forked runtime would be again (about 1 ms of a cold start, Node 20).
v8.setFlagsFromString('--no-lazy');
const bootstrap = require('./bootstrap.js');
bootstrap.loadRuntime(path.join(runtimeDir, 'nodejs'));
v8.setFlagsFromString('--lazy');
// Assigning TZ through process.env makes V8 and ICU look at the time zone again (about
// 1 ms): only when the worker's differs from this one's.
const templateTz = process.env.TZ;

// What funcd answers a first `GET /invocation/next` with, as far as the client reads it.
const WARM_EVENT = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n' +
  'Lambda-Runtime-Aws-Request-Id: warm-up\r\nLambda-Runtime-Deadline-Ms: 0\r\nContent-Length: 2\r\n\r\n{}');

// One exchange of the runtime's own client with a peer here, over a socketpair: a socket
// made from an inherited descriptor, a request written, a response read. The code it runs
// is then compiled and its inline caches warm in every forked runtime, which would
// otherwise pay for that before its first event (about 2 ms, Node 20). Nothing of it is
// left: both sockets are closed before the template serves.
async function warmUp() {
  const { RuntimeApiClient } = bootstrap.runtimeModule('runtime_api_client.js');
  const { a, b } = native.exports.pair();
  const peer = new net.Socket({ fd: b, readable: true, writable: true });
  peer.once('data', () => peer.write(WARM_EVENT));
  const client = new RuntimeApiClient('127.0.0.1:9001', String(a));
  await client.next();
  const closed = (socket) => new Promise((ok) => (socket.destroyed && socket.closed ? ok() : socket.once('close', ok)));
  const sockets = [client.conn.socket, peer];
  for (const socket of sockets) socket.destroy();
  await Promise.all(sockets.map(closed));
}

warmUp().then(() => {
  // Nothing may have used Math.random by now (it would have seeded the generator here).
  const forked = native.exports.serve(Number(controlFd));
  try {
    runForked(forked);
  } catch (err) {
    // Before the runtime could report it: said on stderr (the function's log), and the
    // worker ends as a runtime that failed to start.
    process.stderr.write(`funcd runtime: ${err && err.stack}\n`);
    native.exports.exit(1);
  }
}, (err) => {
  process.stderr.write(`funcd template: warming the runtime up failed: ${err && err.stack}\n`);
  process.exit(1);
});

// A runtime in its sandbox, the only thread of its process.
function runForked(forked) {
  // Node's own exit would join and drain its platform's threads, which only the template
  // has: process.exit ends this process at once, after the 'exit' event as always (stdout
  // and stderr are pipes, written synchronously).
  process.reallyExit = (code) => native.exports.exit(code | 0);
  // Math.random's generator is the template's, the same in every copy. It is seeded at its
  // first use, from --random-seed when that is set: set to a seed of this process's own, used
  // once, then to another for the contexts node:vm makes later (else they would draw on V8's
  // own generator, whose state every copy of the template has too).
  v8.setFlagsFromString(`--random-seed=${forked.seed}`);
  Math.random();
  v8.setFlagsFromString(`--random-seed=${native.exports.seed()}`);
  bootstrap.enterSandbox();
  // What Node reads as it starts, read again from the worker's environment: NODE_PATH (the
  // way Node applies it), and TZ. Variables Node reads only then keep a function on plain
  // starts (node_template_refusal in src/pool/node_launch.cpp).
  Module._initPaths();
  if (process.env.TZ !== templateTz) process.env.TZ = process.env.TZ;  // eslint-disable-line no-self-assign
  // What Node set once as it started: this process's ids, and its command line as a worker
  // started plainly has it.
  for (const id of ['pid', 'ppid'])
    Object.defineProperty(process, id, { value: forked[id], writable: false, enumerable: true, configurable: true });
  process.argv = [process.execPath, path.join(runtimeDir, 'nodejs', 'bootstrap.js')];
  process.execArgv = process.execArgv.filter((flag) => flag !== '--single-threaded');
  bootstrap.main();
}
