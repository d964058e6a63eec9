// Resource groups and their resources: list, create, edit, delete. What the
// API refuses is shown as it says it (the message names the field).
//   #/admin/resources            the groups
//   #/admin/resources?group=g    one group's resources

import { del, get, getAll, lastSegment, put, seg } from '../api.js';
import { field, h } from '../dom.js';
import { can } from '../state.js';
import { button, confirmDialog, lines, messageLine, page, replace, table } from './common.js';

const TYPES = {
  networks: {
    label: 'Networks', one: 'network',
    summary: (r) => (r.address_prefixes || []).join(', '),
    fields: [['address_prefixes', 'Address prefixes', 'lines', 'One CIDR per line, e.g. 10.1.0.0/16']],
  },
  nics: {
    label: 'Network interfaces', one: 'network interface',
    summary: (r) => `${r.private_ip || ''} in ${lastSegment(r.network)}`,
    fields: [['network', 'Network (ID)', 'ref:networks'], ['private_ip', 'Private IP', 'text']],
  },
  vms: {
    label: 'Virtual machines', one: 'virtual machine',
    summary: (r) => `${lastSegment(r.nic)}, port ${r.ssh_port || 22}${(r.host_keys || []).length ? `, ${r.host_keys.length} host key(s)` : ''}`,
    fields: [['nic', 'Network interface (ID)', 'ref:nics'], ['ssh_port', 'SSH port', 'number', '1–65535, default 22'],
      ['host_keys', 'Pinned host keys', 'lines', 'Optional: known_hosts lines, one per line. Without them the first key seen is recorded.']],
  },
  bastions: {
    label: 'Bastions', one: 'bastion',
    summary: (r) => (r.networks || []).map(lastSegment).join(', '),
    fields: [['networks', 'Networks it serves (IDs)', 'lines', 'One network ID per line, e.g. /groups/g/networks/n1']],
  },
  vaults: {
    label: 'Vaults', one: 'vault',
    summary: (r) => `soft delete ${r.soft_delete_retention_days || 7} days`,
    fields: [['soft_delete_retention_days', 'Soft-delete retention (days)', 'number', '7–90, default 7']],
  },
};

export function renderResources(root, query) {
  const group = query && query.get('group');
  return group ? renderGroup(root, group) : renderGroups(root);
}

