'use strict';
// One connection to the Runtime API: a socket, the responses read from it in order, and
// whether it still works. The client (runtime_api_client.js) decides what to send and
// what to do when a connection fails.
//
// The socket keeps the event loop alive only while a response is awaited. The rest of the
// time, and in particular while a handler runs, it does not count, so that the loop
// empties ('beforeExit') exactly when the handler's own work is done; that is how a
// callback handler's answer waits for an empty event loop, as on Lambda.
const { HttpResponseReader } = require('./http_response_reader.js');

class ApiConnection {
  constructor(socket) {
    this.socket = socket;
    this.responses = [];
    this.waiter = null;  // { resolve, reject } of the read() under way
    this.failure = null;  // why the connection stopped working, once it has
    this.reader = new HttpResponseReader((response) => this.deliver(response));
    socket.unref();
    socket.on('data', (data) => {
      try {
        this.reader.push(data);
      } catch (err) {
        this.fail(err);
      }
    });
    socket.on('end', () => {
      try {
        this.reader.end();
      } catch (err) {
        return this.fail(err);
      }
      this.fail(new Error('the Runtime API closed the connection'));
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('the connection to the Runtime API closed')));
  }

  get broken() {
    return this.failure !== null;
  }

  // Queues bytes for sending; `done(err)` once they are out of the process.
  write(bytes, done) {
    if (this.failure) {
      if (done) process.nextTick(done, this.failure);
      return false;
    }
    return this.socket.write(bytes, done);
  }

  // The next response on this connection, in order.
  read() {
    if (this.responses.length) return Promise.resolve(this.responses.shift());
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket.ref();
    });
  }

  // Calls `then` once everything written so far has left the process (or cannot).
  flushed(then) {
    if (this.failure || this.socket.writableLength === 0) return then();
    this.socket.ref();
    let called = false;
    const once = () => {
      if (!called) (called = true), then();
    };
    this.socket.once('drain', once);
    this.socket.once('close', once);
  }

  destroy() {
    this.fail(new Error('connection dropped'));
  }

  deliver(response) {
    const waiter = this.waiter;
    if (!waiter) {
      this.responses.push(response);
      return;
    }
    this.waiter = null;
    this.socket.unref();
    waiter.resolve(response);
  }

  fail(err) {
    if (this.failure) return;
    this.failure = err;
    this.socket.destroy();
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter) waiter.reject(err);
  }
}

module.exports = { ApiConnection };
