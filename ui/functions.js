// #/ : every function at a glance: settings, workers, the last hour's invocations, errors
// and p99 duration, and today's cost.
import { api, path, query, mapLimited } from './api.js';
import { el, fill, table, errorBox, button } from './dom.js';
import * as f from './format.js';

// Requests in flight at once while filling the table: enough to fill a screen quickly,
// few enough to leave the daemon's blocking pool to invocations.
const PARALLEL = 4;
const HOUR_MS = 3600 * 1000;

// The last hour of one function from its stats: with a one-day step, the steps hold just
// the hour's invocations (the API counts since <= start < until), so the percentiles are
// the hour's own; across midnight UTC there are two steps, and p99 is the larger.
export function lastHour(stats) {
  const out = { invocations: 0, errors: 0, throttles: 0, p99: null };
  for (const s of stats.steps) {
    out.invocations += s.invocations;
    out.errors += s.errors;
    out.throttles += s.throttles;
    if (s.duration_ms && (out.p99 === null || s.duration_ms.p99 > out.p99)) out.p99 = s.duration_ms.p99;
  }
  return out;
}

export async function renderFunctions(view, page) {
  const status = el('p', { class: 'muted' }, 'Loading…');
  const holder = el('div');
  fill(view, el('div', { class: 'title-row' }, el('h1', null, 'Functions'),
                button('Refresh', () => load(), { class: 'secondary', id: 'refresh-functions' })), status, holder);

  async function load() {
    const signal = page.signal;
    const until = f.isoNow();
    const since = f.isoNow(-HOUR_MS);
    const today = f.startOfUtcDay().toISOString();
    let list;
    let usage;
    try {
      [list, usage] = await Promise.all([
        api('/v1/functions', { signal }),
        api('/v1/usage' + query({ since: today }), { signal }),
      ]);
    } catch (err) {
      if (err.name !== 'AbortError') fill(holder, errorBox(err));
      return;
    }
    const costToday = new Map(usage.functions.map((u) => [u.name, u]));
    const cells = new Map();  // name -> {workers, invocations, errors, p99}
    const cell = (name, key) => {
      const td = el('span', { class: 'pending', 'data-cell': key }, '…');
      cells.get(name)[key] = td;
      return td;
    };
    for (const fn of list.functions) cells.set(fn.name, {});
    const rows = list.functions;
    fill(holder, table([
      ['Name', (fn) => el('a', { href: '#/functions/' + encodeURIComponent(fn.name), class: 'fn-link' }, fn.name)],
      ['Runtime', (fn) => fn.runtime],
      ['Memory', (fn) => fn.memory_mb + ' MB', 'num'],
      ['Version', (fn) => String(fn.version), 'num'],
      ['Workers', (fn) => cell(fn.name, 'workers'), 'num'],
      ['Invocations (1 h)', (fn) => cell(fn.name, 'invocations'), 'num'],
      ['Errors (1 h)', (fn) => cell(fn.name, 'errors'), 'num'],
      ['p99 (1 h)', (fn) => cell(fn.name, 'p99'), 'num'],
      ['Cost today', (fn) => {
        const u = costToday.get(fn.name);
        return u ? el('span', { title: u.cost_usd + ' USD' }, f.usd(u.cost_usd)) : '$0';
      }, 'num'],
    ], rows, { empty: 'No functions deployed yet.', rowProps: (fn) => ({ 'data-function': fn.name }) }));
    fill(status, `${rows.length} function${rows.length === 1 ? '' : 's'}; today (UTC) ${f.usd(usage.total.cost_usd)}, `
      + `${f.count(usage.total.invocations)} invocations.`);

    await mapLimited(rows, PARALLEL, async (fn) => {
      if (!page.active) return;
      const c = cells.get(fn.name);
      try {
        const [detail, stats] = await Promise.all([
          api(path('functions', fn.name), { signal }),
          api(path('functions', fn.name, 'stats') + query({ since, until, step: '1d' }), { signal }),
        ]);
        const h = lastHour(stats);
        const p = detail.provisioned;
        fill(c.workers, `${detail.instances.busy} busy / ${detail.instances.idle} idle`
          + (p && p.requested ? ` (${p.ready}/${p.requested} provisioned)` : ''));
        fill(c.invocations, f.count(h.invocations));
        fill(c.errors, f.count(h.errors), h.errors ? el('span', { class: 'muted' }, ' ' + f.percent(h.errors, h.invocations)) : '');
        c.errors.classList.toggle('bad', h.errors > 0);
        fill(c.p99, f.ms(h.p99));
      } catch (err) {
        if (err.name === 'AbortError') return;
        // A function deleted meanwhile, or the ledger busy: said in its row.
        for (const td of Object.values(c)) { fill(td, '?'); td.title = err.message; }
      }
      for (const td of Object.values(c)) td.classList.remove('pending');
    });
  }
  await load();
}
