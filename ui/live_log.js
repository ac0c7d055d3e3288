// The function's log as it is written (GET .../logs?follow=true).
import { el, fill, section, errorBox, button } from './dom.js';
import { followLog, logLine, notice } from './logs.js';

// Lines kept on screen; older ones are dropped from the top.
const MAX_LINES = 1000;

export async function renderLiveLog(holder, page, name) {
  const box = el('div', { class: 'log', id: 'live-log' }, notice('Not following.'));
  const level = el('select', { id: 'live-level' },
    ['', 'DEBUG', 'INFO', 'WARN', 'ERROR'].map((l) => el('option', { value: l }, l === '' ? 'every level' : l + ' and above')));
  let controller = null;
  const start = button('Follow', () => (controller ? stop() : follow()), { id: 'live-toggle' });
  const clear = button('Clear', () => fill(box), { class: 'secondary' });

  function add(node) {
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.append(node);
    while (box.childNodes.length > MAX_LINES) box.firstChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
  }
  function stop() {
    if (controller) controller.abort();
    controller = null;
    fill(start, 'Follow');
    level.disabled = false;
  }
  async function follow() {
    controller = new AbortController();
    const mine = controller;
    // Leaving the page ends the stream too.
    page.signal.addEventListener('abort', () => mine.abort());
    fill(start, 'Stop');
    level.disabled = true;
    add(notice('Connecting…'));
    try {
      await followLog(name, { level: level.value }, mine.signal, {
        onOpen: () => add(notice('Following: new lines appear as they are written.')),
        onRecord: (rec) => add(logLine(rec)),
        onDropped: (n) => add(notice(`${n} records skipped: this page read more slowly than the function logged`)),
        onEnd: (reason) => add(notice('The daemon ended the stream (' + reason + ').')),
      });
    } catch (err) {
      if (err.name !== 'AbortError') add(errorBox(err));
    }
    if (controller === mine) stop();
  }
  page.onLeave(stop);
  fill(holder, section('Live log', el('div', { class: 'row' }, level, start, clear), box));
}
