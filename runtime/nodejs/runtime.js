'use strict';
// The invoke loop: runs the handler for each event and answers it the way Lambda's Node
// runtime does.
//
// A buffered handler's answer is
//   - what its promise settles to, posted at once;
//   - what it passes to callback(err, result): an error at once; a result at once when
//     context.callbackWaitsForEmptyEventLoop is false, otherwise once the event loop is
//     empty, i.e. once everything the invocation started (timers, sockets, ...) is done;
//   - what it passes to context.succeed/fail/done, at once;
//   - when the event loop empties before any of these: null for a handler that is not an
//     async function, Runtime.NodeJsExit for one that is (its promise can never settle).
// The first of these wins. "The event loop is empty" is Node's 'beforeExit' event: the
// runtime's own connection does not keep the loop alive while the handler runs (see
// api_connection.js), so the event comes exactly when the handler's work is done.
//
// An exception nothing caught or a promise rejection nothing handled fails the
// invocation in progress, and the process then exits (129 and 128, as Lambda's runtime)
// so funcd replaces the worker; during init it is reported as the init error.
const { setRequestId } = require('./console_log.js');
const { invokeContext } = require('./invoke_context.js');
const { streamingOf } = require('./awslambda_global.js');
const { fatal } = require('./runtime_log.js');

// Only needed once something has failed: a cold start that fails nothing never loads them.
function errors() {
  return require('./runtime_errors.js');
}

const EXIT_UNCAUGHT_EXCEPTION = 129;
const EXIT_UNHANDLED_REJECTION = 128;

class Runtime {
  // `logError(label, error)` writes an error to the function's log.
  constructor(client, logError, env) {
    this.client = client;
    this.logError = logError;
    this.env = env;
    this.initializing = true;
    this.exiting = false;
    // What happens when the event loop empties, for the invocation in progress.
    this.onEmptyLoop = null;
    // How an uncaught error ends the invocation in progress while it has no answer yet.
    this.failInvocation = null;
    process.on('beforeExit', () => this.emptyLoop());
    process.on('uncaughtException', (error) => this.uncaught('Uncaught Exception', error, EXIT_UNCAUGHT_EXCEPTION));
    process.on('unhandledRejection', (reason, promise) =>
      this.uncaught('Unhandled Promise Rejection', new (errors().UnhandledPromiseRejection)(reason, promise), EXIT_UNHANDLED_REJECTION),
    );
  }

  // Loads the handler with `load()` (which may take its time: an ES module's top-level
  // await), then serves events for good.
  async start(load) {
    let handler;
    let shape;
    try {
      handler = await load();
      shape = streamingOf(handler);
    } catch (error) {
      this.logError('Uncaught Exception', error);
      return this.initFailed(error, EXIT_UNCAUGHT_EXCEPTION);
    }
    if (this.exiting) return;
    shape.isAsync = isAsyncFunction(handler);
    this.initializing = false;
    let event = await this.client.next();
    for (;;) {
      event = shape.streaming ? await this.invokeStreaming(handler, shape, event) : await this.invokeBuffered(handler, shape, event);
    }
  }

  async initFailed(error, exitCode) {
    this.exiting = true;
    const document = errors().errorDocument(error);
    await this.client.post('/init/error', Buffer.from(JSON.stringify(document)), document.errorType);
    process.exit(exitCode);
  }

  // Runs one buffered invocation; answers it and returns the next event.
  async invokeBuffered(handler, shape, response) {
    const path = `/invocation/${this.begin(response)}`;
    const answer = await new Promise((resolve) => {
      const settle = this.settler(resolve);
      const fail = (error) => {
        if (settle.done) return;
        this.logError('Invoke Error', error);
        settle({ error });
      };
      let waitForEmptyLoop = true;
      let called = false;
      // The first call wins; a call after the invocation was answered some other way (a
      // callback kept and called during a later invocation) must not touch that one.
      const once = (fn) => (...args) => {
        if (called || settle.done) return;
        called = true;
        fn(...args);
      };
      const callback = once((error, result) => {
        this.onEmptyLoop = null;
        if (error !== undefined && error !== null) return fail(error);
        if (!waitForEmptyLoop) return settle({ result });
        this.onEmptyLoop = () => settle({ result });
      });
      const done = once((error, result) => {
        this.onEmptyLoop = null;
        if (error !== undefined && error !== null) fail(error);
        else settle({ result });
      });
      const base = {
        get callbackWaitsForEmptyEventLoop() {
          return waitForEmptyLoop;
        },
        set callbackWaitsForEmptyEventLoop(value) {
          waitForEmptyLoop = value;
        },
        succeed: (result) => done(null, result),
        fail: (error) => done(error === undefined || error === null ? 'handled' : error, null),
        done,
      };
      this.onEmptyLoop = shape.isAsync ? () => fail(new (errors().NodeJsExit)()) : () => settle({ result: null });

      let event;
      try {
        event = parseEvent(response.body);
      } catch (error) {
        return fail(error);
      }
      try {
        const result = handler(event, invokeContext(response.headers, this.env, base), callback);
        if (isPromise(result)) result.then(base.succeed, base.fail);
      } catch (error) {
        callback(error);
      }
    });

    let body;
    let errorType;
    let outcome = '/response';
    if ('result' in answer) {
      try {
        body = resultBody(answer.result);
      } catch {
        answer.error = new (errors().JSONStringifyError)();
        this.logError('Invoke Error', answer.error);
      }
    }
    if ('error' in answer) {
      const document = errors().errorDocument(answer.error);
      body = Buffer.from(JSON.stringify(document));
      errorType = document.errorType;
      outcome = '/error';
    }
    if (answer.exitCode !== undefined) {
      await this.client.post(path + outcome, body, errorType);
      process.exit(answer.exitCode);
    }
    return this.client.answerAndNext(path + outcome, body, errorType);
  }

