// The function's async queue and its dead letters: events that ran out of retries or age,
// each with its payload and errors, and a button to queue it again (redrive).
import { api, path, query } from './api.js';
import { el, fill, section, errorBox, button } from './dom.js';
import * as f from './format.js';

export async function renderDeadLetters(holder, page, fn, onChange) {
  const name = fn.name;
  const list = el('div', { id: 'dead-letters' });
  const status = el('p', { class: 'muted' });

  async function act(letter, method, suffix, row) {
    for (const b of row.querySelectorAll('button')) b.disabled = true;
    try {
      await api(path('dead-letters', letter.id) + suffix, { method, signal: page.signal });
      row.replaceChildren(el('td', { colspan: 6, class: 'muted' },
        method === 'POST' ? `Redriven: ${letter.id} is queued again.` : `Deleted ${letter.id}.`));
      onChange();
    } catch (err) {
      if (err.name === 'AbortError') return;
      row.lastChild.append(errorBox(err));
      for (const b of row.querySelectorAll('button')) b.disabled = false;
    }
  }

  async function load() {
    try {
      const doc = await api('/v1/dead-letters' + query({ function: name, limit: 100 }), { signal: page.signal });
      const letters = doc.dead_letters;
      fill(status, `Queued now: ${fn.async.queue_depth}` +
        (fn.async.oldest_event_age_s !== null ? `, the oldest for ${f.seconds(fn.async.oldest_event_age_s)}` : '') +
        `. Dead letters: ${letters.length}${letters.length === 100 ? ' (the newest 100)' : ''}.`);
      const rows = letters.map((d) => {
        const last = d.errors.length ? d.errors[d.errors.length - 1] : null;
        const row = el('tr', { 'data-dead-letter': d.id },
          el('td', { class: 'mono', title: d.id }, d.id.slice(0, 8)),
          el('td', { class: 'mono' }, f.time(d.failed)),
          el('td', null, d.reason),
          el('td', { class: 'num' }, String(d.attempts)),
          el('td', null, last ? last.error_type + ': ' + last.error_message : '–',
             el('details', null, el('summary', null, 'payload and every attempt'),
               el('pre', { class: 'payload' }, JSON.stringify(d.payload, null, 2)),
               d.errors.map((e) => el('div', { class: 'mono' }, `#${e.attempt} ${f.time(e.time)} ${e.error_type}: ${e.error_message}`)),
               el('div', { class: 'muted' }, `received ${f.time(d.received)} from ${d.source}` + (d.trace_id ? `, trace ${d.trace_id}` : '')))),
          el('td', null));
        row.lastChild.append(
          button('Redrive', () => act(d, 'POST', '/redrive', row), { class: 'redrive' }), ' ',
          button('Delete', () => { if (confirm('Delete this dead letter for good?')) act(d, 'DELETE', '', row); },
                 { class: 'danger' }));
        return row;
      });
      fill(list, el('table', { class: 'grid' },
        el('thead', null, el('tr', null, ['Id', 'Failed (UTC)', 'Reason', 'Attempts', 'Last error', ''].map((h) => el('th', null, h)))),
        el('tbody', null, rows.length ? rows : el('tr', null, el('td', { colspan: 6, class: 'muted' }, 'No dead letters.')))));
    } catch (err) {
      if (err.name !== 'AbortError') fill(list, errorBox(err));
    }
  }
  fill(holder, section('Async queue and dead letters', el('div', { class: 'row' }, status,
    button('Refresh', load, { class: 'secondary', id: 'refresh-dead-letters' })), list));
  await load();
}
