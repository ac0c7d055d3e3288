// Building the page without HTML strings: every text that comes from the API (names,
// log lines, error messages, payloads) becomes a Text node, so markup in it is shown,
// never run. Nothing here parses HTML.

// el('a', {href: '#/x', class: 'c', on: {click: f}}, 'text', child, [more]).
// Attributes are set with setAttribute; `on` adds listeners. No inline styles or handlers:
// the page's policy refuses them.
export function el(tag, props, ...children) {
  const e = document.createElement(tag);
  setProps(e, props);
  append(e, children);
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function svg(tag, props, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  setProps(e, props);
  append(e, children);
  return e;
}

function setProps(e, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') {
      for (const [type, fn] of Object.entries(v)) e.addEventListener(type, fn);
    } else if (k === 'style' || k.startsWith('on')) {
      throw new Error('el: refusing attribute ' + k);
    } else if (k === 'value') {
      e.value = v;
    } else {
      e.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

export function append(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// Replaces an element's children.
export function fill(e, ...children) {
  e.replaceChildren();
  return append(e, children);
}

// A table: `columns` are [header, cell(row) -> node or text, class?]; rows may be empty.
export function table(columns, rows, { empty = 'None.', rowProps } = {}) {
  const head = el('thead', null, el('tr', null, columns.map(([h, , cls]) => el('th', { class: cls }, h))));
  const body = el('tbody');
  for (const row of rows)
    body.append(el('tr', rowProps ? rowProps(row) : null, columns.map(([, cell, cls]) => el('td', { class: cls }, cell(row)))));
  if (rows.length === 0) body.append(el('tr', null, el('td', { colspan: columns.length, class: 'muted' }, empty)));
  return el('table', { class: 'grid' }, head, body);
}

export function section(title, ...children) {
  return el('section', { class: 'panel' }, el('h2', null, title), children);
}

// An error shown where its data would have been.
export function errorBox(err) {
  const type = err && err.type ? err.type + ': ' : '';
  return el('p', { class: 'error', role: 'alert' }, type + (err && err.message ? err.message : String(err)));
}

export function button(label, onClick, props = {}) {
  return el('button', { type: 'button', ...props, on: { click: onClick } }, label);
}
