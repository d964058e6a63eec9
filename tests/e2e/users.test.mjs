// Accounts (docs/access-control.md "Users"): changing one's own password, disabling and deleting a
// user (their sessions, tokens and open terminals end at once, with a
// reason), and sign-in throttling per account and per source address.
//
// Sign-in attempts that must look like other machines are sent from other
// loopback source addresses (127.0.9.X: all of 127/8 is local on Linux);
// the daemon only ever sees the peer address, never a header.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import {
  expectError, expectSession, expectStatus, createTopology, addVm, connect, keyAuth, ids,
  loginFrom as loginFromAddr,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { randomString } from './lib/util.mjs';

const h = fileHarness({ label: 'users', block: 70, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }] });
const G = 'e2e';

function newPassword(label) {
  const pw = `Pw-${randomString(20)}`;
  h.secrets.add(pw, label);
  return pw;
}

async function newUser(name, { reader = false } = {}) {
  const u = await h.newUser(name);
  if (reader) {
    expectStatus(await h.admin.put(`/role-assignments/${name}-reader`, { principal: `user:${name}`, role: 'Reader', scope: ids.group(G) }),
      201, `Reader for ${name}`);
  }
  return u;
}

function loginFrom(localAddress, username, password) {
  return loginFromAddr(h, localAddress, username, password);
}

function expectThrottled(r, what, messageIncludes) {
  expectError(r, 429, 'TooManyRequests', { messageIncludes, what });
  assert.match(r.json.error.message, /try again in \d+ seconds/, what);
  const ra = Number(r.headers['retry-after']);
  assert.ok(Number.isInteger(ra) && ra > 0 && ra <= 900, `${what}: Retry-After ${r.headers['retry-after']}`);
  assert.equal(r.headers['set-cookie'], undefined, `${what}: no cookie`);
}

function body() {
  return { bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private) };
}

async function openTerminal(u) {
  const s = expectSession(await connect(u.c, G, 'vm-main', body()), `connect as ${u.name}`);
  const a = await attach(h.daemon, u.c, s.terminal);
  assert.ok(a.ok, `attach refused: ${a.status} ${a.body}`);
  a.term.send('echo READY$((20+22))\r');
  await a.term.waitForOutput('READY42', { timeoutMs: 15000 });
  return a.term;
}

