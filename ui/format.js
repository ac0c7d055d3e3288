// How numbers, times and money are shown. Money and GB-seconds arrive as exact decimal
// strings; sums of them are made exactly, with BigInt, never in binary floating point.

const DIGITS = 24;  // decimal places kept when adding; the API gives at most 20
const SCALE = 10n ** BigInt(DIGITS);

function toScaled(s) {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(String(s ?? '0'));
  if (!m) return 0n;
  return BigInt(m[1]) * SCALE + BigInt((m[2] || '').padEnd(DIGITS, '0').slice(0, DIGITS) || '0');
}

function fromScaled(n) {
  const whole = n / SCALE;
  const frac = (n % SCALE).toString().padStart(DIGITS, '0').replace(/0+$/, '');
  return frac ? whole + '.' + frac : whole.toString();
}

// The exact sum of decimal strings such as "0.00000822084".
export function sumDecimals(values) {
  return fromScaled(values.reduce((acc, v) => acc + toScaled(v), 0n));
}

// Three significant digits in plain notation (money is never shown as 6.2e-7).
function small(n) {
  return n.toFixed(Math.min(20, 2 - Math.floor(Math.log10(n))));
}

export function usd(s) {
  const n = Number(s);
  if (!n) return '$0';
  if (n >= 1) return '$' + n.toFixed(2);
  if (n >= 0.01) return '$' + n.toFixed(4);
  return '$' + small(n);
}

export function gbs(s) {
  const n = Number(s);
  if (!n) return '0';
  return n >= 1 ? n.toFixed(1) : small(n);
}

export function ms(v) {
  if (v === null || v === undefined) return '–';
  if (v === 0) return '0 ms';
  if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
  if (v >= 10) return v.toFixed(0) + ' ms';
  return v.toFixed(v >= 1 ? 1 : 3) + ' ms';
}

export function count(n) {
  if (n === null || n === undefined) return '–';
  return Number(n).toLocaleString('en-US');
}

// "1 error", "2 errors".
export function plural(n, word, words = word + 's') {
  return count(n) + ' ' + (n === 1 ? word : words);
}

export function percent(part, whole) {
  if (!whole) return '';
  const p = (100 * part) / whole;
  return (p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)) + '%';
}

// Times are shown in UTC, as the API gives them and as its steps are aligned.
export function time(iso) {
  if (!iso) return '–';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function clock(iso) {
  return iso ? iso.slice(11, 19) : '';
}

export function isoNow(offsetMs = 0) {
  return new Date(Date.now() + offsetMs).toISOString();
}

export function startOfUtcDay(date = new Date()) {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

export function seconds(s) {
  if (s === null || s === undefined) return '–';
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
  if (s < 3600) return (s / 60).toFixed(0) + ' min';
  return (s / 3600).toFixed(1) + ' h';
}
