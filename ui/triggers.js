// What invokes the function besides direct calls: its URL, routes, schedules, file
// triggers, and the settings of its asynchronous invocations.
import { api, path } from './api.js';
import { el, fill, section, table, errorBox } from './dom.js';
import * as f from './format.js';

async function part(title, load) {
  const holder = el('div', null, el('h3', null, title));
  try {
    holder.append(await load());
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    holder.append(errorBox(err));
  }
  return holder;
}

export async function renderTriggers(holder, page, fn) {
  const signal = page.signal;
  const name = fn.name;
  const url = location.origin + '/fn/' + encodeURIComponent(name);
  const parts = await Promise.all([
    part('Function URL', async () => el('p', null, el('code', null, url), ' · ',
      fn.url_auth === 'none' ? 'public (no token)' : 'needs the API token')),
    part('Routes', async () => {
      const doc = await api('/v1/routes', { signal });
      const mine = doc.routes.filter((r) => r.function === name);
      return table([['Method', (r) => r.method], ['Path', (r) => el('code', null, '/api' + r.path)]], mine,
                   { empty: 'No routes to this function.' });
    }),
    part('Schedules', async () => {
      const doc = await api(path('functions', name, 'schedules'), { signal });
      return table([
        ['Name', (s) => s.name], ['Expression', (s) => el('code', null, s.expression)],
        ['Enabled', (s) => (s.enabled ? 'yes' : 'no')], ['Next fire', (s) => f.time(s.next_fire)],
        ['Last fire', (s) => f.time(s.last_fire)],
      ], doc.schedules, { empty: 'No schedules.' });
    }),
    part('File triggers', async () => {
      const doc = await api(path('functions', name, 'file-triggers'), { signal });
      return table([
        ['Name', (t) => t.name], ['Directory', (t) => el('code', null, t.directory)],
        ['Patterns', (t) => (t.patterns.length ? t.patterns.join(', ') : 'every file')],
        ['Events', (t) => t.events.join(', ')], ['Output', (t) => t.output_directory ?? '–'],
      ], doc.file_triggers, { empty: 'No file triggers.' });
    }),
    part('Asynchronous invocations', async () => {
      const c = await api(path('functions', name, 'event-config'), { signal });
      const retries = c.maximum_retry_attempts === 0 ? 'No retries'
        : `${c.maximum_retry_attempts} ${c.maximum_retry_attempts === 1 ? 'retry' : 'retries'} after `
          + `${c.retry_delays_s.slice(0, c.maximum_retry_attempts).join(', ')} s`;
      return el('p', null, `${retries}; `
        + `events older than ${f.seconds(c.maximum_event_age_s)} are not attempted again; `
        + `on success → ${c.on_success ?? 'nothing'}, on failure → ${c.on_failure ?? 'a dead letter only'}.`);
    }),
  ]);
  fill(holder, section('Triggers', parts));
}
