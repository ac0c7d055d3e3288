// #/usage: usage and cost by function and by day (UTC), with totals, from /v1/usage.
import { api, query, mapLimited } from './api.js';
import { el, fill, errorBox, button } from './dom.js';
import { lineChart, label } from './charts.js';
import * as f from './format.js';

const DAY_MS = 86400e3;
const RANGES = [
  { key: '7', label: 'Last 7 days', days: 7 },
  { key: '30', label: 'Last 30 days', days: 30 },
];
// Daily queries in flight at once.
const PARALLEL = 4;

function usageTable(id, firstHeader, first, rows, total) {
  const cells = (u) => [
    el('td', { class: 'num' }, f.count(u.invocations)),
    el('td', { class: 'num' }, f.count(u.errors), u.errors ? el('span', { class: 'muted' }, ' ' + f.percent(u.errors, u.invocations)) : ''),
    el('td', { class: 'num' }, f.count(u.cold_starts)),
    el('td', { class: 'num' }, f.ms(u.duration_ms)),
    el('td', { class: 'num', title: u.gb_seconds }, f.gbs(u.gb_seconds)),
    el('td', { class: 'num', title: u.cost_usd + ' USD' }, f.usd(u.cost_usd)),
  ];
  return el('table', { class: 'grid', id },
    el('thead', null, el('tr', null, [firstHeader, 'Invocations', 'Errors', 'Cold starts', 'Duration (sum)', 'GB-s', 'Cost'].map(
      (h, i) => el('th', { class: i ? 'num' : null }, h)))),
    el('tbody', null, rows.length ? rows.map((u) => el('tr', null, el('td', null, first(u)), cells(u)))
      : el('tr', null, el('td', { colspan: 7, class: 'muted' }, 'No usage in this range.'))),
    el('tfoot', null, el('tr', null, el('td', null, 'Total'), cells(total))));
}

export async function renderUsage(view, page) {
  let range = RANGES[0];
  const tabs = el('div', { class: 'tabs' });
  const body = el('div', null, el('p', { class: 'muted' }, 'Loading…'));
  const drawTabs = () => fill(tabs, RANGES.map((r) =>
    button(r.label, () => { range = r; drawTabs(); load(); }, { class: r === range ? '' : 'secondary' })));
  drawTabs();
  fill(view, el('h1', null, 'Usage and cost'), tabs, body);

  async function load() {
    const chosen = range;
    // Whole UTC days, today included.
    const today = f.startOfUtcDay();
    const days = Array.from({ length: chosen.days }, (_, i) => new Date(today.getTime() - (chosen.days - 1 - i) * DAY_MS));
    const since = days[0].toISOString();
    try {
      const [all, daily] = await Promise.all([
        api('/v1/usage' + query({ since }), { signal: page.signal }),
        mapLimited(days, PARALLEL, (d) => api('/v1/usage' + query({
          since: d.toISOString(), until: new Date(d.getTime() + DAY_MS).toISOString() }), { signal: page.signal })),
      ]);
      if (chosen !== range) return;
      const byDay = daily.map((u, i) => ({ day: days[i].toISOString().slice(0, 10), ...u.total }));
      const byCost = [...all.functions].sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd));
      fill(body,
        el('p', { class: 'muted' }, `Since ${f.time(since)}. Prices: ${all.prices.per_gb_second} USD per GB-second, `
          + `${all.prices.per_request} USD per request. Totals are exact; the table rounds.`),
        lineChart({ xLabel: (iso) => iso.slice(5, 10), title: 'Cost per day (USD)', starts: days.map((d) => d.toISOString()), series: [
          { label: 'cost', values: byDay.map((d) => Number(d.cost_usd)) },
        ], format: (v) => f.usd(String(v)), yLabel: (v) => (v ? '$' + label(v) : '$0') }),
        el('h2', null, 'By function (most expensive first)'),
        usageTable('usage-by-function', 'Function',
          (u) => el('a', { href: '#/functions/' + encodeURIComponent(u.name) }, u.name), byCost, all.total),
        el('h2', null, 'By day'),
        usageTable('usage-by-day', 'Day (UTC)', (u) => u.day, byDay.slice().reverse(), all.total));
    } catch (err) {
      if (err.name !== 'AbortError') fill(body, errorBox(err));
    }
  }
  await load();
}
