// Vaults with their secrets and access policies.
//   #/admin/vaults                 the vaults the user may read
//   #/admin/vaults?vault=/groups/g/vaults/v
// Secrets need the user's own access policy (list/set/delete); policies need
// Reader on the vault to read and Owner to change. Secret values are never
// shown here: setting one is write-only.

import { del, get, getAll, idPath, lastSegment, put, seg } from '../api.js';
import { field, h } from '../dom.js';
import { listGroups, listVaults } from '../inventory.js';
import { can } from '../state.js';
import { button, confirmDialog, messageLine, page, replace, table, when } from './common.js';

const PERMS = ['list', 'get', 'set', 'delete', 'use'];

export function renderVaults(root, query) {
  const vault = query && query.get('vault');
  return vault ? renderVault(root, vault) : renderVaultList(root);
}

function renderVaultList(root) {
  const controller = new AbortController();
  const msg = messageLine('vaults-msg');
  const holder = h('div', { id: 'vaults-holder' });
  page(root, 'Vaults', h('p', { class: 'muted' }, 'Vaults store SSH private keys as secrets. Create vaults under Resources.'), msg.el, holder);
  (async () => {
    try {
      const vaults = await listVaults(await listGroups(controller.signal), controller.signal);
      replace(holder, table('vaults-table', 'Vaults', [
        ['Name', (v) => h('a', { href: `#/admin/vaults?vault=${encodeURIComponent(v.id)}` }, v.name)],
        ['Group', (v) => v.group],
        ['Soft-delete retention', (v) => `${v.soft_delete_retention_days || 7} days`],
      ], vaults, 'There are no vaults you can read.'));
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  })();
  return () => controller.abort();
}

function renderVault(root, vaultId) {
  const controller = new AbortController();
  const signal = controller.signal;
  let base;
  try {
    base = idPath(vaultId);
  } catch (err) {
    page(root, 'Vault', h('p', { class: 'error' }, err.message));
    return () => {};
  }
  const name = lastSegment(vaultId);
  const owner = can('Owner', vaultId);
  const msg = messageLine('vault-msg');
  const secretsHolder = h('div', { id: 'secrets-holder' });
  const policiesHolder = h('div', { id: 'policies-holder' });

  const sName = h('input', { id: 'secret-name', type: 'text', required: true, spellcheck: 'false', autocomplete: 'off' });
  const sValue = h('textarea', { id: 'secret-value', rows: '5', required: true, spellcheck: 'false', autocomplete: 'off', placeholder: '-----BEGIN OPENSSH PRIVATE KEY-----' });
  const secretForm = h('form', { id: 'secret-form', class: 'stack', 'aria-label': 'Set a secret' },
    field('Secret name', sName), field('Value', sValue, 'Setting a secret adds a new version. Values are never shown again.'),
    h('div', { class: 'actions' }, h('button', { id: 'secret-save', type: 'submit', class: 'primary' }, 'Set secret')));

  const pPrincipal = h('input', { id: 'policy-principal', type: 'text', required: true, placeholder: 'user:alice', spellcheck: 'false', autocomplete: 'off' });
  const boxes = PERMS.map((p) => h('input', { type: 'checkbox', id: `policy-${p}`, value: p }));
  const policyForm = h('form', { id: 'policy-form', class: 'stack', 'aria-label': 'Set an access policy' },
    field('Principal', pPrincipal),
    h('fieldset', { class: 'checks' }, h('legend', null, 'Secret permissions'),
      boxes.map((b) => h('span', { class: 'check' }, b, h('label', { for: b.id }, b.value)))),
    h('div', { class: 'actions' }, h('button', { id: 'policy-save', type: 'submit', class: 'primary' }, 'Save policy')));

  page(root, `Vault ${name}`,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/admin/vaults' }, 'Vaults'), ' / ', h('code', null, vaultId)),
    msg.el,
    h('section', { class: 'subsection' }, h('h2', null, 'Secrets'), secretsHolder, h('h3', null, 'Set a secret'), secretForm),
    h('section', { class: 'subsection' }, h('h2', null, 'Access policies'), policiesHolder,
      owner ? [h('h3', null, 'Set an access policy'), policyForm] : h('p', { class: 'muted' }, 'Only an Owner of the vault can change its access policies.')));

  secretForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    const body = { value: sValue.value };
    try {
      await put(`${base}/secrets/${seg(sName.value.trim())}`, body);
      msg.ok(`Saved the secret ${sName.value.trim()}.`);
      secretForm.reset();
      loadSecrets();
    } catch (err) {
      msg.fail(err);
    } finally {
      body.value = '';
      sValue.value = '';
    }
  });

  policyForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    const p = pPrincipal.value.trim();
    try {
      await put(`${base}/access-policies/${seg(p)}`, { secret_permissions: boxes.filter((b) => b.checked).map((b) => b.value) });
      msg.ok(`Saved the access policy of ${p}.`);
      policyForm.reset();
      loadPolicies();
    } catch (err) {
      msg.fail(err);
    }
  });

  async function deleteSecret(s) {
    if (!(await confirmDialog(`Delete the secret ${s.name}? It can be recovered for the vault's retention days.`))) return;
    try {
      await del(`${base}/secrets/${seg(s.name)}`);
      msg.ok(`Deleted the secret ${s.name}.`);
    } catch (err) {
      msg.fail(err);
    }
    loadSecrets();
  }

  async function deletePolicy(p) {
    if (!(await confirmDialog(`Remove the access policy of ${p.principal}?`, 'Remove'))) return;
    try {
      await del(`${base}/access-policies/${seg(p.principal)}`);
      msg.ok(`Removed the access policy of ${p.principal}.`);
    } catch (err) {
      msg.fail(err);
    }
    loadPolicies();
  }

  function editPolicy(p) {
    pPrincipal.value = p.principal;
    for (const b of boxes) b.checked = (p.secret_permissions || []).includes(b.value);
    pPrincipal.focus();
  }

  async function loadSecrets() {
    try {
      const items = await getAll(`${base}/secrets`, { signal });
      replace(secretsHolder, table('secrets-table', 'Secrets', [
        ['Name', (s) => s.name],
        ['Versions', (s) => String(s.versions || 1)],
        ['Updated', (s) => when(s.updated_at)],
        ['', (s) => button('Delete', () => deleteSecret(s), { class: 'small danger', 'aria-label': `Delete secret ${s.name}` })],
      ], items, 'No secrets.'));
    } catch (err) {
      if (!signal.aborted) replace(secretsHolder, h('p', { class: 'muted', id: 'secrets-denied' }, `The secrets cannot be listed: ${err.message}`));
    }
  }

  async function loadPolicies() {
    try {
      const data = await get(`${base}/access-policies`, { signal });
      replace(policiesHolder, table('policies-table', 'Access policies', [
        ['Principal', (p) => p.principal],
        ['Secret permissions', (p) => (p.secret_permissions || []).join(', ') || 'none'],
        ['', (p) => (owner ? h('div', { class: 'row-actions' },
          button('Edit', () => editPolicy(p), { 'aria-label': `Edit the policy of ${p.principal}` }),
          button('Remove', () => deletePolicy(p), { class: 'small danger', 'aria-label': `Remove the policy of ${p.principal}` })) : '')],
      ], (data && data.value) || [], 'No access policies.'));
    } catch (err) {
      if (!signal.aborted) replace(policiesHolder, h('p', { class: 'muted' }, err.message));
    }
  }
  loadSecrets();
  loadPolicies();
  return () => controller.abort();
}
