// Role assignments per scope: GET /role-assignments?scope=S lists those that
// bear on S (at it, above it and below it); PUT creates one with an id chosen
// here; DELETE removes one. The API decides who may do what (Owner on the
// scope) and its message is shown as is.

import { del, get, put, seg } from '../api.js';
import { field, h } from '../dom.js';
import { button, confirmDialog, messageLine, page, replace, table } from './common.js';

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

export function renderRoles(root, query) {
  const controller = new AbortController();
  const msg = messageLine('roles-msg');
  const holder = h('div', { id: 'roles-holder' });
  const scopeFilter = h('input', { id: 'roles-scope', type: 'text', value: (query && query.get('scope')) || '/', spellcheck: 'false', autocomplete: 'off' });
  const filter = h('form', { id: 'roles-filter', class: 'inline-form', 'aria-label': 'Scope' },
    field('Scope', scopeFilter, '"/", "/groups/g" or a resource ID: shows the assignments at, above and below it.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show')));

  const principal = h('input', { id: 'role-principal', type: 'text', required: true, placeholder: 'user:alice', spellcheck: 'false', autocomplete: 'off' });
  const role = h('select', { id: 'role-role' }, ['Reader', 'Contributor', 'Owner', 'Auditor'].map((r) => h('option', { value: r }, r)));
  const scope = h('input', { id: 'role-scope', type: 'text', required: true, spellcheck: 'false', autocomplete: 'off', value: scopeFilter.value });
  const form = h('form', { id: 'role-form', class: 'inline-form', 'aria-label': 'New role assignment' },
    field('Principal', principal, 'user:NAME'), field('Role', role), field('Scope', scope),
    h('div', { class: 'actions' }, h('button', { id: 'role-create', type: 'submit', class: 'primary' }, 'Assign')));

  page(root, 'Role assignments', filter, msg.el, holder, h('h2', null, 'Assign a role'), form);

  filter.addEventListener('submit', (ev) => {
    ev.preventDefault();
    scope.value = scopeFilter.value.trim();
    load();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    const body = { principal: principal.value.trim(), role: role.value, scope: scope.value.trim() };
    try {
      await put(`/role-assignments/${seg(newId())}`, body);
      msg.ok(`Assigned ${body.role} on ${body.scope} to ${body.principal}.`);
      principal.value = '';
      load();
    } catch (err) {
      msg.fail(err);
    }
  });

  async function remove(a) {
    if (!(await confirmDialog(`Remove ${a.role} on ${a.scope} from ${a.principal}?`, 'Remove'))) return;
    try {
      await del(`/role-assignments/${seg(a.name)}`);
      msg.ok(`Removed ${a.role} on ${a.scope} from ${a.principal}.`);
    } catch (err) {
      msg.fail(err);
    }
    load();
  }

  async function load() {
    try {
      const s = scopeFilter.value.trim();
      const data = await get(`/role-assignments${s ? `?scope=${encodeURIComponent(s)}` : ''}`, { signal: controller.signal });
      replace(holder, table('roles-table', 'Role assignments', [
        ['Principal', (a) => a.principal],
        ['Role', (a) => a.role],
        ['Scope', (a) => h('code', null, a.scope)],
        ['ID', (a) => h('span', { class: 'muted small-text' }, a.name)],
        ['', (a) => button('Remove', () => remove(a), { class: 'small danger', 'aria-label': `Remove ${a.role} on ${a.scope} from ${a.principal}` })],
      ], (data && data.value) || [], 'No role assignments bear on this scope that you can see.'));
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  }
  load();
  return () => controller.abort();
}
