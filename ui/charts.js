// Line charts over a function's stats steps, drawn as SVG by hand: a few dozen lines
// instead of a charting library, and nothing but attributes and classes (the page's
// policy refuses inline styles).
import { el, svg } from './dom.js';
import { clock } from './format.js';

const W = 560;
const H = 150;
const PAD = { left: 72, right: 8, top: 8, bottom: 20 };

// A round upper bound for the y axis: 1, 2 or 5 times a power of ten.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function label(v, unit) {
  let n;
  if (v >= 100 || v === 0) n = v.toFixed(0);
  else if (v >= 1) n = String(Number(v.toFixed(1)));
  else n = v.toFixed(Math.min(20, 1 - Math.floor(Math.log10(v))));  // plain notation, two digits
  return unit ? n + ' ' + unit : n;
}

// `starts`: the steps' start times (ISO); `series`: [{label, values (numbers or null)}].
// `format(v)` writes a value in the hover titles.
// `xLabel(iso)` writes the time axis' labels.
// `yLabel(v)` the value axis'.
export function lineChart({ title, starts, series, unit = '', format = (v) => label(v, unit), xLabel = clock,
                            yLabel = (v) => label(v, unit) }) {
  const n = starts.length;
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  max = niceMax(max);
  const x = (i) => PAD.left + (n <= 1 ? innerW / 2 : (i * innerW) / (n - 1));
  const y = (v) => PAD.top + innerH - (v / max) * innerH;

  // Drawn at its own size (never scaled up, so its text stays small), narrower screens shrink it.
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': title });
  for (const frac of [0, 0.5, 1]) {
    const yy = y(max * frac);
    chart.append(svg('line', { class: 'grid-line', x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy }),
                 svg('text', { class: 'axis-label', x: PAD.left - 4, y: yy + 3, 'text-anchor': 'end' }, yLabel(max * frac)));
  }
  if (n > 0) {
    for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
      chart.append(svg('text', { class: 'axis-label', x: x(i), y: H - 5,
                                 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle' }, xLabel(starts[i])));
    }
  }
  series.forEach((s, k) => {
    // A gap (null) breaks the line rather than drawing it down to zero.
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
      pen = true;
    });
    // A lone point is drawn as a dot, which a path of one move would not show.
    s.values.forEach((v, i) => {
      const prev = i > 0 ? s.values[i - 1] : null;
      const next = i < n - 1 ? s.values[i + 1] : null;
      if (v !== null && v !== undefined && (prev === null || prev === undefined) && (next === null || next === undefined))
        chart.append(svg('circle', { class: 'series s' + (s.color ?? k), cx: x(i), cy: y(v), r: 1.8 }));
    });
    if (d) chart.append(svg('path', { class: 'series s' + (s.color ?? k), d: d.trim() }));
  });
  // One hover band per step, titled with its values.
  const band = n <= 1 ? innerW : innerW / (n - 1);
  for (let i = 0; i < n; i++) {
    const lines = [starts[i].replace('T', ' ').replace(/\.\d+Z$/, 'Z')];
    for (const s of series) {
      const v = s.values[i];
      lines.push(s.label + ': ' + (v === null || v === undefined ? '–' : format(v)));
    }
    chart.append(svg('rect', { class: 'hover', x: Math.max(PAD.left, x(i) - band / 2), y: PAD.top,
                               width: band, height: innerH }, svg('title', null, lines.join('\n'))));
  }
  const legend = el('div', { class: 'legend' },
    series.map((s, k) => el('span', null, el('span', { class: 'swatch s' + (s.color ?? k) }), s.label)));
  return el('figure', { class: 'chart' }, el('figcaption', null, title), chart, legend);
}
