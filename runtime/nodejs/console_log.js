'use strict';
// console.* as Lambda's Node runtime has it: every call is one log record on stdout,
//   text (AWS_LAMBDA_LOG_FORMAT unset or TEXT): <ISO time>\t<request id>\t<LEVEL>\t<util.format of the arguments>
//   JSON (AWS_LAMBDA_LOG_FORMAT=JSON):         {"timestamp","level","requestId","message"[,"errorType","errorMessage","stackTrace"]}
// with the line breaks inside a record turned into carriage returns, so that a stack trace
// stays one line of the function's log. console.log is INFO, console.trace TRACE (and
// prints no stack), console.fatal is added. AWS_LAMBDA_LOG_LEVEL (TRACE, DEBUG, INFO, WARN,
// ERROR, FATAL; default TRACE) drops the levels below it; FATAL is always written.
//
// Given a telemetry descriptor (_LAMBDA_TELEMETRY_LOG_FD, taken out of the environment so
// the handler's children do not write to it), each record is written there instead, framed
// as Lambda's runtimes frame it, with its line breaks kept: the daemon reads one record
// whatever it holds. A frame is a 16-byte big-endian header, then the record in UTF-8:
//   type   0xA55A0003 (text) or 0xA55A0002 (JSON), OR the level << 2 (TRACE 1 ... FATAL 6)
//   length of the record in bytes
//   time   microseconds since the epoch (64 bits)
const fs = require('node:fs');
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

const FRAME_TEXT = 0xa55a0003;
const FRAME_JSON = 0xa55a0002;
const FRAME_HEADER_BYTES = 16;

// The descriptor named by _LAMBDA_TELEMETRY_LOG_FD, removed from `env`; undefined if none.
function takeTelemetryFd(env) {
  const text = env._LAMBDA_TELEMETRY_LOG_FD;
  delete env._LAMBDA_TELEMETRY_LOG_FD;
  if (text === undefined || !/^[0-9]+$/.test(text)) return undefined;
  return Number(text);
}

// Writes one framed record: header and record in one write, all of it.
function writeFrame(fd, json, level, record, now) {
  const body = Buffer.from(record, 'utf8');
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(((json ? FRAME_JSON : FRAME_TEXT) | ((LEVELS.indexOf(level) + 1) << 2)) >>> 0, 0);
  frame.writeUInt32BE(body.length, 4);
  frame.writeBigInt64BE(BigInt(now) * 1000n, 8);
  body.copy(frame, FRAME_HEADER_BYTES);
  for (let done = 0; done < frame.length; ) done += fs.writeSync(fd, frame, done, frame.length - done);
}

// Replaces the console methods; returns how the runtime logs an error under a label
// ("Invoke Error", "Uncaught Exception"), in the same format.
function patchConsole(env) {
  const json = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const format = json ? jsonRecord : textRecord;
  const minimum = Math.max(0, LEVELS.indexOf((env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()));
  const telemetryFd = takeTelemetryFd(env);
  let framed = telemetryFd !== undefined;
  const writer = (level) => (...args) => {
    // Called with nothing, Lambda's runtime logs its first argument anyway: "undefined".
    if (!args.length) args = [undefined];
    const record = format(level, args);
    if (framed) {
      try {
        // The text form ends with a line break, as Lambda's does; the daemon drops it.
        writeFrame(telemetryFd, json, level, json ? record : record + '\n', Date.now());
        return;
      } catch (error) {
        // The descriptor is not what it should be (closed by the handler, say): stdout
        // from here on, and said once there.
        framed = false;
        process.stderr.write(`funcd runtime: the telemetry descriptor failed (${error.code || error}); logging to stdout\n`);
      }
    }
    process.stdout.write(record.replace(/\n/g, '\r') + '\n');
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
