// The audit log (Owner at /): GET /audit with filters, newest first, paged
// with the "next" cursor.

import { get } from '../api.js';
import { field, h } from '../dom.js';
import { messageLine, page, replace } from './common.js';

const FILTERS = [
  ['principal', 'Principal', 'user:alice'],
  ['action', 'Action', 'connect, auth.login, session.end, …'],
  ['target', 'Target', '/groups/g/vms/web1'],
  ['result', 'Result', 'Created, failure, …'],
  ['since', 'Since', '2025-01-31T12:00:00Z'],
  ['until', 'Until', '2025-02-01T00:00:00Z'],
];

// A record's detail as "key value" pairs that wrap across the whole width
// of the table, under the record (raw JSON in a narrow column made rows
// 200 px tall). Nested values stay JSON.
function detailPairs(detail) {
  if (!detail || typeof detail !== 'object') return detail == null ? [] : [h('span', { class: 'kv' }, String(detail))];
  return Object.entries(detail).map(([k, v]) => h('span', { class: 'kv' },
    h('span', { class: 'k' }, k), ' ', h('span', { class: 'v' }, typeof v === 'string' ? v : JSON.stringify(v))));
}

function auditTable(rows) {
  if (!rows.length) return h('p', { id: 'audit-table', class: 'muted' }, 'No records match.');
  const heads = ['Time', 'Principal', 'Action', 'Target', 'Result'];
  const body = [];
  for (const r of rows) {
    const pairs = detailPairs(r.detail);
    body.push(h('tr', { class: pairs.length ? 'audit-rec has-detail' : 'audit-rec' },
      h('th', { scope: 'row' }, h('time', { datetime: r.time }, new Date(r.ts * 1000).toLocaleString())),
      h('td', { 'data-label': 'Principal' }, r.principal),
      h('td', { 'data-label': 'Action' }, r.action),
      h('td', { 'data-label': 'Target' }, h('code', null, r.target || '')),
      h('td', { 'data-label': 'Result' }, r.result)));
    if (pairs.length) {
      body.push(h('tr', { class: 'audit-detail' }, h('td', { colspan: String(heads.length), 'data-label': 'Detail' }, pairs)));
    }
  }
  return h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table', class: 'vm-table data-table audit-table' },
    h('caption', { class: 'sr-only' }, 'Audit records, each followed by its detail'),
    h('thead', null, h('tr', null, heads.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, body)));
}

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
    replace(holder, auditTable(rows));
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
