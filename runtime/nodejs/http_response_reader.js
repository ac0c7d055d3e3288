'use strict';
// Incremental reader of the HTTP/1.1 responses funcd's Runtime API sends back on one
// connection. node:http would do, but it is one more module stack on every cold start, and
// it cannot pipeline a POST and a GET in one write; the Runtime API only needs a small,
// well-behaved subset of HTTP/1.1, the same one funcd's Python runtime reads.
//
// Bytes are pushed in as they arrive; each complete response is handed to `onResponse`
// as { status, headers (lower-cased names), body (Buffer), willClose }.

// Response heads from the Runtime API are a few hundred bytes; anything near this is broken.
const MAX_HEAD_BYTES = 64 * 1024;
// Far above Lambda's 6 MB payload limit, low enough to refuse a corrupt length.
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const SWITCHING_PROTOCOLS = 101;
const EMPTY = Buffer.alloc(0);

class ProtocolError extends Error {}
ProtocolError.prototype.name = 'ProtocolError';

// What the reader waits for next.
const HEAD = 0;          // status line and headers
const BODY_LENGTH = 1;   // `remaining` more body bytes (Content-Length)
const CHUNK_SIZE = 2;    // a chunk-size line
const CHUNK_DATA = 3;    // `remaining` more bytes of the current chunk
const CHUNK_END = 4;     // the line break after a chunk
const TRAILERS = 5;      // trailer lines up to an empty one
const BODY_CLOSE = 6;    // everything until the server hangs up

class HttpResponseReader {
  constructor(onResponse) {
    this.onResponse = onResponse;
    this.rest = EMPTY;  // received, not yet consumed
    this.state = HEAD;
    this.headLines = [];
    this.headBytes = 0;
    this.remaining = 0;
    this.parts = [];
    this.bodyBytes = 0;
    this.response = null;
  }

  // Consumes `data`; throws ProtocolError on anything that is not the HTTP this reads.
  push(data) {
    this.rest = this.rest.length ? Buffer.concat([this.rest, data]) : data;
    while (this.rest.length && this.step()) { /* one piece at a time */ }
  }

  // The server hung up: ends a body framed by the connection itself. Throws when a
  // response was cut short.
  end() {
    if (this.state === BODY_CLOSE) return this.complete();
    if (this.state !== HEAD || this.headLines.length || this.rest.length)
      throw new ProtocolError('the Runtime API closed the connection mid-response');
  }

