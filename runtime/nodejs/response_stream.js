'use strict';
// The stream a streaming handler writes its response to: a Writable whose bytes go to the
// Runtime API as they are written (see StreamedPost in runtime_api_client.js). Loaded only
// when a streaming handler is first invoked.
//
// Backpressure: a write is done once its bytes have left the process, so while the
// connection is full the stream's buffer fills and write() returns false until 'drain', as
// with any Node stream.
const { Writable } = require('node:stream');
const { InvalidStreamingOperation } = require('./runtime_errors.js');

class ResponseStream extends Writable {
  #post;

  // `highWaterMark`: from awslambda.streamifyResponse(handler, { highWaterMark }), if given.
  constructor(post, highWaterMark) {
    super(highWaterMark === undefined ? {} : { highWaterMark });
    this.#post = post;
    // Called once, before the first bytes, with a function that writes bytes ahead of them:
    // how awslambda.HttpResponseStream.from() puts its prelude first.
    this._onBeforeFirstWrite = undefined;
  }

  setContentType(contentType) {
    if (this.#post.started) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    this.#post.contentType = contentType;
  }

  // Anything but a string or bytes is written as its JSON, as on Lambda.
  write(chunk, encoding, callback) {
    return super.write(asBytes(chunk), encoding, callback);
  }

  end(chunk, encoding, callback) {
    if (chunk === null || chunk === undefined || typeof chunk === 'function') return super.end(chunk, encoding, callback);
    return super.end(asBytes(chunk), encoding, callback);
  }

  _write(chunk, _encoding, done) {
    this.#send([chunk], done);
  }

  // Chunks written while the connection was busy go out as one.
  _writev(entries, done) {
    this.#send(entries.map((entry) => entry.chunk), done);
  }

  // A response with no bytes still has its head (and its prelude, if any).
  _final(done) {
    if (this.#post.started) return done();
    this.#send([], done);
  }

  #send(chunks, done) {
    if (!this.#post.started && typeof this._onBeforeFirstWrite === 'function') {
      const prelude = [];
      this._onBeforeFirstWrite((bytes) => prelude.push(toBuffer(asBytes(bytes))));
      chunks = prelude.concat(chunks);
    }
    this.#post.write(chunks.map(toBuffer), done);
  }
}

function asBytes(chunk) {
  return typeof chunk === 'string' || chunk instanceof Uint8Array ? chunk : JSON.stringify(chunk);
}

function toBuffer(chunk) {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk));
}

module.exports = { ResponseStream };
