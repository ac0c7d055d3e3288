// Log records as lines, and the live tail: the logs API's Server-Sent Events read with
// fetch() and a stream reader, since EventSource cannot send the Authorization header.
import { api, path, query } from './api.js';
import { el } from './dom.js';

const LEVEL = /^[A-Z]{1,8}$/;

// One record of the logs API: {timestamp, request_id, level, stream, message}.
export function logLine(rec) {
  const platform = rec.stream === 'platform';
  const level = typeof rec.level === 'string' && LEVEL.test(rec.level) ? rec.level : null;
  const tag = platform ? (level ? 'platform.' + level : 'platform') : level;
  const cls = 'line' + (platform ? ' platform' : '') + (level ? ' lvl-' + level : '');
  return el('div', { class: cls },
    el('span', { class: 'ts' }, (rec.timestamp || '').slice(11, 23)),
    tag ? el('span', { class: 'tag' }, tag) : null,
    String(rec.message ?? ''));
}

export function notice(text) {
  return el('div', { class: 'line notice' }, text);
}

// Splits a Server-Sent Events byte stream into events (the WHATWG format: fields per
// line, events separated by a blank line, comments starting with ':').
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
  }
  push(text) {
    this.buffer += text;
    // A CR at the end may be the first half of a CRLF: kept for the next chunk.
    const keep = this.buffer.endsWith('\r') ? 1 : 0;
    const usable = this.buffer.slice(0, this.buffer.length - keep).replace(/\r\n?/g, '\n');
    this.buffer = this.buffer.slice(this.buffer.length - keep);
    let rest = usable;
    let end;
    while ((end = rest.indexOf('\n\n')) >= 0) {
      this.dispatch(rest.slice(0, end));
      rest = rest.slice(end + 2);
    }
    this.buffer = rest + this.buffer;
  }
  dispatch(block) {
    let type = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') type = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) this.onEvent(type, data.join('\n'));
  }
}

// Follows a function's log until `signal` aborts or the daemon ends the stream.
// onRecord(record), onDropped(count), onEnd(reason).
export async function followLog(name, params, signal, { onOpen, onRecord, onDropped, onEnd }) {
  const res = await api(path('functions', name, 'logs') + query({ follow: 'true', ...params }), { raw: true, signal });
  if (onOpen) onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let ended = null;
  const parser = new SseParser((type, data) => {
    const doc = JSON.parse(data);
    if (type === 'message') onRecord(doc);
    else if (type === 'dropped') onDropped(doc.records);
    else if (type === 'end') ended = doc.reason;
  });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  onEnd(ended || 'closed');
}
