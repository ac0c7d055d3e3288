// The function's settings as deployed, and its concurrency, which changes in place.
import { api, path } from './api.js';
import { el, fill, section, errorBox, button } from './dom.js';
import * as f from './format.js';

function row(k, v) { return el('tr', null, el('th', null, k), el('td', null, v)); }

export async function renderSettings(holder, page, fn, onChange) {
  const env = Object.entries(fn.env || {});
  const settings = el('table', { class: 'grid' }, el('tbody', null,
    row('Runtime', fn.runtime), row('Handler', el('code', null, fn.handler)),
    row('Memory', fn.memory_mb + ' MB'), row('Timeout', fn.timeout_s + ' s'),
    row('Ephemeral storage', fn.ephemeral_storage_mb + ' MB'),
    row('Keep-alive', `${fn.keep_alive_s} s (${fn.keep_alive})`), row('Network', fn.network),
    row('Log format', fn.log_format + (fn.application_log_level ? ` (application ${fn.application_log_level}, system ${fn.system_log_level})` : '')),
    row('URL auth', fn.url_auth ?? 'token'), row('Invoke mode', fn.invoke_mode ?? 'BUFFERED'),
    row('Layers', fn.layers.length ? fn.layers.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join(', ') : 'none'),
    row('Code', el('span', { class: 'mono' }, `${fn.code_sha256.slice(0, 16)}… (${f.count(fn.code_size)} bytes)`)),
    row('Versions', fn.versions.join(', ') || '–'),
    row('Aliases', Object.keys(fn.aliases).join(', ') || 'none'),
    row('Environment', env.length === 0 ? 'none' : el('details', null,
      el('summary', null, env.map(([k]) => k).join(', ')),
      el('table', { class: 'grid' }, el('tbody', null, env.map(([k, v]) => row(k, el('code', null, v)))))))));

  const reserved = el('input', { type: 'number', min: 0, id: 'reserved', placeholder: 'unreserved' });
  reserved.value = fn.reserved_concurrency === null ? '' : String(fn.reserved_concurrency);
  const provisioned = el('input', { type: 'number', min: 0, id: 'provisioned' });
  provisioned.value = String(fn.provisioned_concurrency);
  const result = el('span');
  const save = button('Save concurrency', async () => {
    save.disabled = true;
    fill(result);
    try {
      const body = {
        reserved_concurrency: reserved.value === '' ? null : Number(reserved.value),
        provisioned_concurrency: provisioned.value === '' ? 0 : Number(provisioned.value),
      };
      const doc = await api(path('functions', fn.name, 'concurrency'), { method: 'PUT', body, signal: page.signal });
      fill(result, el('span', { class: 'good' }, `Saved: reserved ${doc.reserved_concurrency ?? 'unreserved'}, provisioned ${doc.provisioned_concurrency}.`));
      onChange();
    } catch (err) {
      if (err.name !== 'AbortError') fill(result, errorBox(err));
    } finally {
      save.disabled = false;
    }
  }, { id: 'save-concurrency' });

  fill(holder, section('Settings', settings,
    el('h3', null, 'Concurrency'),
    el('p', { class: 'muted' }, 'Reserved and provisioned concurrency change in place: no new version, no restart. Leave reserved empty for none.'),
    el('div', { class: 'row' }, el('label', null, 'Reserved ', reserved), el('label', null, 'Provisioned ', provisioned), save, result),
    el('p', { class: 'muted' }, 'Other settings change with a deploy (PUT /v1/functions/' + fn.name + ').')));
}
