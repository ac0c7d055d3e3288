// A function's activity over the last hour, day or week, from its stats: invocations,
// errors and throttles; duration percentiles; cold starts and init time; GB-seconds and cost.
import { api, path, query } from './api.js';
import { el, fill, section, errorBox, button } from './dom.js';
import { lineChart, label } from './charts.js';
import * as f from './format.js';

// Ranges and their steps: at most a few hundred points, far under the API's 1,440.
const RANGES = [
  { key: '1h', label: 'Last hour', ms: 3600e3, step: '60s' },
  { key: '24h', label: 'Last day', ms: 86400e3, step: '5m' },
  { key: '7d', label: 'Last week', ms: 7 * 86400e3, step: '1h' },
];

function totals(steps) {
  const t = { invocations: 0, errors: 0, throttles: 0, cold: 0 };
  for (const s of steps) {
    t.invocations += s.invocations;
    t.errors += s.errors;
    t.throttles += s.throttles;
    t.cold += s.cold_starts;
  }
  t.gbs = f.sumDecimals(steps.map((s) => s.gb_seconds));
  t.cost = f.sumDecimals(steps.map((s) => s.cost_usd));
  return t;
}

export async function renderActivity(holder, page, name) {
  let range = RANGES[0];
  const body = el('div', { id: 'activity' });
  const tabs = el('div', { class: 'tabs' });
  const drawTabs = () => fill(tabs, RANGES.map((r) =>
    button(r.label, () => { range = r; drawTabs(); load(); }, { class: r === range ? '' : 'secondary', 'data-range': r.key })));
  drawTabs();
  fill(holder, section('Activity', tabs, body));

  async function load() {
    const chosen = range;
    try {
      const stats = await api(path('functions', name, 'stats') +
        query({ since: f.isoNow(-chosen.ms), until: f.isoNow(), step: chosen.step }), { signal: page.signal });
      if (chosen !== range) return;  // another range was chosen meanwhile
      const steps = stats.steps;
      const starts = steps.map((s) => s.start);
      const t = totals(steps);
      const pick = (fn) => steps.map(fn);
      const xLabel = chosen.ms > 86400e3 ? (iso) => iso.slice(5, 16).replace('T', ' ') : (iso) => iso.slice(11, 16);
      fill(body,
        el('p', { class: 'muted' },
          `${f.plural(t.invocations, 'invocation')}, ${f.plural(t.errors, 'error')} ${f.percent(t.errors, t.invocations)}, `
          + `${f.plural(t.throttles, 'throttle')}, ${f.plural(t.cold, 'cold start')} ${f.percent(t.cold, t.invocations)}; `
          + `${f.gbs(t.gbs)} GB-s, `, el('span', { title: t.cost + ' USD', id: 'activity-cost' }, f.usd(t.cost)),
          ` (step ${stats.step_s} s, UTC)`),
        el('div', { class: 'charts' },
          lineChart({ xLabel, title: 'Invocations, errors and throttles (per step)', starts, series: [
            { label: 'invocations', values: pick((s) => s.invocations) },
            { label: 'errors', values: pick((s) => s.errors), color: 1 },
            { label: 'throttles', values: pick((s) => s.throttles), color: 2 },
          ] }),
          lineChart({ xLabel, title: 'Duration', unit: 'ms', starts, series: [
            { label: 'p50', values: pick((s) => s.duration_ms && s.duration_ms.p50) },
            { label: 'p90', values: pick((s) => s.duration_ms && s.duration_ms.p90), color: 3 },
            { label: 'p99', values: pick((s) => s.duration_ms && s.duration_ms.p99), color: 1 },
          ], format: f.ms }),
          lineChart({ xLabel, title: 'Cold starts (per step)', starts, series: [
            { label: 'cold starts', values: pick((s) => s.cold_starts), color: 4 },
          ] }),
          lineChart({ xLabel, title: 'Init duration (mean of the step\u2019s cold starts)', unit: 'ms', starts, series: [
            { label: 'init', values: pick((s) => s.init_ms_mean), color: 2 },
          ], format: f.ms }),
          lineChart({ xLabel, title: 'GB-seconds (per step)', starts, series: [
            { label: 'GB-s', values: pick((s) => Number(s.gb_seconds)), color: 3 },
          ], format: (v) => f.gbs(String(v)) }),
          lineChart({ xLabel, title: 'Cost (USD per step)', starts, series: [
            { label: 'cost', values: pick((s) => Number(s.cost_usd)) },
          ], format: (v) => f.usd(String(v)), yLabel: (v) => (v ? '$' + label(v) : '$0') })));
    } catch (err) {
      if (err.name !== 'AbortError') fill(body, errorBox(err));
    }
  }
  await load();
  page.every(60000, load);
}
