// Second factors in the portal (docs/sign-in.md "Second factors"):
// - the account page's section: enrol a TOTP authenticator (a QR code of
//   the otpauth:// URI, drawn here with qrcode-generator: the secret never
//   goes to a third-party service), confirm it with a code, show the ten
//   recovery codes once, remove it with a code;
// - the sign-in's second step: a code field shown after a 401 MfaRequired;
// - passkeys (WebAuthn through navigator.credentials): register one on the
//   account page, sign in with one (no password), or use one as the
//   second step.

import qrcode from 'qrcode-generator';
import { ApiError, api, get, post, setCsrfToken } from './api.js';
import { clear, field, h } from './dom.js';
import { duration } from './errors.js';
import { state } from './state.js';

const SVG = 'http://www.w3.org/2000/svg';

// An <svg> of text as a QR code: one <rect> per dark module, a quiet zone
// of four modules, crisp at any size.
export function qrSvg(text, { size = 200, label = 'QR code' } = {}) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const q = 4;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${n + 2 * q} ${n + 2 * q}`);
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const bg = document.createElementNS(SVG, 'rect');
  bg.setAttribute('width', '100%');
  bg.setAttribute('height', '100%');
  bg.setAttribute('fill', '#fff');
  svg.appendChild(bg);
  const path = [];
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) path.push(`M${c + q} ${r + q}h1v1h-1z`);
  }
  const p = document.createElementNS(SVG, 'path');
  p.setAttribute('d', path.join(''));
  p.setAttribute('fill', '#000');
  svg.appendChild(p);
  return svg;
}

// The sign-in's second step: a code field that stays hidden until the
// server answers MfaRequired. value() is '' while hidden.
export function otpStep() {
  const input = h('input', {
    id: 'login-otp', name: 'otp', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code',
    autocapitalize: 'none', spellcheck: 'false', maxlength: '32',
  });
  const el = field('Authentication code', input, 'The 6-digit code of your authenticator app, or one of your recovery codes.');
  el.hidden = true;
  return {
    el,
    get active() { return !el.hidden; },
    show() { el.hidden = false; input.required = true; input.value = ''; input.focus(); },
    value() { return el.hidden ? '' : input.value.trim(); },
    clear() { input.value = ''; },
  };
}

function errorText(err, what) {
  if (err instanceof ApiError && err.status === 429) return `Too many wrong codes: try again in ${duration(err.retryAfter || 60)}.`;
  if (err instanceof ApiError && err.code === 'InvalidOtp') return 'The code is not correct (or was already used). Check the clock of the device.';
  return err instanceof ApiError ? `${what}: ${err.message}` : String(err.message || err);
}

// The account page's "Two-factor authentication" section.
export function renderMfaSection({ required = false } = {}) {
  const body = h('div', { id: 'mfa-body', class: 'stack' });
  const section = h(
    'section',
    { id: 'mfa-section', 'aria-labelledby': 'mfa-title' },
    h('h2', { id: 'mfa-title' }, 'Two-factor authentication'),
    required ? h('p', { id: 'mfa-required', class: 'error', role: 'alert' }, 'This bastion requires a second factor: set up an authenticator app to go on.') : null,
    body,
  );

  async function refresh() {
    clear(body);
    let st;
    try {
      st = await get('/auth/mfa');
    } catch (err) {
      body.appendChild(h('p', { class: 'error', role: 'alert' }, errorText(err, 'Could not read your second factors')));
      return;
    }
    if (st.totp.confirmed) showEnrolled(st);
    else showNone();
    showPasskeys(st);
  }

  function showPasskeys(st) {
    const add = h('button', { id: 'mfa-passkey-add', type: 'button' }, 'Add a passkey');
    const msg = h('p', { id: 'mfa-passkey-msg', class: 'error', role: 'alert' });
    body.append(
      h('h3', null, 'Passkeys'),
      h('p', { id: 'mfa-passkeys' }, st.passkeys ? `${st.passkeys} passkey${st.passkeys === 1 ? '' : 's'} registered: sign in with one, or use one after the password.` : 'No passkey is registered.'),
      msg,
      passkeysSupported() ? h('div', { class: 'actions' }, add) : h('p', { class: 'muted' }, 'This browser does not offer passkeys.'),
    );
    add.addEventListener('click', async () => {
      add.disabled = true;
      msg.textContent = '';
      try {
        await registerPasskey();
        state.mfaEnrollmentRequired = false;
        refresh();
      } catch (err) {
        msg.textContent = errorText(err, 'The passkey was not added');
        add.disabled = false;
      }
    });
  }

  function showNone() {
    const start = h('button', { id: 'mfa-enrol', type: 'button', class: 'primary' }, 'Set up an authenticator app');
    const error = h('p', { class: 'error', role: 'alert' });
    body.append(h('p', { id: 'mfa-status' }, 'No second factor is set up.'), error, h('div', { class: 'actions' }, start));
    start.addEventListener('click', async () => {
      start.disabled = true;
      try {
        const e = await post('/auth/mfa/totp', {});
        showEnrol(e);
      } catch (err) {
        error.textContent = errorText(err, 'Could not start');
        start.disabled = false;
      }
    });
  }

  function showEnrol(e) {
    clear(body);
    const code = h('input', { id: 'mfa-code', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', required: true, maxlength: '8' });
    const error = h('p', { id: 'mfa-error', class: 'error', role: 'alert' });
    const confirm = h('button', { id: 'mfa-confirm', type: 'submit', class: 'primary' }, 'Confirm');
    const form = h('form', { id: 'mfa-confirm-form', class: 'stack' }, field('Code from the app', code), error, h('div', { class: 'actions' }, confirm));
    body.append(
      h('p', null, 'Scan this QR code with an authenticator app (or type the key), then enter the code it shows.'),
      h('div', { id: 'mfa-qr', class: 'qr' }, qrSvg(e.otpauth_uri, { label: 'QR code of the authenticator key' })),
      h('p', null, 'Key: ', h('code', { id: 'mfa-secret' }, e.secret)),
      form,
    );
    code.focus();
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      if (!form.reportValidity()) return;
      confirm.disabled = true;
      try {
        const r = await post('/auth/mfa/totp/confirm', { code: code.value.trim() });
        showRecovery(r.recovery_codes);
      } catch (err) {
        error.textContent = errorText(err, 'Not confirmed');
        code.value = '';
        code.focus();
      } finally {
        confirm.disabled = false;
      }
    });
  }

  function showRecovery(codes) {
    clear(body);
    const done = h('button', { id: 'mfa-recovery-done', type: 'button', class: 'primary' }, 'I have saved them');
    body.append(
      h('p', { class: 'success', role: 'status' }, 'Two-factor authentication is on.'),
      h('p', null, 'Recovery codes: each one signs you in once if you lose the device. Save them now: they are not shown again.'),
      h('ul', { id: 'mfa-recovery', class: 'recovery-codes' }, codes.map((c) => h('li', null, h('code', null, c)))),
      h('div', { class: 'actions' }, done),
    );
    done.addEventListener('click', () => {
      // A restricted session (auth.require_mfa) may go everywhere now.
      state.mfaEnrollmentRequired = false;
      if (required) location.hash = '#/';
      else refresh();
    });
  }

  function showEnrolled(st) {
    const code = h('input', { id: 'mfa-remove-code', type: 'text', autocomplete: 'one-time-code', required: true, maxlength: '32' });
    const error = h('p', { class: 'error', role: 'alert' });
    const remove = h('button', { id: 'mfa-remove', type: 'submit' }, 'Turn off');
    const form = h('form', { id: 'mfa-remove-form', class: 'stack' }, field('Code or recovery code', code), error, h('div', { class: 'actions' }, remove));
    body.append(
      h('p', { id: 'mfa-status' }, `An authenticator app is set up; ${st.recovery_codes_left} recovery code${st.recovery_codes_left === 1 ? '' : 's'} left.`),
      form,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      if (!form.reportValidity()) return;
      remove.disabled = true;
      try {
        await api('DELETE', '/auth/mfa/totp', { otp: code.value.trim() });
        refresh();
      } catch (err) {
        error.textContent = errorText(err, 'Not turned off');
        remove.disabled = false;
      }
    });
  }

  refresh();
  return section;
}

// ---- passkeys ------------------------------------------------------------

function fromB64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toB64url(buf) {
  const bytes = new Uint8Array(buf);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function passkeysSupported() {
  return typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
}

// Registers a passkey for the signed-in user (POST .../register/options,
// navigator.credentials.create, POST .../register).
export async function registerPasskey() {
  const o = await post('/auth/mfa/webauthn/register/options', {});
  const cred = await navigator.credentials.create({
    publicKey: {
      ...o,
      challenge: fromB64url(o.challenge),
      user: { ...o.user, id: fromB64url(o.user.id) },
      excludeCredentials: o.excludeCredentials.map((d) => ({ ...d, id: fromB64url(d.id) })),
    },
  });
  return post('/auth/mfa/webauthn/register', {
    id: toB64url(cred.rawId),
    clientDataJSON: toB64url(cred.response.clientDataJSON),
    attestationObject: toB64url(cred.response.attestationObject),
  });
}

// A passkey assertion (for username's keys, or any discoverable one), as
// the JSON the server verifies.
export async function passkeyAssertion(username) {
  const o = await post('/auth/webauthn/login/options', username ? { username } : {}, { quiet401: true });
  const cred = await navigator.credentials.get({
    publicKey: {
      challenge: fromB64url(o.challenge),
      rpId: o.rpId,
      timeout: o.timeout,
      userVerification: o.userVerification,
      allowCredentials: o.allowCredentials.map((d) => ({ ...d, id: fromB64url(d.id) })),
    },
  });
  return {
    id: toB64url(cred.rawId),
    clientDataJSON: toB64url(cred.response.clientDataJSON),
    authenticatorData: toB64url(cred.response.authenticatorData),
    signature: toB64url(cred.response.signature),
    userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null,
  };
}

// Signs in with a passkey alone: resolves the login answer.
export async function passkeySignIn() {
  const a = await passkeyAssertion(null);
  return post('/auth/webauthn/login', a, { quiet401: true });
}

// The second step after single sign-on (docs/sign-in.md "OpenID Connect
// users and MFA"): the provider signed the user in, the session waits for
// bastion's own code (or a passkey) at POST /auth/mfa/verify, which answers
// with a new session and its CSRF token.
export function renderMfaVerify(root, { onVerified, onSignOut }) {
  document.title = 'Second factor · bastion';
  const input = h('input', {
    id: 'mfa-verify-otp', name: 'otp', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code',
    autocapitalize: 'none', spellcheck: 'false', maxlength: '32', required: true,
  });
  const error = h('p', { id: 'mfa-verify-error', class: 'error', role: 'alert' });
  const submit = h('button', { id: 'mfa-verify-submit', type: 'submit', class: 'primary' }, 'Continue');
  const passkey = h('button', { id: 'mfa-verify-passkey', type: 'button', hidden: true }, 'Use a passkey instead');
  const cancel = h('button', { id: 'mfa-verify-cancel', type: 'button' }, 'Sign out');
  let busy = false;
  async function send(makeBody) {
    if (busy) return;
    busy = true;
    submit.disabled = true;
    error.textContent = '';
    delete error.dataset.code;
    try {
      const data = await post('/auth/mfa/verify', await makeBody(), { quiet401: true });
      setCsrfToken(data && data.csrf_token);
      state.user = (data && data.user) || state.user;
      await onVerified();
    } catch (err) {
      input.value = '';
      if (err instanceof ApiError) {
        error.dataset.code = err.code;
        error.textContent = err.status === 429
          ? `Too many wrong codes: try again in ${duration(err.retryAfter || 60)}.`
          : err.status === 401
            ? 'The code is not correct or was already used. Enter the current one.'
            : `The sign-in could not be finished: ${err.message}`;
      } else {
        error.textContent = 'The passkey was not used.';
      }
      input.focus();
    } finally {
      busy = false;
      submit.disabled = false;
    }
  }
  const form = h(
    'form',
    { id: 'mfa-verify-form', class: 'stack', 'aria-labelledby': 'mfa-verify-title' },
    field('Authentication code', input, 'The 6-digit code of your authenticator app, or one of your recovery codes.'),
    error,
    h('div', { class: 'actions' }, submit, passkey, cancel),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    const otp = input.value.trim();
    send(async () => ({ otp }));
  });
  passkey.addEventListener('click', () => send(async () => ({ webauthn: await passkeyAssertion(state.user && state.user.name) })));
  cancel.addEventListener('click', () => onSignOut());
  root.appendChild(h(
    'section',
    { class: 'card narrow login' },
    h('h1', { id: 'mfa-verify-title' }, 'Second factor'),
    h('p', { class: 'muted', id: 'mfa-verify-user' }, `Signed in with single sign-on as ${state.user && state.user.name}. Your account also needs its second factor.`),
    form,
  ));
  // A passkey is offered when the account has one (GET /auth/mfa).
  if (passkeysSupported()) {
    get('/auth/mfa', { quiet401: true }).then((st) => {
      if (st && st.passkeys > 0) passkey.hidden = false;
    }).catch(() => {});
  }
  input.focus();
  return () => {};
}
