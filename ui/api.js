// The /v1 API, called with the token this tab signed in with. The token lives in
// sessionStorage (gone with the tab) and travels only in the Authorization header of
// same-origin requests: never in a URL, a cookie or the page.
const KEY = 'funcd.api-token';

export const session = {
  token: () => sessionStorage.getItem(KEY),
  signIn: (token) => sessionStorage.setItem(KEY, token),
  signOut: () => sessionStorage.removeItem(KEY),
};

// An answer of the API other than 2xx, with the API's error type and message.
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

let unauthorizedHandler = () => {};
// Called when the API answers 401 (the token was changed or is wrong).
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

// Path segments are encoded here, so names never change a URL's shape.
export function path(...segments) {
  return '/v1/' + segments.map((s) => encodeURIComponent(String(s))).join('/');
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? '?' + s : '';
}

async function errorOf(res) {
  let doc = null;
  try { doc = await res.json(); } catch { /* not JSON */ }
  const e = doc && doc.error;
  return new ApiError(res.status, (e && e.type) || 'HTTP ' + res.status, (e && e.message) || res.statusText);
}

// fetch() against the API. `body`: an object is sent as JSON. `raw`: the Response itself
// (for streams, NDJSON and headers), once its status is known to be 2xx.
export async function api(target, { method = 'GET', body, headers = {}, signal, raw = false, token } = {}) {
  const h = { Authorization: 'Bearer ' + (token ?? session.token() ?? ''), ...headers };
  if (body !== undefined && typeof body !== 'string') {
    body = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  const res = await fetch(target, { method, headers: h, body, signal, cache: 'no-store', credentials: 'omit',
                                    redirect: 'error', referrerPolicy: 'no-referrer' });
  if (res.status === 401 && token === undefined) unauthorizedHandler();
  if (!res.ok) throw await errorOf(res);
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

// A function's log records for a query (JSON lines), with how many were left out.
export async function logRecords(name, params, signal) {
  const res = await api(path('functions', name, 'logs') + query(params), { raw: true, signal });
  const text = await res.text();
  const records = text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  return { records, leftOut: Number(res.headers.get('X-Funcd-Records-Left-Out') || 0) };
}

// Runs `fn` over `items` with at most `width` calls in flight; results in order.
export async function mapLimited(items, width, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}