  // One piece of the stream; false when it needs more bytes.
  step() {
    switch (this.state) {
      case HEAD: {
        const line = this.line(MAX_HEAD_BYTES);
        if (line === null) return false;
        if (line.length) {
          this.headBytes += line.length;
          if (this.headBytes > MAX_HEAD_BYTES) throw new ProtocolError('response head too large');
          this.headLines.push(line);
          return true;
        }
        if (!this.headLines.length) return true;  // stray line break before a status line
        this.beginBody(this.parseHead());
        return true;
      }
      case BODY_LENGTH:
      case CHUNK_DATA: {
        const n = Math.min(this.remaining, this.rest.length);
        this.parts.push(this.rest.subarray(0, n));
        this.rest = this.rest.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) {
          if (this.state === BODY_LENGTH) this.complete();
          else this.state = CHUNK_END;
        }
        return true;
      }
      case CHUNK_SIZE: {
        const line = this.line(1024);
        if (line === null) return false;
        const text = line.split(';', 1)[0].trim();
        if (!/^[0-9a-fA-F]+$/.test(text)) throw new ProtocolError(`bad chunk size ${JSON.stringify(text.slice(0, 40))}`);
        const size = parseInt(text, 16);
        if (size === 0) {
          this.state = TRAILERS;
        } else {
          this.grow(size);
          this.remaining = size;
          this.state = CHUNK_DATA;
        }
        return true;
      }
      case CHUNK_END: {
        const line = this.line(2);
        if (line === null) return false;
        if (line.length) throw new ProtocolError('chunk not followed by a line break');
        this.state = CHUNK_SIZE;
        return true;
      }
      case TRAILERS: {
        const line = this.line(MAX_HEAD_BYTES);  // trailers, which nothing here needs
        if (line === null) return false;
        if (!line.length) this.complete();
        return true;
      }
      case BODY_CLOSE:
        this.grow(this.rest.length);
        this.parts.push(this.rest);
        this.rest = EMPTY;
        return true;
    }
    return false;
  }

  // The next line without its line break, or null while it has not arrived whole.
  line(limit) {
    const end = this.rest.indexOf(10);  // \n
    if (end < 0) {
      if (this.rest.length > limit) throw new ProtocolError('line too long in response');
      return null;
    }
    const stop = end > 0 && this.rest[end - 1] === 13 ? end - 1 : end;
    const text = this.rest.toString('latin1', 0, stop);
    this.rest = this.rest.subarray(end + 1);
    return text;
  }

  parseHead() {
    const [statusLine, ...fields] = this.headLines;
    this.headLines = [];
    this.headBytes = 0;
    const match = /^(HTTP\/\d\.\d) (\d{3})(?: |$)/.exec(statusLine);
    if (!match) throw new ProtocolError(`bad status line ${JSON.stringify(statusLine.slice(0, 200))}`);
    const headers = Object.create(null);
    let last = null;
    for (const line of fields) {
      if ((line[0] === ' ' || line[0] === '\t') && last !== null) {
        headers[last] += ' ' + line.trim();  // obsolete line folding
        continue;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ProtocolError(`bad header line ${JSON.stringify(line.slice(0, 200))}`);
      last = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[last] = last in headers ? `${headers[last]}, ${value}` : value;
    }
    return { version: match[1], status: Number(match[2]), headers };
  }

  beginBody(head) {
    const { version, status, headers } = head;
    // Interim answers (100 Continue and the like) precede the real one.
    if (status >= 100 && status < 200 && status !== SWITCHING_PROTOCOLS) return;
    const tokens = (headers.connection || '').toLowerCase().split(',').map((t) => t.trim());
    // HTTP/1.0 closes after every response unless it offered to keep the connection.
    const willClose = tokens.includes('close') || (version === 'HTTP/1.0' && !tokens.includes('keep-alive'));
    this.response = { status, headers, body: EMPTY, willClose };
    this.parts = [];
    this.bodyBytes = 0;
    if (status === 204 || status === 304 || status === SWITCHING_PROTOCOLS) return this.complete();
    if ((headers['transfer-encoding'] || '').toLowerCase().includes('chunked')) {
      this.state = CHUNK_SIZE;
      return;
    }
    const length = headers['content-length'];
    if (length !== undefined) {
      // Repeated Content-Length headers were joined above; they must agree.
      const values = new Set(length.split(',').map((v) => v.trim()));
      const [size] = values;
      if (values.size !== 1 || !/^\d+$/.test(size)) throw new ProtocolError(`bad Content-Length ${JSON.stringify(length.slice(0, 40))}`);
      this.remaining = Number(size);
      this.grow(this.remaining);
      if (this.remaining === 0) return this.complete();
      this.state = BODY_LENGTH;
      return;
    }
    // No framing at all: the body runs until the server hangs up.
    this.response.willClose = true;
    this.state = BODY_CLOSE;
  }

  grow(bytes) {
    this.bodyBytes += bytes;
    if (this.bodyBytes > MAX_BODY_BYTES) throw new ProtocolError(`response body of ${this.bodyBytes} bytes is too large`);
  }

  complete() {
    const response = this.response;
    response.body = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
    this.parts = [];
    this.response = null;
    this.state = HEAD;
    this.onResponse(response);
  }
}

module.exports = { HttpResponseReader, ProtocolError };