function renderGroups(root) {
  const controller = new AbortController();
  const msg = messageLine('groups-msg');
  const holder = h('div', { id: 'groups-holder' });
  const name = h('input', { id: 'group-new-name', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' });
  const form = h('form', { id: 'group-form', class: 'inline-form', 'aria-label': 'New resource group' },
    field('Name', name, 'Letters, digits, ".", "_" and "-"; up to 64.'), h('div', { class: 'actions' }, h('button', { id: 'group-create', type: 'submit', class: 'primary' }, 'Create group')));
  page(root, 'Resource groups', msg.el, holder, can('Contributor', '/') ? [h('h2', null, 'New resource group'), form] : null);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    try {
      await put(`/groups/${seg(name.value.trim())}`, {});
      msg.ok(`Created the group ${name.value.trim()}.`);
      form.reset();
      load();
    } catch (err) {
      msg.fail(err);
    }
  });

  async function remove(g) {
    if (!(await confirmDialog(`Delete the resource group ${g}?`))) return;
    try {
      await del(`/groups/${seg(g)}`);
      msg.ok(`Deleted the group ${g}.`);
    } catch (err) {
      msg.fail(err);
    }
    load();
  }

  async function load() {
    try {
      const groups = (await getAll('/groups', { signal: controller.signal })).map((g) => g.name || lastSegment(g.id));
      replace(holder, table('groups-table', 'Resource groups', [
        ['Name', (g) => h('a', { href: `#/admin/resources?group=${encodeURIComponent(g)}` }, g)],
        ['', (g) => (can('Contributor', `/groups/${g}`) ? button('Delete', () => remove(g), { class: 'small danger', 'aria-label': `Delete group ${g}` }) : '')],
      ], groups, 'There are no resource groups you can read.'));
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  }
  load();
  return () => controller.abort();
}

function renderGroup(root, group) {
  const controller = new AbortController();
  const msg = messageLine('resources-msg');
  const editor = h('div', { id: 'resource-editor' });
  const sections = {};
  const writable = can('Contributor', `/groups/${group}`);
  const refs = { networks: [], nics: [] };
  page(root, `Resource group ${group}`,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/admin/resources' }, 'Resource groups'), ' / ', group),
    msg.el, editor,
    Object.entries(TYPES).map(([type, t]) => {
      sections[type] = h('div', { id: `resources-${type}` });
      return h('section', { class: 'subsection' },
        h('div', { class: 'card-head' }, h('h2', null, t.label),
          writable ? button(`Add ${t.one}`, () => edit(type, null), { id: `add-${type}` }) : null),
        sections[type]);
    }));

  function edit(type, res) {
    const t = TYPES[type];
    msg.clear();
    const nameIn = h('input', { id: 'res-name', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', value: res ? res.name : '', readonly: !!res });
    const inputs = {};
    const fieldEls = t.fields.map(([key, label, kind, hint]) => {
      const id = `res-${key}`;
      let el;
      const v = res ? res[key] : undefined;
      if (kind === 'lines') {
        el = h('textarea', { id, rows: '3', spellcheck: 'false' });
        el.value = Array.isArray(v) ? v.join('\n') : '';
      } else if (kind.startsWith('ref:')) {
        const listId = `${id}-list`;
        el = h('input', { id, type: 'text', list: listId, autocomplete: 'off', spellcheck: 'false', value: v || '' });
        inputs[key] = { el, kind };
        return h('div', null, field(label, el, hint),
          h('datalist', { id: listId }, (refs[kind.slice(4)] || []).map((r) => h('option', { value: r }))));
      } else {
        el = h('input', { id, type: kind === 'number' ? 'number' : 'text', autocomplete: 'off', spellcheck: 'false', value: v == null ? '' : String(v) });
      }
      inputs[key] = { el, kind };
      return field(label, el, hint);
    });
    const save = h('button', { id: 'res-save', type: 'submit', class: 'primary' }, res ? 'Save' : 'Create');
    const cancel = button('Cancel', () => replace(editor), { id: 'res-cancel' });
    const err = h('p', { id: 'res-error', class: 'error', role: 'alert' });
    const form = h('form', { id: 'resource-form', class: 'stack bordered', 'aria-labelledby': 'res-form-title' },
      h('h2', { id: 'res-form-title' }, res ? `Edit ${t.one} ${res.name}` : `New ${t.one} in ${group}`),
      field('Name', nameIn), fieldEls, err, h('div', { class: 'actions' }, save, cancel));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      const body = {};
      for (const [key, { el, kind }] of Object.entries(inputs)) {
        const raw = el.value.trim();
        if (kind === 'lines') body[key] = lines(el.value);
        else if (kind === 'number') {
          if (raw !== '') body[key] = Number(raw);
        } else if (raw !== '') body[key] = raw;
      }
      const rname = nameIn.value.trim();
      try {
        await put(`/groups/${seg(group)}/${type}/${seg(rname)}`, body);
        replace(editor);
        msg.ok(`${res ? 'Saved' : 'Created'} ${t.one} ${rname}.`);
        load();
      } catch (e) {
        err.textContent = e.message;
        if (e.code) err.dataset.code = e.code;
      }
    });
    replace(editor, form);
    (res ? fieldEls[0].querySelector('input, textarea') : nameIn).focus();
  }

  async function remove(type, r) {
    if (!(await confirmDialog(`Delete the ${TYPES[type].one} ${r.name}?`))) return;
    try {
      await del(`/groups/${seg(group)}/${type}/${seg(r.name)}`);
      msg.ok(`Deleted ${TYPES[type].one} ${r.name}.`);
    } catch (err) {
      msg.fail(err);
    }
    load();
  }

  async function load() {
    await Promise.all(Object.entries(TYPES).map(async ([type, t]) => {
      try {
        const items = (await getAll(`/groups/${seg(group)}/${type}`, { signal: controller.signal }))
          .map((r) => ({ ...r, name: r.name || lastSegment(r.id) }));
        if (refs[type]) refs[type] = items.map((r) => r.id);
        replace(sections[type], table(`table-${type}`, t.label, [
          ['Name', (r) => r.name],
          ['Properties', (r) => t.summary(r)],
          ['', (r) => (writable ? h('div', { class: 'row-actions' },
            button('Edit', () => edit(type, r), { 'aria-label': `Edit ${r.name}` }),
            button('Delete', () => remove(type, r), { class: 'small danger', 'aria-label': `Delete ${r.name}` })) : '')],
        ], items, `No ${t.label.toLowerCase()}.`));
      } catch (err) {
        if (!controller.signal.aborted) replace(sections[type], h('p', { class: 'muted' }, err.message));
      }
    }));
  }
  get(`/groups/${seg(group)}`, { signal: controller.signal }).catch((err) => {
    if (!controller.signal.aborted) msg.fail(err);
  });
  load();
  return () => controller.abort();
}
