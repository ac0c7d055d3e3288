// #/functions/<name>: one function: its activity charts, recent invocations with their
// log lines, a test invocation, the live log, triggers, async queue and dead letters,
// and settings.
import { api, path, query, ApiError } from './api.js';
import { el, fill, section, errorBox, button } from './dom.js';
import * as f from './format.js';
import { renderActivity } from './activity.js';
import { renderInvocations } from './invocations.js';
import { renderLiveLog } from './live_log.js';
import { renderTriggers } from './triggers.js';
import { renderDeadLetters } from './dead_letters.js';
import { renderSettings } from './settings.js';

function facts(pairs) {
  return el('dl', { class: 'facts' }, pairs.map(([k, v]) => el('div', null, el('dt', null, k), el('dd', null, v))));
}

function summary(fn) {
  const reserved = fn.reserved_concurrency === null ? 'unreserved' : 'reserved ' + fn.reserved_concurrency;
  return facts([
    ['Runtime', fn.runtime + (fn.runtime_version ? ' (' + fn.runtime_version + ')' : '')],
    ['Handler', fn.handler],
    ['Version', String(fn.version)],
    ['Memory', fn.memory_mb + ' MB'],
    ['Timeout', fn.timeout_s + ' s'],
    ['Workers', `${fn.instances.busy} busy, ${fn.instances.idle} idle`],
    ['Running now', String(fn.running)],
    ['Concurrency', `${reserved}, provisioned ${fn.provisioned.ready}/${fn.provisioned.requested}`],
    ['Async queue', `${fn.async.queue_depth} queued` + (fn.async.oldest_event_age_s !== null
      ? `, oldest ${f.seconds(fn.async.oldest_event_age_s)}` : '')],
    ['Last deployed', f.time(fn.last_modified)],
  ]);
}

// A test invocation with an event typed here.
function invokePanel(name, page, onInvoked) {
  const event = el('textarea', { rows: 4, id: 'invoke-event', spellcheck: 'false' });
  event.value = '{}';
  const type = el('select', { id: 'invoke-type' },
    el('option', { value: 'RequestResponse' }, 'synchronous'), el('option', { value: 'Event' }, 'asynchronous (queued)'));
  const out = el('div', { id: 'invoke-result' });
  const go = button('Invoke', async () => {
    go.disabled = true;
    fill(out, el('p', { class: 'muted' }, 'Invoking…'));
    try {
      let body = event.value.trim() || '{}';
      JSON.parse(body);  // said here rather than as the API's 400
      const res = await api(path('functions', name, 'invoke'), {
        method: 'POST', body, raw: true, signal: page.signal,
        headers: { 'Content-Type': 'application/json', 'X-Funcd-Invocation-Type': type.value },
      });
      const h = (k) => res.headers.get(k);
      const text = await res.text();
      const bits = [`${res.status}`, h('X-Funcd-Request-Id') && 'request ' + h('X-Funcd-Request-Id'),
        h('X-Funcd-Duration-Ms') && 'duration ' + h('X-Funcd-Duration-Ms') + ' ms',
        h('X-Funcd-Billed-Duration-Ms') && 'billed ' + h('X-Funcd-Billed-Duration-Ms') + ' ms',
        h('X-Funcd-Init-Duration-Ms') && 'init ' + h('X-Funcd-Init-Duration-Ms') + ' ms',
        h('X-Funcd-Function-Error') && 'function error'].filter(Boolean);
      fill(out, el('p', { class: h('X-Funcd-Function-Error') ? 'bad' : 'good' }, bits.join(' · ')),
           el('pre', { class: 'payload' }, text));
      onInvoked();
    } catch (err) {
      if (err.name === 'AbortError') return;
      fill(out, errorBox(err instanceof SyntaxError ? new Error('the event is not JSON: ' + err.message) : err));
    } finally {
      go.disabled = false;
    }
  }, { id: 'invoke-button' });
  return section('Invoke', el('label', { for: 'invoke-event' }, 'Event (JSON)'), event,
                 el('div', { class: 'row' }, type, go), out);
}

export async function renderFunction(view, page, name) {
  let fn;
  try {
    fn = await api(path('functions', name), { signal: page.signal });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      fill(view, el('h1', null, name), el('p', { class: 'error' }, 'No such function.'), el('a', { href: '#/' }, 'All functions'));
      return;
    }
    throw err;
  }
  const head = el('div');
  const refreshHead = async () => {
    try {
      fn = await api(path('functions', name), { signal: page.signal });
      fill(head, summary(fn));
    } catch (err) {
      if (err.name !== 'AbortError') fill(head, errorBox(err));
    }
  };
  fill(head, summary(fn));
  const activity = el('div');
  const invocations = el('div');
  const liveLog = el('div');
  const triggers = el('div');
  const deadLetters = el('div');
  const settings = el('div');
  fill(view,
    el('div', { class: 'title-row' }, el('h1', { id: 'function-name' }, name),
       el('a', { href: '#/' }, 'All functions')),
    fn.description ? el('p', { class: 'muted' }, fn.description) : null,
    section('Overview', head),
    activity, invocations,
    invokePanel(name, page, () => { refreshHead(); invocations.refresh && invocations.refresh(); }),
    liveLog, triggers, deadLetters, settings);

  // Independent parts: one failing shows its error and leaves the others.
  const parts = [
    renderActivity(activity, page, name),
    renderInvocations(invocations, page, name),
    renderLiveLog(liveLog, page, name),
    renderTriggers(triggers, page, fn),
    renderDeadLetters(deadLetters, page, fn, refreshHead),
    renderSettings(settings, page, fn, refreshHead),
  ];
  await Promise.all(parts.map((p) => Promise.resolve(p).catch((err) => {
    if (err.name !== 'AbortError') view.append(errorBox(err));
  })));
  page.every(15000, refreshHead);
}
