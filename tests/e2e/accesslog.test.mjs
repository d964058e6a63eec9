// The access log (issue 19 item 3, docs/operations.md "The access log"):
// one info line per answered request with method, path (query keys, no
// values), status, bytes, duration, principal and source; JSON with
// log_format = json; never a secret; off with access_log = off.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import { startDaemon } from './lib/daemon.mjs';
import { Client, expectError, expectStatus } from './lib/api.mjs';
import { randomString, waitFor } from './lib/util.mjs';

const h = fileHarness({ label: 'accesslog' });

// The text lines "... info access method=M path=P status=S bytes=B ms=D principal=X source=A".
function accessLines(log) {
  return log.split('\n').filter((l) => / info access /.test(l)).map((l) => {
    const f = {};
    for (const m of l.matchAll(/ (\w+)=(\S+)/g)) f[m[1]] = m[2];
    return f;
  });
}

async function lineFor(d, pred, what) {
  return waitFor(() => accessLines(d.log()).find(pred), { timeoutMs: 10000, what });
}

describe('access log', () => {
  const extra = [];
  before(() => h.up(), { timeout: 60000 });
  after(async () => {
    for (const d of extra) await d.stop();
    await h.down();
  }, { timeout: 30000 });

  h.test('a line per request: method, path with query keys only, status, bytes, ms, principal, source; no secret', async () => {
    const made = expectStatus(await h.admin.post('/tokens', { name: 'acc' }), 201, 'token');
    h.secrets.add(made.json.token, 'access-log token');
    const b = h.client('acc-bearer');
    b.bearer = made.json.token;
    const qsecret = `qv-${randomString(16)}`;
    const r = expectStatus(await b.get(`/audit?principal=${qsecret}&limit=5`), 200, 'GET with a query');
    const line = await lineFor(h.daemon, (f) => f.path && f.path.startsWith('/api/v1/audit?'), 'the audit line');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/api/v1/audit?principal&limit');
    assert.equal(line.status, '200');
    assert.equal(Number(line.bytes), Buffer.byteLength(r.text));
    assert.match(line.ms, /^\d+$/);
    assert.equal(line.principal, `user:admin,token:${made.json.id}`);
    assert.equal(line.source, '127.0.0.1');

    // A sign-in (its password in the body), a cookie call, a refusal, an
    // unknown asset, the liveness probe.
    const c = h.client('acc-cookie');
    await c.login('admin', h.daemon.adminPassword);
    expectStatus(await c.get('/groups'), 200, 'cookie call');
    expectError(await h.client('anon').get('/users'), 401, 'Unauthenticated');
    const login = await lineFor(h.daemon, (f) => f.path === '/api/v1/auth/login', 'login line');
    assert.equal(login.method, 'POST');
    assert.equal(login.principal, '-');
    await lineFor(h.daemon, (f) => f.path === '/api/v1/groups' && f.principal === 'user:admin', 'cookie line');
    await lineFor(h.daemon, (f) => f.path === '/api/v1/users' && f.status === '401' && f.principal === '-', '401 line');

    const log = h.daemon.log();
    assert.ok(!log.includes(qsecret), 'a query value in the log');
    assert.ok(!log.includes(made.json.token), 'the token in the log');
    assert.ok(!log.includes(c.sessionCookie().value), 'the session cookie in the log');
    assert.ok(!log.includes(c.csrf), 'the CSRF token in the log');
    assert.ok(!log.includes(h.daemon.adminPassword), 'the password in the log');
  });

  h.test('log_format = json: the same fields in one object per line', async () => {
    const dir = fs.mkdtempSync(path.join(h.dir, 'json-'));
    const d = await startDaemon(dir, { env: { BASTION_LOG_FORMAT: 'json' } });
    extra.push(d);
    const c = new Client(d, { secrets: h.secrets, label: 'json' });
    await c.login('admin', d.adminPassword);
    expectStatus(await c.get('/groups?x=1'), 200, 'a call');
    const rec = await waitFor(() => d.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
      .find((o) => o.message === 'access' && o.fields && o.fields.path === '/api/v1/groups?x'), { timeoutMs: 10000, what: 'the json line' });
    assert.equal(rec.type, 'log');
    assert.equal(rec.level, 'info');
    assert.deepEqual(Object.keys(rec.fields).sort(), ['bytes', 'method', 'ms', 'path', 'principal', 'source', 'status']);
    assert.equal(rec.fields.principal, 'user:admin');
    assert.equal(rec.fields.status, '200');
  });

  h.test('access_log = off: no access lines', async () => {
    const dir = fs.mkdtempSync(path.join(h.dir, 'off-'));
    const d = await startDaemon(dir, { env: { BASTION_ACCESS_LOG: 'off' } });
    extra.push(d);
    const c = new Client(d, { secrets: h.secrets, label: 'off' });
    await c.login('admin', d.adminPassword);
    expectStatus(await c.get('/groups'), 200, 'a call');
    // The control: the audit line of that sign-in is there, no access line.
    await waitFor(() => d.log().includes('"action":"auth.login"'), { timeoutMs: 10000, what: 'the sign-in audit line' });
    assert.deepEqual(accessLines(d.log()), []);
  });
});
