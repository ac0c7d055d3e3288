'use strict';
// The errors the runtime itself reports, under Lambda's `Runtime.*` types, and the two ways
// any error is written down: the document posted to the Runtime API and the log line.
const { types } = require('node:util');

function runtimeError(name, construct) {
  const cls = class extends Error {
    constructor(...args) {
      super(construct ? construct(...args) : args[0]);
    }
  };
  // Set on the prototype before any instance exists, so the stack's first line names it.
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}

const MalformedHandlerName = runtimeError('MalformedHandlerName');
const HandlerNotFound = runtimeError('HandlerNotFound');
// Wraps what require() or import() threw; the message is that error as a string.
const ImportModuleError = runtimeError('ImportModuleError', String);
const UserCodeSyntaxError = class extends runtimeError('UserCodeSyntaxError', String) {
  constructor(original) {
    super(original);
    // The original stack is the one that names the file and line at fault.
    if (typeof original.stack === 'string') this.stack = original.stack;
  }
};
const MalformedStreamingHandler = runtimeError('MalformedStreamingHandler');
const InvalidStreamingOperation = runtimeError('InvalidStreamingOperation');
const UnmarshalError = runtimeError('UnmarshalError');
const JSONStringifyError = runtimeError('JSONStringifyError', () => 'Unable to stringify response body');
// The event loop emptied while an async handler's promise was still pending.
const NodeJsExit = runtimeError(
  'NodeJsExit',
  () =>
    'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a ' +
    'Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
);
const UnhandledPromiseRejection = class extends runtimeError('UnhandledPromiseRejection', safeString) {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
};

for (const [cls, name] of [
  [UserCodeSyntaxError, 'UserCodeSyntaxError'],
  [UnhandledPromiseRejection, 'UnhandledPromiseRejection'],
]) {
  Object.defineProperty(cls, 'name', { value: name });
}

function safeString(value) {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function isErrorLike(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string' &&
    value.name !== '' &&
    value.message !== '' &&
    value.stack !== ''
  );
}

// The body of an error posted to the Runtime API, as Lambda's Node runtime writes it:
// the error's name and message and its stack as lines, or for a thrown value that is not
// an error, its type and its string form.
function errorDocument(error) {
  try {
    if (types.isNativeError(error) || isErrorLike(error)) {
      return { errorType: error.name, errorMessage: error.message, trace: error.stack.split('\n') };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

// An error as the JSON the log line carries after its label ("Invoke Error", "Uncaught
// Exception"), with the error's own enumerable properties and its stack as lines.
function errorForLog(error) {
  try {
    return '\t' + JSON.stringify(error, (_key, value) => withEnumerableProperties(value));
  } catch {
    return '\t' + JSON.stringify(errorDocument(error));
  }
}

function withEnumerableProperties(value) {
  if (!(value instanceof Error)) return value;
  const out = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
  if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
  return out;
}

function intoError(value) {
  return value instanceof Error ? value : new Error(value);
}

module.exports = {
  MalformedHandlerName,
  HandlerNotFound,
  ImportModuleError,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  UnmarshalError,
  JSONStringifyError,
  NodeJsExit,
  UnhandledPromiseRejection,
  errorDocument,
  errorForLog,
  intoError,
};
