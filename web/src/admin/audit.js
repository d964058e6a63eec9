// The audit log (Owner at /): GET /audit with filters, newest first, paged
// with the "next" cursor.

import { get } from '../api.js';
import { field, h } from '../dom.js';
import { messageLine, page, replace, table } from './common.js';

const FILTERS = [
  ['principal', 'Principal', 'user:alice'],
  ['action', 'Action', 'connect, auth.login, session.end, …'],
  ['target', 'Target', '/groups/g/vms/web1'],
  ['result', 'Result', 'Created, failure, …'],
  ['since', 'Since', '2025-01-31T12:00:00Z'],
  ['until', 'Until', '2025-02-01T00:00:00Z'],
];

function toUnix(v) {
  // datetime-local inputs give local time without a zone: send unix seconds.
  const t = Date.parse(v);
  return Number.isFinite(t) ? String(Math.floor(t / 1000)) : v;
}

export function renderAudit(root) {
  const controller = new AbortController();
  const msg = messageLine('audit-msg');
  const holder = h('div', { id: 'audit-holder' });
  const inputs = {};
  const fields = FILTERS.map(([key, label, ph]) => {
    const type = key === 'since' || key === 'until' ? 'datetime-local' : 'text';
    inputs[key] = h('input', { id: `audit-${key}`, name: key, type, placeholder: ph, spellcheck: 'false', autocomplete: 'off' });
    return field(label, inputs[key]);
  });
  const form = h('form', { id: 'audit-filter', class: 'filter-grid', 'aria-label': 'Filters' }, fields,
    h('div', { class: 'actions' }, h('button', { id: 'audit-apply', type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { id: 'audit-reset', type: 'reset' }, 'Clear')));
  const more = h('button', { id: 'audit-more', type: 'button', hidden: true }, 'Load more');
  page(root, 'Audit log', form, msg.el, holder, h('div', { class: 'actions' }, more));

  let rows = [];
  let next = null;
  let params = null;

  function render() {
    replace(holder, table('audit-table', 'Audit records', [
      ['Time', (r) => h('time', { datetime: r.time }, new Date(r.ts * 1000).toLocaleString())],
      ['Principal', (r) => r.principal],
      ['Action', (r) => r.action],
      ['Target', (r) => h('code', null, r.target || '')],
      ['Result', (r) => r.result],
      ['Detail', (r) => h('code', { class: 'detail' }, r.detail ? JSON.stringify(r.detail) : '')],
    ], rows, 'No records match.'));
    more.hidden = !next;
  }

  async function load(append) {
    msg.clear();
    try {
      const q = new URLSearchParams(params);
      if (append && next) q.set('cursor', next);
      const data = await get(`/audit?${q}`, { signal: controller.signal });
      const got = (data && data.value) || [];
      rows = append ? rows.concat(got) : got;
      next = data && data.next ? data.next : null;
      render();
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    params = new URLSearchParams({ limit: '100' });
    for (const [key] of FILTERS) {
      const v = inputs[key].value.trim();
      if (v) params.set(key, key === 'since' || key === 'until' ? toUnix(v) : v);
    }
    load(false);
  });
  form.addEventListener('reset', () => setTimeout(() => form.requestSubmit(), 0));
  more.addEventListener('click', () => load(true));
  params = new URLSearchParams({ limit: '100' });
  load(false);
  return () => controller.abort();
}