  // Runs one invocation of a streaming handler: (event, responseStream, context), async. Its
  // answer is complete once its promise has settled and the stream has ended.
  async invokeStreaming(handler, shape, response) {
    const path = `/invocation/${this.begin(response)}`;
    const post = this.client.streamedPost(path + '/response');
    const { ResponseStream } = require('./response_stream.js');
    const stream = new ResponseStream(post, shape.highWaterMark);
    let waitForEmptyLoop = true;
    const answer = await new Promise((resolve) => {
      const settle = this.settler(resolve);
      const fail = (error) => {
        if (settle.done) return;
        this.logError('Invoke Error', error);
        settle({ error });
      };
      let returned = false;
      let finished = false;
      stream.on('finish', () => {
        finished = true;
        if (returned) settle({});
      });
      stream.on('error', fail);
      stream.on('close', () => {
        if (!finished) fail(new (errors().InvalidStreamingOperation)('Response stream was destroyed before it ended.'));
      });
      this.onEmptyLoop = () => fail(returned ? 'Response stream is not finished.' : new (errors().NodeJsExit)());
      const base = {
        get callbackWaitsForEmptyEventLoop() {
          return waitForEmptyLoop;
        },
        set callbackWaitsForEmptyEventLoop(value) {
          waitForEmptyLoop = value;
        },
      };

      let event;
      try {
        event = parseEvent(response.body);
      } catch (error) {
        return fail(error);
      }
      try {
        const result = handler(event, stream, invokeContext(response.headers, this.env, base));
        if (!isPromise(result)) return fail('Streaming does not support non-async handlers.');
        result.then((value) => {
          if (value !== undefined) console.warn('Streaming handlers ignore return values.');
          returned = true;
          if (finished) settle({});
        }, fail);
      } catch (error) {
        fail(error);
      }
    });

    if (!('error' in answer)) {
      if (!waitForEmptyLoop) return post.finishAndNext(null);
      // The response is complete now; only the next event waits for the event loop.
      await post.finish(null);
      await new Promise((resolve) => (this.onEmptyLoop = resolve));
      return this.client.next();
    }
    // Whatever the handler writes from now on goes nowhere.
    stream.destroy();
    const document = errors().errorDocument(answer.error);
    if (!post.started) {
      // Nothing was sent: an ordinary error answer.
      const body = Buffer.from(JSON.stringify(document));
      if (answer.exitCode === undefined) return this.client.answerAndNext(path + '/error', body, document.errorType);
      await this.client.post(path + '/error', body, document.errorType);
    } else if (answer.exitCode === undefined) {
      return post.finishAndNext(document);
    } else {
      await post.finish(document);
    }
    process.exit(answer.exitCode);
  }

  // Starts an invocation: its request id for the log lines, its trace id for the SDKs.
  begin(response) {
    const requestId = response.headers['lambda-runtime-aws-request-id'];
    if (!requestId) fatal('invocation/next answered without Lambda-Runtime-Aws-Request-Id');
    setRequestId(requestId);
    const traceId = response.headers['lambda-runtime-trace-id'];
    // A trace id left over from the previous invocation would mislabel this one.
    if (traceId) this.env._X_AMZN_TRACE_ID = traceId;
    else delete this.env._X_AMZN_TRACE_ID;
    return requestId;
  }

  // The function that gives the invocation in progress its one answer; an uncaught error
  // can give it one too, while it has none.
  settler(resolve) {
    const settle = (answer) => {
      if (settle.done) return;
      settle.done = true;
      this.onEmptyLoop = null;
      this.failInvocation = null;
      resolve(answer);
    };
    settle.done = false;
    this.failInvocation = (error, exitCode) => settle({ error, exitCode });
    return settle;
  }

  emptyLoop() {
    const action = this.onEmptyLoop;
    this.onEmptyLoop = null;
    if (action) return action();
    if (this.exiting) return;
    if (this.initializing) {
      // The handler module's top-level await waits for something that will never come.
      const error = new (errors().NodeJsExit)();
      this.logError('Uncaught Exception', error);
      return this.initFailed(error, EXIT_UNCAUGHT_EXCEPTION);
    }
    // Never reached: a request to the Runtime API is always under way between invocations.
    fatal('the event loop emptied outside an invocation');
  }

  uncaught(label, error, exitCode) {
    if (this.exiting) return;
    this.exiting = true;
    this.logError(label, error);
    if (this.initializing) return this.initFailed(error, exitCode);
    if (this.failInvocation) return this.failInvocation(error, exitCode);
    // Between invocations: nothing to report it against.
    this.client.flushed(() => process.exit(exitCode));
  }
}

// Lambda hands an empty invoke payload to handlers as an empty object.
function parseEvent(body) {
  if (body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new (errors().UnmarshalError)(`Unable to parse input as json: ${error.message}`);
  }
}

function resultBody(result) {
  const text = JSON.stringify(result === undefined ? null : result);
  // A function or a symbol has no JSON at all.
  return Buffer.from(text === undefined ? 'null' : text);
}

function isPromise(value) {
  return Boolean(value) && typeof value.then === 'function';
}

function isAsyncFunction(handler) {
  try {
    return handler.constructor?.name === 'AsyncFunction';
  } catch {
    return false;
  }
}

module.exports = { Runtime };
