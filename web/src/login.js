// The sign-in form: POST /auth/login {username, password}.

import { ApiError, get, post, setCsrfToken } from './api.js';
import { field, h } from './dom.js';
import { duration } from './errors.js';
import { state } from './state.js';
import { otpStep, passkeyAssertion, passkeySignIn, passkeysSupported } from './mfa.js';

export function renderLogin(root, { onSignedIn }) {
  document.title = 'Sign in · bastion';
  const username = h('input', {
    id: 'login-username', name: 'username', type: 'text', autocomplete: 'username',
    autocapitalize: 'none', spellcheck: 'false', required: true,
  });
  const password = h('input', {
    id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true,
  });
  const error = h('p', { id: 'login-error', class: 'error', role: 'alert' });
  const submit = h('button', { id: 'login-submit', type: 'submit', class: 'primary' }, 'Sign in');
  const otp = otpStep(); // the second step (mfa.js)
  // Passkeys (mfa.js): sign in with one alone, or use one as the second step.
  const passkey = h('button', { id: 'login-passkey', type: 'button' }, 'Sign in with a passkey');
  const otpPasskey = h('button', { id: 'login-otp-passkey', type: 'button', hidden: true }, 'Use a passkey instead');

  let busy = false;
  const form = h(
    'form',
    { id: 'login-form', class: 'stack', 'aria-labelledby': 'login-title' },
    field('Username', username),
    field('Password', password),
    otp.el,
    error,
    h('div', { class: 'actions' }, submit, passkeysSupported() ? passkey : null, passkeysSupported() ? otpPasskey : null),
  );
  function signedIn(data, name) {
    password.value = '';
    setCsrfToken(data && data.csrf_token);
    state.user = (data && data.user) || { name };
    state.mfaEnrollmentRequired = !!(data && data.mfa_enrollment_required);
    onSignedIn();
  }
  async function withPasskey(fn) {
    if (busy) return;
    busy = true;
    error.textContent = '';
    try {
      await fn();
    } catch (err) {
      error.textContent = err instanceof ApiError ? loginError(err) : 'The passkey was not used.';
      if (err instanceof ApiError) error.dataset.code = err.code;
      else delete error.dataset.code;
    } finally {
      busy = false;
    }
  }
  passkey.addEventListener('click', () => withPasskey(async () => {
    const data = await passkeySignIn();
    signedIn(data, data && data.user && data.user.name);
  }));
  otpPasskey.addEventListener('click', () => withPasskey(async () => {
    const webauthn = await passkeyAssertion(username.value);
    const data = await post('/auth/login', { username: username.value, password: password.value, webauthn }, { quiet401: true });
    signedIn(data, username.value);
  }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (busy) return;
    error.textContent = '';
    if (!form.reportValidity()) return;
    busy = true;
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    const body = { username: username.value, password: password.value };
    if (otp.value()) body.otp = otp.value();
    try {
      const data = await post('/auth/login', body, { quiet401: true });
      body.password = '';
      password.value = '';
      setCsrfToken(data && data.csrf_token);
      state.user = (data && data.user) || { name: body.username };
      state.mfaEnrollmentRequired = !!(data && data.mfa_enrollment_required);
      onSignedIn();
    } catch (err) {
      body.password = '';
      otp.clear();
      if (err instanceof ApiError && (err.code === 'MfaRequired' || (otp.active && err.status === 401))) {
        // Second step: the password stays in its field, sent again with the code.
        error.textContent = err.code === 'MfaRequired'
          ? 'Enter the code of your authenticator app (or a recovery code).'
          : 'The code is not correct or was already used. Enter the current one.';
        error.dataset.code = err.code;
        otp.show();
        otpPasskey.hidden = false;
        return;
      }
      password.value = '';
      error.textContent = loginError(err);
      if (err instanceof ApiError) error.dataset.code = err.code;
      else delete error.dataset.code;
      password.focus();
    } finally {
      busy = false;
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });

  const card = h(
    'section',
    { class: 'card narrow login' },
    h('h1', { id: 'login-title' }, 'Sign in'),
    h('p', { class: 'muted' }, 'Sign in to see the virtual machines you can reach through the bastion.'),
    form,
  );
  root.appendChild(card);
  addSingleSignOn(card);
  username.focus();
  return () => {};
}

function loginError(err) {
  if (!(err instanceof ApiError)) return 'Sign-in failed.';
  if (err.status === 429) {
    const secs = err.retryAfter;
    const when = secs != null
      ? ` Try again in ${duration(secs)} (at ${new Date(Date.now() + secs * 1000).toLocaleTimeString()}).`
      : ' Try again later.';
    return `Sign-in is locked after too many failed attempts.${when} (${err.message})`;
  }
  if (err.status === 401) return 'The username or password is not correct.';
  if (err.code === 'NetworkError') return err.message;
  return `Sign-in failed: ${err.message}`;
}

// Single sign-on (OpenID Connect): when the bastion has a provider
// (GET /auth/providers), a "Sign in with NAME" link that starts the flow;
// the provider sends the browser back signed in (docs/sign-in.md).
async function addSingleSignOn(card) {
  let data;
  try {
    data = await get('/auth/providers', { quiet401: true });
  } catch {
    return; // no provider list: the password form alone
  }
  const oidc = data && data.oidc;
  if (!oidc || typeof oidc.login_url !== 'string' || !oidc.login_url.startsWith('/api/v1/')) return;
  card.appendChild(h('div', { class: 'actions sso' },
    h('a', { id: 'login-sso', class: 'button', href: oidc.login_url }, `Sign in with ${oidc.display_name}`)));
}
