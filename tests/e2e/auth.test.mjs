// Sign-in, sessions, CSRF, Origin, API tokens, 401s, healthz and a clean
// SIGTERM exit (docs/api.md "Authentication", docs/operations.md).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import { expectError, expectStatus } from './lib/api.mjs';
import { rawGet } from './lib/daemon.mjs';

const h = fileHarness({ label: 'auth', daemon: true });

describe('auth', () => {
  before(() => h.up(), { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('healthz answers 200 without credentials', async () => {
    const r = await rawGet(h.daemon.port, '/api/v1/healthz');
    assert.equal(r.status, 200, r.text);
  });

  h.test('login: 200 {user, csrf_token} and a HttpOnly Secure SameSite=Strict cookie', async () => {
    const c = h.client('login');
    const r = await c.login('admin', h.daemon.adminPassword);
    assert.equal(r.json.user && r.json.user.name, 'admin', r.text);
    const ck = c.sessionCookie();
    assert.ok(ck, `__Host-bastion_session cookie set: ${JSON.stringify(r.headers['set-cookie'])}`);
    assert.ok(ck.value.length >= 16, 'session cookie value is not trivially short');
    const attrs = ck.attrs.map((a) => a.toLowerCase());
    assert.ok(attrs.includes('httponly'), `HttpOnly in ${ck.raw}`);
    assert.ok(attrs.includes('secure'), `Secure in ${ck.raw}`);
    assert.ok(attrs.includes('samesite=strict'), `SameSite=Strict in ${ck.raw}`);
    assert.ok(attrs.includes('path=/'), `Path=/ in ${ck.raw}`);
    // The __Host- prefix: the browser takes it only Secure, Path=/ and
    // without Domain, so no sibling host or path can set or shadow it.
    assert.ok(ck.raw.startsWith('__Host-bastion_session='), `__Host- prefix: ${ck.raw}`);
    assert.ok(!attrs.some((a) => a.startsWith('domain=')), `no Domain in ${ck.raw}`);
    const s = await c.get('/auth/session');
    assert.equal(s.status, 200, s.text);
  });

  h.test('wrong password and unknown user: 401 Unauthenticated, no cookie', async () => {
    const c = h.client('bad-login');
    const r = await c.post('/auth/login', { username: 'admin', password: `${h.daemon.adminPassword}x` });
    expectError(r, 401, 'Unauthenticated');
    assert.equal(c.sessionCookie(), null, 'no session cookie on a failed login');
    const u = await c.post('/auth/login', { username: 'nobody-e2e', password: 'whatever-password-1' });
    expectError(u, 401, 'Unauthenticated');
  });

  h.test('malformed login body: 400 InvalidRequest', async () => {
    const c = h.client('bad-body');
    expectError(await c.request('POST', '/auth/login', { raw: '{"username":' }), 400, 'InvalidRequest');
    expectError(await c.post('/auth/login', { username: 'admin' }), 400, 'InvalidRequest', { messageIncludes: 'password' });
  });

  h.test('no credentials: 401 Unauthenticated on session, resources and tokens', async () => {
    const c = h.client('anon');
    expectError(await c.get('/auth/session'), 401, 'Unauthenticated');
    expectError(await c.get('/groups/e2e-auth'), 401, 'Unauthenticated');
    expectError(await c.put('/groups/e2e-auth', {}), 401, 'Unauthenticated');
    expectError(await c.post('/tokens', {}), 401, 'Unauthenticated');
    expectError(await c.get('/auth/session', { headers: { Cookie: '__Host-bastion_session=forged-session-value-0000' } }), 401, 'Unauthenticated');
  });

  h.test('GET needs no CSRF token', async () => {
    const c = h.client('csrf-get');
    await c.login('admin', h.daemon.adminPassword);
    const r = await c.get('/auth/session', { csrf: false });
    assert.equal(r.status, 200, r.text);
  });

  h.test('cookie POST/PUT/DELETE without or with a wrong X-CSRF-Token: 403 CsrfTokenInvalid', async () => {
    const c = h.client('csrf');
    await c.login('admin', h.daemon.adminPassword);
    expectError(await c.put('/groups/e2e-csrf', {}, { csrf: false }), 403, 'CsrfTokenInvalid', { what: 'PUT without token' });
    expectError(await c.put('/groups/e2e-csrf', {}, { csrf: 'not-the-token' }), 403, 'CsrfTokenInvalid', { what: 'PUT wrong token' });
    expectError(await c.post('/tokens', {}, { csrf: false }), 403, 'CsrfTokenInvalid', { what: 'POST without token' });
    // nothing was created by the refused PUTs
    expectError(await c.get('/groups/e2e-csrf'), 404, 'ResourceNotFound');
    expectStatus(await c.put('/groups/e2e-csrf', {}), 201, 'PUT with token');
    expectError(await c.del('/groups/e2e-csrf', { csrf: false }), 403, 'CsrfTokenInvalid', { what: 'DELETE without token' });
    expectError(await c.del('/groups/e2e-csrf', { csrf: `${c.csrf}x` }), 403, 'CsrfTokenInvalid', { what: 'DELETE wrong token' });
    expectStatus(await c.get('/groups/e2e-csrf'), 200, 'still there');
    expectStatus(await c.del('/groups/e2e-csrf'), [200, 204], 'DELETE with token');
    // another session's token does not fit this session
    const other = h.client('csrf-other');
    await other.login('admin', h.daemon.adminPassword);
    if (other.csrf !== c.csrf) {
      expectError(await c.put('/groups/e2e-csrf2', {}, { csrf: other.csrf }), 403, 'CsrfTokenInvalid', { what: "another session's token" });
    }
  });

  h.test('Origin must be https://<Host> when sent: else 403 OriginMismatch', async () => {
    const c = h.client('origin');
    await c.login('admin', h.daemon.adminPassword);
    for (const origin of ['https://evil.example', `http://127.0.0.1:${h.daemon.port}`, 'https://127.0.0.1', 'null',
      `https://127.0.0.1:${h.daemon.port}.evil.example`]) {
      expectError(await c.put('/groups/e2e-origin', {}, { origin }), 403, 'OriginMismatch', { what: `Origin ${origin}` });
    }
    expectError(await c.get('/groups/e2e-origin'), 404, 'ResourceNotFound');
    expectStatus(await c.put('/groups/e2e-origin', {}, { origin: h.daemon.origin }), 201, 'own Origin');
    expectStatus(await c.del('/groups/e2e-origin', { origin: h.daemon.origin }), [200, 204], 'own Origin delete');
  });

  h.test('API token: POST /tokens 201 {token}; Bearer works without CSRF or cookie', async () => {
    const c = h.client('token-maker');
    await c.login('admin', h.daemon.adminPassword);
    const r = await c.post('/tokens', {});
    assert.equal(r.status, 201, r.text);
    assert.ok(r.json && typeof r.json.token === 'string' && r.json.token.length >= 16, r.text);
    const b = h.client('bearer');
    b.bearer = r.json.token;
    expectStatus(await b.put('/groups/e2e-bearer', {}), 201, 'bearer PUT without CSRF');
    const g = await b.get('/groups/e2e-bearer');
    assert.equal(g.status, 200, g.text);
    assert.equal(g.json.id, '/groups/e2e-bearer');
    expectStatus(await b.del('/groups/e2e-bearer'), [200, 204], 'bearer DELETE');
    // the token must not be logged (it is a credential)
    assert.ok(!h.daemon.log().includes(r.json.token), 'the API token appears in the daemon log');
  });

  h.test('invalid or malformed bearer: 401 Unauthenticated', async () => {
    const b = h.client('bad-bearer');
    b.bearer = 'definitely-not-a-valid-token-0123456789';
    expectError(await b.get('/groups/e2e-bad-bearer'), 401, 'Unauthenticated');
    expectError(await b.put('/groups/e2e-bad-bearer', {}), 401, 'Unauthenticated');
    expectError(await b.get('/groups/e2e-bad-bearer', { bearer: false, headers: { Authorization: 'Basic YWRtaW46YWRtaW4=' } }), 401, 'Unauthenticated');
  });

  h.test('logout with a bearer token revokes that token, and only it', async () => {
    const c = h.client('token-revoker');
    await c.login('admin', h.daemon.adminPassword);
    const one = await c.post('/tokens', {});
    const two = await c.post('/tokens', {});
    expectStatus(one, 201, 'first token');
    expectStatus(two, 201, 'second token');
    const b = h.client('bearer-revoked');
    b.bearer = one.json.token;
    expectStatus(await b.get('/auth/session'), 200, 'before');
    expectStatus(await b.post('/auth/logout', {}), 204, 'logout by token');
    expectError(await b.get('/auth/session'), 401, 'Unauthenticated', { what: 'the revoked token' });
    expectError(await b.post('/auth/logout', {}), 401, 'Unauthenticated', { what: 'revoking twice' });
    const other = h.client('bearer-kept');
    other.bearer = two.json.token;
    expectStatus(await other.get('/auth/session'), 200, 'the other token still works');
    expectStatus(await c.get('/auth/session'), 200, 'the browser session still works');
  });

  h.test('logout ends the session; the old cookie no longer works', async () => {
    const c = h.client('logout');
    await c.login('admin', h.daemon.adminPassword);
    const oldCookie = c.cookieHeader();
    expectStatus(await c.get('/auth/session'), 200, 'session before logout');
    expectStatus(await c.post('/auth/logout', {}), [200, 204], 'logout');
    expectError(await c.get('/auth/session', { headers: { Cookie: oldCookie }, cookies: false }), 401, 'Unauthenticated');
    expectError(await c.put('/groups/e2e-logout', {}, { headers: { Cookie: oldCookie }, cookies: false }), 401, 'Unauthenticated');
    // signing in again works
    await c.login('admin', h.daemon.adminPassword);
    expectStatus(await c.get('/auth/session'), 200, 'session after new login');
  });

  h.test('no response body and no log line contains a password', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit('SIGTERM: the daemon exits 0 within 10 s');
});
