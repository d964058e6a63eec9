// Users (Owner at /): list, create, set a password, disable/enable, delete.

import { del, get, put, seg } from '../api.js';
import { field, h } from '../dom.js';
import { state } from '../state.js';
import { button, confirmDialog, messageLine, page, replace, table, when } from './common.js';

export function renderUsers(root) {
  const controller = new AbortController();
  const msg = messageLine('users-msg');
  const holder = h('div', { id: 'users-holder' });

  const name = h('input', { id: 'user-new-name', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}' });
  const pw = h('input', { id: 'user-new-password', type: 'password', required: true, autocomplete: 'new-password' });
  const create = h('button', { id: 'user-create', type: 'submit', class: 'primary' }, 'Create user');
  const form = h('form', { id: 'user-form', class: 'inline-form', 'aria-label': 'New user' },
    field('User name', name), field('Password', pw, 'At least 12 characters.'), h('div', { class: 'actions' }, create));

  page(root, 'Users', msg.el, holder, h('h2', null, 'New user'), form);

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    const body = { password: pw.value };
    try {
      await put(`/users/${seg(name.value.trim())}`, body);
      msg.ok(`Created ${name.value.trim()}.`);
      form.reset();
      load();
    } catch (err) {
      msg.fail(err);
    } finally {
      body.password = '';
      pw.value = '';
    }
  });

  async function setPassword(u) {
    const input = h('input', { id: 'user-reset-password', type: 'password', autocomplete: 'new-password', required: true });
    const save = h('button', { type: 'submit', class: 'primary small' }, 'Set password');
    const cancel = button('Cancel', () => load());
    const f = h('form', { class: 'inline-form', 'aria-label': `New password for ${u.name}` },
      field(`New password for ${u.name}`, input, 'Ends the user\'s browser sessions and lifts a sign-in lock.'), h('div', { class: 'actions' }, save, cancel));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { password: input.value, disabled: !!u.disabled };
      try {
        await put(`/users/${seg(u.name)}`, body);
        msg.ok(`Set a new password for ${u.name}.`);
        load();
      } catch (err) {
        msg.fail(err);
      } finally {
        body.password = '';
        input.value = '';
      }
    });
    replace(holder, f);
    input.focus();
  }

  async function toggle(u) {
    try {
      await put(`/users/${seg(u.name)}`, { disabled: !u.disabled });
      msg.ok(`${u.disabled ? 'Enabled' : 'Disabled'} ${u.name}.`);
    } catch (err) {
      msg.fail(err);
    }
    load();
  }

  async function remove(u) {
    if (!(await confirmDialog(`Delete the user ${u.name}? Their sessions end and their role assignments are removed.`))) return;
    try {
      await del(`/users/${seg(u.name)}`);
      msg.ok(`Deleted ${u.name}.`);
    } catch (err) {
      msg.fail(err);
    }
    load();
  }

  async function load() {
    try {
      const data = await get('/users', { signal: controller.signal });
      const users = (data && data.value) || [];
      replace(holder, table('users-table', 'Users', [
        ['Name', (u) => u.name],
        ['Status', (u) => (u.disabled ? h('span', { class: 'badge off' }, 'disabled') : 'active')],
        ['Created', (u) => when(u.created_at)],
        ['', (u) => h('div', { class: 'row-actions' },
          button('Set password', () => setPassword(u), { 'aria-label': `Set password of ${u.name}` }),
          u.name === state.user.name ? null : button(u.disabled ? 'Enable' : 'Disable', () => toggle(u), { 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.name}` }),
          u.name === state.user.name ? null : button('Delete', () => remove(u), { class: 'small danger', 'aria-label': `Delete ${u.name}` }))],
      ], users));
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  }
  load();
  return () => controller.abort();
}
