'use strict';
// Client of funcd's Runtime API (Lambda's 2018-06-01 Runtime API).
//
// It talks over the connection funcd starts the runtime with (an inherited AF_UNIX socket
// whose descriptor number is in FUNCD_RUNTIME_API_FD), cheaper than TCP, and over TCP to
// AWS_LAMBDA_RUNTIME_API once that connection is gone. It pipelines: an invocation's answer
// and the next `GET .../invocation/next` go out in one write, and funcd answers both
// together, one round trip per invocation instead of two.
const net = require('node:net');
const { ApiConnection } = require('./api_connection.js');
const { log, fatal } = require('./runtime_log.js');

const API_PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY_TRAILER = 'Lambda-Runtime-Function-Error-Body';
const JSON_CONTENT_TYPE = 'application/json';
// Names the descriptor of the runtime's own connection to funcd's Runtime API.
const API_FD_VARIABLE = 'FUNCD_RUNTIME_API_FD';

class RuntimeApiClient {
  // `address`: host:port of the Runtime API; `fdText`: FUNCD_RUNTIME_API_FD, if set.
  constructor(address, fdText) {
    const colon = address.lastIndexOf(':');
    const port = address.slice(colon + 1);
    if (colon < 0 || !/^\d+$/.test(port)) fatal(`bad AWS_LAMBDA_RUNTIME_API ${JSON.stringify(address)}`);
    this.host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    this.port = Number(port);
    this.authority = address;
    this.nextMessage = this.message('GET', '/invocation/next');
    this.conn = inheritedConnection(fdText);
  }

  // Waits for the next event: { status, headers, body }.
  async next() {
    let response;
    try {
      response = await this.request(this.nextMessage);
    } catch (err) {
      fatal(`cannot reach the Runtime API: ${err}`);
    }
    return checkEvent(response);
  }

  // Posts one request (an init error, the last error before exiting) and waits for its answer.
  async post(path, body, errorType) {
    let response;
    try {
      response = await this.request(this.message('POST', path, body, postHeaders(errorType)));
    } catch (err) {
      fatal(`cannot reach the Runtime API: ${err}`);
    }
    checkPost(path, response);
  }

  // Posts an invocation's answer and asks for the next event in the same write (HTTP
  // pipelining): funcd then sends its acknowledgement together with the next event.
  async answerAndNext(path, body, errorType) {
    const message = Buffer.concat([this.message('POST', path, body, postHeaders(errorType)), this.nextMessage]);
    let conn;
    let ack;
    for (let attempt = 0; ; attempt++) {
      try {
        conn = this.connection();
        conn.write(message);
        ack = await conn.read();
        break;
      } catch (err) {
        this.drop();
        // A keep-alive connection the server closed while we were idle shows up only when
        // it is next used, so one fresh connection is tried before giving up.
        if (attempt) fatal(`cannot reach the Runtime API: ${err}`);
      }
    }
    checkPost(path, ack);
    return this.pipelinedEvent(conn, ack);
  }

  // A response whose body is written as the handler produces it; see StreamedPost.
  streamedPost(path) {
    return new StreamedPost(this, path);
  }

  // Calls `then` once everything written has left the process, so exiting loses nothing.
  flushed(then) {
    if (!this.conn) return then();
    this.conn.flushed(then);
  }

  // The event that answers a `next` sent behind a request whose acknowledgement was `ack`.
  async pipelinedEvent(conn, ack) {
    if (!ack.willClose) {
      try {
        const event = await conn.read();
        if (event.willClose) this.drop();
        return checkEvent(event);
      } catch {
        // asked again below, on a fresh connection
      }
    }
    // The connection ended after the answer, so the pipelined `next` went unanswered.
    this.drop();
    return this.next();
  }

  async request(message) {
    for (let attempt = 0; ; attempt++) {
      try {
        const conn = this.connection();
        conn.write(message);
        const response = await conn.read();
        if (response.willClose) this.drop();
        return response;
      } catch (err) {
        this.drop();
        if (attempt) throw err;
      }
    }
  }

  connection() {
    if (this.conn && !this.conn.broken) return this.conn;
    // No timeout: `next` is held open for as long as there is no work.
    this.conn = new ApiConnection(net.connect({ host: this.host, port: this.port, noDelay: true }));
    return this.conn;
  }

  drop() {
    if (this.conn) this.conn.destroy();
    this.conn = null;
  }

  // One request, head and body in one buffer, so that it leaves in as few packets as it can.
  message(method, path, body, headers) {
    const target = API_PREFIX + path;
    // A request id with a space or control character in it would forge the request line.
    if (!/^[\x21-\x7e]+$/.test(target)) fatal(`refusing to send ${JSON.stringify(target)}`);
    let head = `${method} ${target} HTTP/1.1\r\nHost: ${this.authority}\r\n`;
    if (body !== undefined) head += `Content-Length: ${body.length}\r\n`;
    for (const name in headers) head += `${name}: ${headerValue(headers[name])}\r\n`;
    head += '\r\n';
    const headBytes = Buffer.from(head, 'latin1');
    return body && body.length ? Buffer.concat([headBytes, body]) : headBytes;
  }
}

