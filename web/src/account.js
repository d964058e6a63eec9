// The user's own account: second factors (mfa.js), change the password
// (POST /auth/password), and the user's API tokens (GET /tokens, revoke =
// DELETE /tokens/{id}).

import { ApiError, del, get, post } from './api.js';
import { button, confirmDialog, messageLine, replace, table, when } from './admin/common.js';
import { field, h } from './dom.js';
import { duration } from './errors.js';
import { state } from './state.js';
import { renderMfaSection } from './mfa.js';

export function renderAccount(root) {
  document.title = 'Your account · bastion';
  const current = h('input', { id: 'pw-current', type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { id: 'pw-new', type: 'password', autocomplete: 'new-password', required: true, minlength: '12' });
  const again = h('input', { id: 'pw-again', type: 'password', autocomplete: 'new-password', required: true });
  const error = h('p', { id: 'pw-error', class: 'error', role: 'alert' });
  const done = h('p', { id: 'pw-done', class: 'success', role: 'status' });
  const submit = h('button', { id: 'pw-submit', type: 'submit', class: 'primary' }, 'Change password');
  const form = h(
    'form',
    { id: 'pw-form', class: 'stack', 'aria-labelledby': 'pw-title' },
    field('Current password', current),
    field('New password', next, 'At least 12 characters. Your other browser sessions, your API tokens and your open terminals will be ended.'),
    field('New password again', again),
    error,
    done,
    h('div', { class: 'actions' }, submit),
  );
  const title = h('h1', { tabindex: '-1' }, 'Your account');
  const tokensMsg = messageLine('tokens-msg');
  const tokensHolder = h('div', { id: 'tokens-holder' });
  root.appendChild(
    h(
      'section',
      { class: 'card narrow' },
      title,
      h('p', null, 'Signed in as ', h('strong', null, state.user.name), '.'),
      renderMfaSection({ required: !!state.mfaEnrollmentRequired }),
      h('h2', { id: 'pw-title' }, 'Change password'),
      form,
      h('h2', { id: 'tokens-title' }, 'API tokens'),
      h('p', { class: 'muted' }, 'Tokens that scripts and the command-line client (bastion login) use as you. A token is shown only when it is made; revoke one you no longer use.'),
      tokensMsg.el,
      tokensHolder,
    ),
  );
  title.focus();
  const controller = new AbortController();

  async function revoke(t) {
    const what = t.name ? `"${t.name}" (${t.id})` : t.id;
    if (!(await confirmDialog(`Revoke the API token ${what}? Whatever uses it stops working.`, 'Revoke'))) return;
    try {
      await del(`/tokens/${encodeURIComponent(t.id)}`);
      tokensMsg.ok(`Revoked the API token ${what}.`);
    } catch (err) {
      tokensMsg.fail(err);
    }
    loadTokens();
  }

  async function loadTokens() {
    try {
      const data = await get('/tokens', { signal: controller.signal });
      const rows = (data && data.value) || [];
      replace(tokensHolder, table('tokens-table', 'Your API tokens', [
        ['ID', (t) => h('code', null, t.id)],
        ['Name', (t) => t.name || '—'],
        ['Scope', (t) => t.scope],
        ['Created', (t) => when(t.created_at)],
        ['Last used', (t) => when(t.last_used_at)],
        ['Expires', (t) => when(t.expires_at)],
        ['', (t) => button('Revoke', () => revoke(t), { class: 'small danger', dataset: { token: t.id }, 'aria-label': `Revoke the API token ${t.name || t.id}` })],
      ], rows, 'You have no API tokens.'));
    } catch (err) {
      if (!controller.signal.aborted) tokensMsg.fail(err);
    }
  }
  loadTokens();

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    done.textContent = '';
    if (next.value !== again.value) {
      error.textContent = 'The two new passwords are not the same.';
      again.focus();
      return;
    }
    if (!form.reportValidity()) return;
    submit.disabled = true;
    const body = { current_password: current.value, new_password: next.value };
    try {
      await post('/auth/password', body);
      done.textContent = 'Your password was changed.';
      form.reset();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'InvalidCurrentPassword') {
        error.textContent = 'The current password is not correct.';
        current.focus();
      } else if (err instanceof ApiError && err.status === 429) {
        error.textContent = `Too many wrong passwords: try again in ${duration(err.retryAfter || 60)}.`;
      } else {
        error.textContent = err instanceof ApiError ? `The password was not changed: ${err.message}` : String(err.message || err);
        next.focus();
      }
    } finally {
      body.current_password = '';
      body.new_password = '';
      current.value = '';
      submit.disabled = false;
    }
  });
  return () => controller.abort();
}
