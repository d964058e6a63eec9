// Shared pieces of the administration pages: a page card, tables, a
// confirmation dialog, and error/success lines that screen readers announce.

import { ApiError } from '../api.js';
import { clear, h } from '../dom.js';

export function page(root, titleText, ...children) {
  document.title = `${titleText} · bastion`;
  const title = h('h1', { tabindex: '-1' }, titleText);
  const card = h('section', { class: 'card admin' }, title, ...children);
  root.appendChild(card);
  title.focus();
  return card;
}

// A line for messages: msg.ok('Saved'), msg.fail(err), msg.clear().
export function messageLine(id) {
  const el = h('p', { id, class: 'msg', role: 'status', 'aria-live': 'polite' });
  return {
    el,
    ok(text) {
      el.className = 'msg success';
      el.textContent = text;
    },
    fail(err) {
      el.className = 'msg error';
      el.setAttribute('role', 'alert');
      el.textContent = err instanceof ApiError ? `${err.message}${err.code && err.status ? ` (${err.code})` : ''}` : String((err && err.message) || err);
      if (err instanceof ApiError) el.dataset.code = err.code;
    },
    clear() {
      el.className = 'msg';
      el.textContent = '';
      delete el.dataset.code;
    },
  };
}

// columns: [[header, (row) => node|string], ...]
export function table(id, caption, columns, rows, empty = 'Nothing to show.') {
  if (!rows.length) return h('p', { id, class: 'muted' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id, class: 'vm-table data-table' },
      h('caption', { class: 'sr-only' }, caption),
      h('thead', null, h('tr', null, columns.map(([head]) => h('th', { scope: 'col' }, head)))),
      h(
        'tbody',
        null,
        rows.map((r) => h('tr', null, columns.map(([head, cell], i) => {
          const v = cell(r);
          return i === 0 ? h('th', { scope: 'row' }, v) : h('td', { 'data-label': head }, v);
        }))),
      ),
    ),
  );
}

export function button(label, onClick, attrs = {}) {
  const b = h('button', { type: 'button', class: 'small', ...attrs }, label);
  b.addEventListener('click', onClick);
  return b;
}

// A modal confirmation (<dialog>): resolves true on "confirm".
export function confirmDialog(text, confirmLabel = 'Delete') {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'button', class: 'primary danger', id: 'confirm-ok' }, confirmLabel);
    const cancel = h('button', { type: 'button', id: 'confirm-cancel' }, 'Cancel');
    const dlg = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-text' },
      h('p', { id: 'confirm-text' }, text), h('div', { class: 'actions' }, ok, cancel));
    document.body.appendChild(dlg);
    const back = document.activeElement;
    const done = (v) => {
      dlg.close();
      dlg.remove();
      if (back && back.focus) back.focus();
      resolve(v);
    };
    ok.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      done(false);
    });
    dlg.showModal();
    cancel.focus();
  });
}

export function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts * 1000);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleString());
}

export function replace(el, ...children) {
  clear(el);
  for (const c of children) if (c) el.appendChild(c);
}

export function lines(text) {
  return String(text || '').split(/[\n,]+/).map((s) => s.trim()).filter(Boolean);
}
