// The dashboard's entry point: sign-in, the hash router and the page lifecycle.
// Pages: #/ (functions), #/functions/<name>, #/usage.
import { api, ApiError, onUnauthorized, session } from './api.js';
import { el, fill, errorBox } from './dom.js';
import { renderFunctions } from './functions.js';
import { renderFunction } from './function.js';
import { renderUsage } from './usage.js';

const $ = (id) => document.getElementById(id);

// What a page holds while it is shown: leaving it aborts its requests and streams and
// clears its timers.
class Page {
  constructor() {
    this.controller = new AbortController();
    this.cleanups = [];
  }
  get signal() { return this.controller.signal; }
  get active() { return !this.controller.signal.aborted; }
  onLeave(fn) { this.cleanups.push(fn); }
  every(msValue, fn) {
    const id = setInterval(() => { if (document.visibilityState === 'visible') fn(); }, msValue);
    this.onLeave(() => clearInterval(id));
  }
  leave() {
    this.controller.abort();
    for (const fn of this.cleanups) fn();
    this.cleanups = [];
  }
}

let page = null;

function showBanner(text) {
  const b = $('banner');
  if (!text) { b.hidden = true; return; }
  fill(b, text);
  b.hidden = false;
}

function showLogin(message) {
  if (page) page.leave();
  page = null;
  fill($('view'));
  $('nav').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  $('login-error').textContent = '';
  try {
    // Checked against the API before it is kept.
    await api('/v1/functions', { token });
  } catch (err) {
    $('login-error').textContent = err instanceof ApiError && err.status === 401
      ? 'The daemon refused this token.' : 'Could not reach the API: ' + err.message;
    return;
  }
  session.signIn(token);
  $('token').value = '';
  route();
}

function signOut() {
  session.signOut();
  showLogin('Signed out.');
}

function route() {
  if (!session.token()) return showLogin();
  $('login').hidden = true;
  $('nav').hidden = false;
  showBanner('');
  if (page) page.leave();
  page = new Page();
  const view = $('view');
  fill(view);
  const hash = location.hash.replace(/^#/, '') || '/';
  const parts = hash.split('/').filter((p) => p !== '');
  let render;
  if (parts.length === 0 || (parts.length === 1 && parts[0] === 'functions')) render = () => renderFunctions(view, page);
  else if (parts.length === 2 && parts[0] === 'functions') render = () => renderFunction(view, page, decodeURIComponent(parts[1]));
  else if (parts.length === 1 && parts[0] === 'usage') render = () => renderUsage(view, page);
  else render = () => fill(view, el('p', { class: 'error' }, 'No such page: ' + hash));
  for (const a of document.querySelectorAll('#nav a'))
    a.classList.toggle('current', a.getAttribute('href') === '#/' + (parts[0] === 'usage' ? 'usage' : ''));
  Promise.resolve().then(render).catch((err) => {
    if (err && err.name === 'AbortError') return;
    fill(view, errorBox(err));
  });
}

onUnauthorized(() => {
  session.signOut();
  showLogin('The daemon no longer accepts this token; sign in again.');
});

// Anything that escapes a page's own handling is shown, not swallowed.
window.addEventListener('unhandledrejection', (e) => {
  if (e.reason && e.reason.name === 'AbortError') { e.preventDefault(); return; }
  showBanner('Error: ' + (e.reason && e.reason.message ? e.reason.message : String(e.reason)));
});
window.addEventListener('error', (e) => showBanner('Error: ' + e.message));

$('login-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', signOut);
window.addEventListener('hashchange', route);
route();
