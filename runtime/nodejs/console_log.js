'use strict';
// console.* as Lambda's Node runtime has it: every call is one log record on stdout,
//   text (AWS_LAMBDA_LOG_FORMAT unset or TEXT): <ISO time>\t<request id>\t<LEVEL>\t<util.format of the arguments>
//   JSON (AWS_LAMBDA_LOG_FORMAT=JSON):         {"timestamp","level","requestId","message"[,"errorType","errorMessage","stackTrace"]}
// with the line breaks inside a record turned into carriage returns, so that a stack trace
// stays one line of the function's log. console.log is INFO, console.trace TRACE (and
// prints no stack), console.fatal is added. AWS_LAMBDA_LOG_LEVEL (TRACE, DEBUG, INFO, WARN,
// ERROR, FATAL; default TRACE) drops the levels below it; FATAL is always written.
const util = require('node:util');

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];

// The request the records belong to; "undefined" before the first, as on Lambda.
let requestId;

function setRequestId(id) {
  requestId = id;
}

function textRecord(level, args) {
  return `${new Date().toISOString()}\t${requestId}\t${level}\t${util.format(...args)}`;
}

function jsonRecord(level, args) {
  const record = { timestamp: new Date().toISOString(), level, requestId };
  if (args.length === 1) {
    record.message = args[0];
    try {
      return JSON.stringify(record, jsonErrorReplacer);
    } catch {
      record.message = util.format(args[0]);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...args);
  const error = args.find((arg) => arg instanceof Error);
  if (error) {
    record.errorType = error.constructor?.name ?? 'UnknownError';
    record.errorMessage = error.message;
    record.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
  }
  return JSON.stringify(record);
}

function jsonErrorReplacer(_key, value) {
  if (!(value instanceof Error)) return value;
  return Object.assign(
    {
      errorType: value.constructor?.name ?? 'UnknownError',
      errorMessage: value.message,
      stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
    },
    value,
  );
}

// Replaces the console methods; returns how the runtime logs an error under a label
// ("Invoke Error", "Uncaught Exception"), in the same format.
function patchConsole(env) {
  const json = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const format = json ? jsonRecord : textRecord;
  const minimum = Math.max(0, LEVELS.indexOf((env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()));
  const writer = (level) => (...args) => {
    // Called with nothing, Lambda's runtime logs its first argument anyway: "undefined".
    if (!args.length) args = [undefined];
    process.stdout.write(format(level, args).replace(/\n/g, '\r') + '\n');
  };
  const drop = () => {};
  const at = (level) => (LEVELS.indexOf(level) >= minimum || level === 'FATAL' ? writer(level) : drop);
  console.trace = at('TRACE');
  console.debug = at('DEBUG');
  console.info = at('INFO');
  console.log = console.info;
  console.warn = at('WARN');
  console.error = at('ERROR');
  console.fatal = at('FATAL');
  return (label, error) => {
    const { errorForLog, intoError } = require('./runtime_errors.js');  // only needed once something failed
    if (json) console.error(intoError(error));
    else console.error(label, errorForLog(intoError(error)));
  };
}

module.exports = { patchConsole, setRequestId };
