// A function's recent invocations from the ledger, newest first; a click on one opens its
// log lines.
import { api, path, query, logRecords } from './api.js';
import { el, fill, section, errorBox, button } from './dom.js';
import { logLine, notice } from './logs.js';
import * as f from './format.js';

const OUTCOMES = ['', 'success', 'function_error', 'timeout', 'exit_error', 'init_error', 'throttled'];
const LIMIT = 50;
const COLUMNS = ['Start (UTC)', 'Request id', 'Trigger', 'Outcome', 'Duration', 'Billed', 'Init', 'Max memory', 'Version'];

async function logsOf(name, inv, page) {
  const box = el('div', { class: 'log', 'data-logs-of': inv.request_id }, notice('Loading log lines…'));
  try {
    const { records, leftOut } = await logRecords(name, { request_id: inv.request_id }, page.signal);
    fill(box, leftOut ? notice(`${leftOut} earlier records left out`) : null,
         records.length ? records.map(logLine) : notice('No log lines for this invocation.'));
  } catch (err) {
    if (err.name !== 'AbortError') fill(box, errorBox(err));
  }
  return box;
}

export async function renderInvocations(holder, page, name) {
  const outcome = el('select', { id: 'outcome-filter' },
    OUTCOMES.map((o) => el('option', { value: o }, o === '' ? 'every outcome' : o)));
  const tbody = el('tbody', { id: 'invocations' });
  const status = el('span', { class: 'muted' });
  const open = new Map();  // request id -> its detail row, kept across refreshes
  const refresh = async () => {
    try {
      const doc = await api(path('functions', name, 'invocations') + query({ limit: LIMIT, outcome: outcome.value }),
                            { signal: page.signal });
      draw(doc.invocations);
      fill(status, `${doc.invocations.length} shown` + (doc.invocations.length === LIMIT ? ' (the newest)' : ''));
    } catch (err) {
      if (err.name !== 'AbortError') fill(tbody, el('tr', null, el('td', { colspan: COLUMNS.length }, errorBox(err))));
    }
  };
  outcome.addEventListener('change', refresh);

  function draw(list) {
    tbody.replaceChildren();
    if (list.length === 0) tbody.append(el('tr', null, el('td', { colspan: COLUMNS.length, class: 'muted' }, 'No invocations.')));
    // An attempt of an async event shares its request id with the others: the key adds the start.
    for (const inv of list) {
      const key = inv.request_id + '@' + inv.start_us;
      const row = el('tr', { class: 'clickable' + (open.has(key) ? ' open' : ''), 'data-request-id': inv.request_id, tabindex: 0 },
        el('td', { class: 'mono' }, f.time(inv.start)),
        el('td', { class: 'mono', title: inv.request_id }, inv.request_id.slice(0, 8)),
        el('td', null, inv.trigger ?? '–'),
        el('td', { class: 'outcome-' + (OUTCOMES.includes(inv.outcome) ? inv.outcome : 'other') }, inv.outcome),
        el('td', { class: 'num' }, inv.outcome === 'throttled' ? '–' : f.ms(inv.duration_ms)),
        el('td', { class: 'num' }, inv.billed_ms ? inv.billed_ms + ' ms' : '–'),
        el('td', { class: 'num' }, inv.init_duration_ms === null ? '–' : f.ms(inv.init_duration_ms)),
        el('td', { class: 'num' }, inv.max_memory_used_mb ? `${inv.max_memory_used_mb} / ${inv.memory_mb} MB` : '–'),
        el('td', { class: 'num' }, String(inv.version)));
      const toggle = async () => {
        if (open.has(key)) {
          open.get(key).remove();
          open.delete(key);
          row.classList.remove('open');
          return;
        }
        const detail = el('tr', { class: 'detail' }, el('td', { colspan: COLUMNS.length },
          el('div', { class: 'muted mono' }, 'request ' + inv.request_id + (inv.trace_id ? ' · trace ' + inv.trace_id : ''))));
        open.set(key, detail);
        row.classList.add('open');
        row.after(detail);
        detail.firstChild.append(await logsOf(name, inv, page));
      };
      row.addEventListener('click', toggle);
      row.addEventListener('keydown', (e) => { if (e.key === 'Enter') toggle(); });
      tbody.append(row);
      if (open.has(key)) tbody.append(open.get(key));
    }
  }

  fill(holder, section('Recent invocations',
    el('div', { class: 'row' }, outcome, button('Refresh', refresh, { class: 'secondary', id: 'refresh-invocations' }), status),
    el('table', { class: 'grid' }, el('thead', null, el('tr', null, COLUMNS.map((c) => el('th', null, c)))), tbody)));
  holder.refresh = refresh;
  await refresh();
  page.every(10000, refresh);
}