describe('users', () => {
  before(async () => {
    await h.up();
    const main = await h.sshd({ name: 'main', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm-main', ip: h.net.addr(2), port: main.port });
    // Nobody answers at this address: a connect to it dials for 10 s.
    if (h.net.silentAddr) await addVm(h.admin, { group: G, name: 'vm-silent', ip: h.net.silentAddr, port: 22 });
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('change own password: wrong current 403, policy 400, then 200 with what ended; other sessions end, this one stays', async () => {
    const u = await newUser('pw-user');
    const other = h.client('pw-user-2');
    await other.login(u.name, u.pw);
    const fresh = newPassword('new password of pw-user');
    expectError(await u.c.post('/auth/password', { current_password: `${u.pw}x`, new_password: fresh }),
      403, 'InvalidCurrentPassword', { messageIncludes: 'current_password' });
    expectError(await u.c.post('/auth/password', { current_password: u.pw, new_password: 'short' }),
      400, 'InvalidRequest', { messageIncludes: 'new_password' });
    expectError(await u.c.post('/auth/password', { new_password: fresh }), 400, 'InvalidRequest', { messageIncludes: 'current_password' });
    expectError(await u.c.post('/auth/password', { current_password: u.pw, new_password: fresh }, { csrf: false }),
      403, 'CsrfTokenInvalid');
    expectError(await h.client('anon').post('/auth/password', { current_password: u.pw, new_password: fresh }), 401, 'Unauthenticated');
    const changed = expectStatus(await u.c.post('/auth/password', { current_password: u.pw, new_password: fresh }), 200, 'change');
    assert.deepEqual(changed.json, { ended: { sessions: 1, tokens: 0, terminals: 0 } });
    expectStatus(await u.c.get('/auth/session'), 200, 'the session that changed it');
    expectError(await other.get('/auth/session'), 401, 'Unauthenticated', { what: 'the other browser session' });
    expectError(await h.client('old').post('/auth/login', { username: u.name, password: u.pw }), 401, 'Unauthenticated');
    await h.client('new').login(u.name, fresh);
    // with an API token (no browser session to keep)
    const tok = await u.c.post('/tokens', {});
    const b = h.client('pw-bearer');
    b.bearer = tok.json.token;
    const third = newPassword('third password of pw-user');
    const byToken = expectStatus(await b.post('/auth/password', { current_password: fresh, new_password: third }), 200, 'change by token');
    assert.deepEqual(byToken.json, { ended: { sessions: 2, tokens: 0, terminals: 0 } }, 'both browser sessions; the calling token stays');
    expectError(await u.c.get('/auth/session'), 401, 'Unauthenticated', { what: 'browser sessions end on a token change' });
    expectStatus(await b.get('/auth/session'), 200, 'the token itself lives on');
  });

  h.test('a password change ends the other sessions, the API tokens and the open terminal; keep_sessions keeps them', async () => {
    const u = await newUser('pwend-user', { reader: true });
    const other = h.client('pwend-other');
    await other.login(u.name, u.pw);
    const tok = expectStatus(await u.c.post('/tokens', {}), 201, 'token');
    const b = h.client('pwend-bearer');
    b.bearer = tok.json.token;
    const term = await openTerminal(u);
    const fresh = newPassword('new password of pwend-user');
    try {
      const r = expectStatus(await u.c.post('/auth/password', { current_password: u.pw, new_password: fresh }), 200, 'change');
      assert.deepEqual(r.json, { ended: { sessions: 1, tokens: 1, terminals: 1 } });
      const msg = await term.waitForControl('closed', { timeoutMs: 15000 });
      assert.equal(msg.reason, 'your password was changed');
      await term.waitClosed({ timeoutMs: 10000 });
    } finally {
      term.close();
    }
    expectError(await b.get('/auth/session'), 401, 'Unauthenticated', { what: 'the old API token' });
    expectError(await other.get('/auth/session'), 401, 'Unauthenticated', { what: 'the other browser session' });
    expectStatus(await u.c.get('/auth/session'), 200, 'the session that changed it');

    // keep_sessions: true keeps the other session, the token and the terminal
    const other2 = h.client('pwend-other-2');
    await other2.login(u.name, fresh);
    const tok2 = expectStatus(await u.c.post('/tokens', {}), 201, 'token 2');
    const b2 = h.client('pwend-bearer-2');
    b2.bearer = tok2.json.token;
    const term2 = await openTerminal(u);
    const third = newPassword('third password of pwend-user');
    try {
      expectError(await u.c.post('/auth/password', { current_password: fresh, new_password: third, keep_sessions: 'yes' }),
        400, 'InvalidRequest', { messageIncludes: 'keep_sessions' });
      const r = expectStatus(await u.c.post('/auth/password', { current_password: fresh, new_password: third, keep_sessions: true }), 200, 'change, keeping');
      assert.deepEqual(r.json, { ended: { sessions: 0, tokens: 0, terminals: 0 } });
      expectStatus(await b2.get('/auth/session'), 200, 'the token is kept');
      expectStatus(await other2.get('/auth/session'), 200, 'the other session is kept');
      term2.send('echo STILL$((40+2))\r');
      await term2.waitForOutput('STILL42', { timeoutMs: 15000 });

      // An Owner's reset ends all of them.
      const fourth = newPassword('reset password of pwend-user');
      expectStatus(await h.admin.put(`/users/${u.name}`, { password: fourth }), 200, 'reset');
      const msg = await term2.waitForControl('closed', { timeoutMs: 15000 });
      assert.equal(msg.reason, 'your password was reset by admin');
      await term2.waitClosed({ timeoutMs: 10000 });
    } finally {
      term2.close();
    }
    expectError(await b2.get('/auth/session'), 401, 'Unauthenticated', { what: 'token after the reset' });
    expectError(await other2.get('/auth/session'), 401, 'Unauthenticated', { what: 'other session after the reset' });
    expectError(await u.c.get('/auth/session'), 401, 'Unauthenticated', { what: 'own session after the reset' });
    expectStatus(await h.admin.get('/auth/session'), 200, 'the Owner stays signed in');
  });

  h.test('disabling a user: its terminal closes with the reason; cookie and token stop working at once', async () => {
    const u = await newUser('dis-user', { reader: true });
    const tok = await u.c.post('/tokens', {});
    expectStatus(tok, 201, 'token');
    const b = h.client('dis-bearer');
    b.bearer = tok.json.token;
    const term = await openTerminal(u);
    try {
      expectStatus(await h.admin.put(`/users/${u.name}`, { disabled: true }), 200, 'disable');
      const msg = await term.waitForControl('closed', { timeoutMs: 15000 });
      assert.equal(msg.reason, 'your account was disabled by admin');
      await term.waitClosed({ timeoutMs: 10000 });
    } finally {
      term.close();
    }
    expectError(await u.c.get('/auth/session'), 401, 'Unauthenticated', { what: 'cookie' });
    expectError(await b.get('/auth/session'), 401, 'Unauthenticated', { what: 'token' });
    expectError(await connect(b, G, 'vm-main', body()), 401, 'Unauthenticated', { what: 'connect by token' });
    expectError(await h.client('dis-login').post('/auth/login', { username: u.name, password: u.pw }), 401, 'Unauthenticated');
    const g = await h.admin.get(`/users/${u.name}`);
    assert.equal(g.json.disabled, true, g.text);
    // enabling again revives no old credential; the password works again
    expectStatus(await h.admin.put(`/users/${u.name}`, { disabled: false }), 200, 'enable');
    expectError(await u.c.get('/auth/session'), 401, 'Unauthenticated', { what: 'old cookie after enable' });
    expectError(await b.get('/auth/session'), 401, 'Unauthenticated', { what: 'old token after enable' });
    await h.client('dis-again').login(u.name, u.pw);
  });

  h.test('disabling a user ends its connect still dialling: 401 at once, no session opens', { timeout: 60000 }, async (t) => {
    if (!h.net.silentAddr) { t.skip('loopback fallback: no silent address'); return; }
    const u = await newUser('dial-user', { reader: true });
    const t0 = Date.now();
    const pending = connect(u.c, G, 'vm-silent', body(), { timeoutMs: 20000 });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the worker's checks are past: it dials
    expectStatus(await h.admin.put(`/users/${u.name}`, { disabled: true }), 200, 'disable');
    const r = await pending;
    expectError(r, 401, 'Unauthenticated', { messageIncludes: 'your account was disabled by admin' });
    assert.ok(Date.now() - t0 < 8000, `answered when the account was disabled, not at the 10 s dial timeout (${Date.now() - t0} ms)`);
    const list = await h.admin.get('/sessions');
    expectStatus(list, 200, 'sessions');
    assert.equal(list.json.value.filter((s) => s.user === u.name).length, 0, 'no session of the disabled user');
  });

  h.test('deleting a user: its terminal closes with the reason; its credentials are gone', async () => {
    const u = await newUser('del-user', { reader: true });
    const term = await openTerminal(u);
    try {
      expectStatus(await h.admin.del(`/users/${u.name}`), 204, 'delete');
      const msg = await term.waitForControl('closed', { timeoutMs: 15000 });
      assert.equal(msg.reason, 'your account was deleted by admin');
    } finally {
      term.close();
    }
    expectError(await u.c.get('/auth/session'), 401, 'Unauthenticated');
    expectError(await h.admin.get(`/role-assignments/${u.name}-reader`), 404, 'ResourceNotFound', { what: 'its roles went too' });
    // a new account of the same name inherits nothing
    const again = await newUser('del-user');
    expectError(await connect(again.c, G, 'vm-main', body()), 403, 'AuthorizationFailed');
  });

  h.test('only an Owner at / manages users; nobody disables or deletes themselves', async () => {
    const u = await newUser('plain-user');
    expectError(await u.c.put('/users/plain-user', { disabled: true }), 403, 'AuthorizationFailed', { messageIncludes: 'Owner on / is required' });
    expectError(await u.c.del('/users/admin'), 403, 'AuthorizationFailed', { messageIncludes: 'Owner on / is required' });
    expectError(await h.admin.put('/users/admin', { disabled: true }), 409, 'ResourceInUse');
    expectError(await h.admin.del('/users/admin'), 409, 'ResourceInUse');
    expectError(await h.admin.put('/users/brand-new', {}), 400, 'InvalidRequest', { messageIncludes: 'password' });
  });

  h.test('throttling per account: 5 failures lock it everywhere but where its owner signed in before', { timeout: 120000 }, async () => {
    const u = await newUser('victim');
    expectStatus(await loginFrom('127.0.9.3', u.name, u.pw), 200, 'the owner signs in from 127.0.9.3');
    for (let i = 0; i < 5; i++) {
      expectError(await loginFrom('127.0.9.1', u.name, `wrong-${i}-${u.pw}`), 401, 'Unauthenticated', { what: `failure ${i + 1}` });
    }
    expectThrottled(await loginFrom('127.0.9.1', u.name, u.pw), 'right password from the attacker', 'victim');
    expectThrottled(await loginFrom('127.0.9.2', u.name, u.pw), 'from a new address', 'victim');
    expectStatus(await loginFrom('127.0.9.3', u.name, u.pw), 200, 'from the owner\'s known address');
    // an unknown name is throttled the same way: no hint whether it exists
    for (let i = 0; i < 5; i++) expectError(await loginFrom('127.0.9.4', 'nobody-here', `guess-${i}-xxxxxxx`), 401, 'Unauthenticated');
    expectThrottled(await loginFrom('127.0.9.4', 'nobody-here', 'guess-x-xxxxxxx'), 'unknown user', 'nobody-here');
    // an Owner setting a new password lifts the lock
    const fresh = newPassword('reset password of victim');
    expectStatus(await h.admin.put(`/users/${u.name}`, { password: fresh }), 200, 'reset');
    expectStatus(await loginFrom('127.0.9.2', u.name, fresh), 200, 'after the reset');
  });

  h.test('throttling: a success resets the account counter', { timeout: 120000 }, async () => {
    const u = await newUser('resetme');
    for (let i = 0; i < 4; i++) expectError(await loginFrom('127.0.9.20', u.name, `wrong-${i}-${u.pw}`), 401, 'Unauthenticated');
    expectStatus(await loginFrom('127.0.9.21', u.name, u.pw), 200, 'success');
    for (let i = 0; i < 4; i++) expectError(await loginFrom('127.0.9.20', u.name, `again-${i}-${u.pw}`), 401, 'Unauthenticated');
    expectStatus(await loginFrom('127.0.9.22', u.name, u.pw), 200, 'four more failures do not lock');
  });

  h.test('throttling per source address: 20 failures over many names lock the address only', { timeout: 180000 }, async () => {
    const u = await newUser('bystander');
    for (let i = 0; i < 20; i++) {
      expectError(await loginFrom('127.0.9.9', `spray-${i}`, `spray-password-${i}`), 401, 'Unauthenticated', { what: `spray ${i}` });
    }
    expectThrottled(await loginFrom('127.0.9.9', u.name, u.pw), 'a valid account from the locked address', '127.0.9.9');
    expectStatus(await loginFrom('127.0.9.10', u.name, u.pw), 200, 'another address');
  });

  h.test('no password in any response or log line', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit('SIGTERM: exits 0 within 10 s (under ASan: no leak, no report)');
});