// An invocation's response streamed to the Runtime API as Lambda's streaming runtimes do:
// `Lambda-Runtime-Function-Response-Mode: streaming`, a chunked body written as the handler
// writes, and an error after the body has begun reported in trailers. The head goes out
// with the first bytes, so the content type can be set until then.
class StreamedPost {
  constructor(client, path) {
    this.client = client;
    this.path = path;
    this.contentType = 'application/octet-stream';
    this.conn = null;  // set once the head is written
    this.ended = false;  // the last chunk is written: nothing more may follow on the connection
  }

  get started() {
    return this.conn !== null;
  }

  // Writes `pieces` (Buffers) as one chunk, after the head the first time; `done(err)` once
  // they have left the process, which is the handler's backpressure. Returns false when
  // the socket is full.
  write(pieces, done) {
    if (this.ended) {
      process.nextTick(done, new Error('the response has already been sent'));
      return false;
    }
    const out = [];
    if (!this.conn) {
      this.conn = this.client.connection();
      out.push(this.head());
    }
    const size = pieces.reduce((n, piece) => n + piece.length, 0);
    // A zero-length chunk would end the body.
    if (size) out.push(Buffer.from(`${size.toString(16)}\r\n`, 'latin1'), ...pieces, CRLF);
    if (!out.length) {
      process.nextTick(done);
      return true;
    }
    const socket = this.conn.socket;
    socket.cork();
    let ok = true;
    for (let i = 0; i < out.length; i++) ok = this.conn.write(out[i], i === out.length - 1 ? done : undefined);
    socket.uncork();
    return ok;
  }

  // Ends the body (with `error` in trailers, when given) and asks for the next event in the
  // same write. A stream cannot be sent again, so a broken connection is the end.
  async finishAndNext(error) {
    const conn = this.finishWith(error, this.client.nextMessage);
    const ack = await this.acknowledgement(conn);
    return this.client.pipelinedEvent(conn, ack);
  }

  // Ends the body without asking for the next event.
  async finish(error) {
    const conn = this.finishWith(error, null);
    const ack = await this.acknowledgement(conn);
    if (ack.willClose) this.client.drop();
  }

  finishWith(error, after) {
    if (!this.conn) this.write([], () => {});
    this.ended = true;
    let tail = '0\r\n';
    if (error) {
      tail += `${ERROR_TYPE_HEADER}: ${headerValue(error.errorType)}\r\n`;
      tail += `${ERROR_BODY_TRAILER}: ${Buffer.from(JSON.stringify(error)).toString('base64')}\r\n`;
    }
    tail += '\r\n';
    const bytes = Buffer.from(tail, 'latin1');
    this.conn.write(after ? Buffer.concat([bytes, after]) : bytes);
    return this.conn;
  }

  async acknowledgement(conn) {
    let ack;
    try {
      ack = await conn.read();
    } catch (err) {
      fatal(`the Runtime API connection broke while streaming a response: ${err}`);
    }
    checkPost(this.path, ack);
    return ack;
  }

  head() {
    const headers = {
      'Lambda-Runtime-Function-Response-Mode': 'streaming',
      'Transfer-Encoding': 'chunked',
      Trailer: `${ERROR_TYPE_HEADER}, ${ERROR_BODY_TRAILER}`,
      'Content-Type': this.contentType,
    };
    return this.client.message('POST', this.path, undefined, headers);
  }
}

const CRLF = Buffer.from('\r\n');

function inheritedConnection(text) {
  if (text === undefined) return null;
  if (!/^\d+$/.test(text) || Number(text) < 3) {
    log(`ignoring ${API_FD_VARIABLE}=${JSON.stringify(text.slice(0, 20))}`);
    return null;
  }
  try {
    // Node marks the descriptors it inherits close-on-exec when it starts, so nothing the
    // handler starts gets this one.
    return new ApiConnection(new net.Socket({ fd: Number(text), readable: true, writable: true }));
  } catch (err) {
    log(`cannot use ${API_FD_VARIABLE}=${text}: ${err}`);
    return null;
  }
}

function postHeaders(errorType) {
  const headers = { 'Content-Type': JSON_CONTENT_TYPE };
  if (errorType !== undefined) headers[ERROR_TYPE_HEADER] = errorType;
  return headers;
}

// Header values come from user code (an error's name); a line break in one would end the
// head early, so anything but printable ASCII is replaced.
function headerValue(value) {
  return String(value).replace(/[^\x20-\x7e]/g, '?');
}

function checkEvent(response) {
  if (response.status !== 200)
    fatal(`invocation/next answered ${response.status}: ${JSON.stringify(response.body.toString('latin1', 0, 200))}`);
  return response;
}

function checkPost(path, response) {
  const text = () => JSON.stringify(response.body.toString('latin1', 0, 200));
  if (response.status >= 500) fatal(`POST ${path} answered ${response.status}: ${text()}`);
  if (response.status >= 400) log(`POST ${path} answered ${response.status}: ${text()}`);
}

module.exports = { RuntimeApiClient, API_FD_VARIABLE };
