// API tokens have a lifecycle (issue 19 item 1, docs/api.md "API tokens"):
// a public id, a name, a scope ("all" or "metrics"), created / last used /
// expires; GET /tokens lists your own (an Owner at / anyone's with
// ?user=), DELETE /tokens/{id} revokes; `bastion token list|create|revoke`;
// `bastion login` revokes the token it replaces; both audited, never with
// the secret. And the generated first admin password stays out of the log.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import { startDaemon } from './lib/daemon.mjs';
import { Client, expectError, expectStatus } from './lib/api.mjs';
import { runCli, expectCode, tableRows } from './lib/cli.mjs';
import { launch, newContext, signIn } from './lib/browser.mjs';

const h = fileHarness({ label: 'tokens' });

async function newToken(c, body, what) {
  const r = expectStatus(await c.post('/tokens', body), 201, what);
  h.secrets.add(r.json.token, `token ${what}`);
  return r.json;
}

function bearer(token, label) {
  const b = h.client(label);
  b.bearer = token;
  return b;
}

// GET at the root (/metrics, where Prometheus looks).
function rootGet(urlPath, token) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: h.daemon.port, path: urlPath, method: 'GET', rejectUnauthorized: false, agent: false,
      headers: { Authorization: `Bearer ${token}` }, timeout: 10000,
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function auditOf(action) {
  const r = expectStatus(await h.admin.get(`/audit?action=${action}&limit=1000`), 200, `audit ${action}`);
  return r.json.value;
}

describe('tokens', () => {
  before(async () => {
    await h.up();
    fs.mkdirSync(path.join(h.dir, 'home'), { recursive: true, mode: 0o700 });
  }, { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('POST /tokens answers the id, name, scope and times beside the secret; GET /tokens lists them without it', async () => {
    const made = await newToken(h.admin, { name: 'ci-runner', scope: 'all', expires_in: 3600 }, 'ci-runner');
    assert.match(made.id, /^[0-9a-f]{16}$/);
    assert.ok(!made.token.includes(made.id), 'the id is not a piece of the secret');
    assert.equal(made.name, 'ci-runner');
    assert.equal(made.scope, 'all');
    assert.equal(made.user, 'admin');
    assert.equal(made.last_used_at, null);
    assert.ok(Math.abs(made.expires_at - made.created_at - 3600) <= 2, JSON.stringify(made));
    const plain = await newToken(h.admin, {}, 'default');
    assert.equal(plain.scope, 'all', 'the default scope is today\'s');
    assert.equal(plain.name, null);

    // A use is recorded as last_used_at.
    expectStatus(await bearer(made.token, 'ci').get('/groups'), 200, 'use the token');
    const l = expectStatus(await h.admin.get('/tokens'), 200, 'list');
    assert.ok(!l.text.includes(made.token) && !l.text.includes(plain.token), 'no secret in the list');
    const row = l.json.value.find((t) => t.id === made.id);
    assert.ok(row, `listed: ${l.text}`);
    assert.deepEqual(Object.keys(row).sort(), ['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'scope', 'user']);
    assert.ok(row.last_used_at >= made.created_at, `last_used_at ${row.last_used_at}`);
    assert.ok(l.json.value.some((t) => t.id === plain.id));

    expectError(await h.admin.post('/tokens', { scope: 'root' }), 400, 'InvalidRequest');
    expectError(await h.admin.post('/tokens', { scope: 7 }), 400, 'InvalidRequest');
  });

  h.test('a metrics token reads /metrics and nothing else (403 TokenScope elsewhere)', async () => {
    const m = await newToken(h.admin, { name: 'prometheus', scope: 'metrics' }, 'metrics');
    assert.equal(m.scope, 'metrics');
    const r = await rootGet('/metrics', m.token);
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /^# (HELP|TYPE) /m);
    const b = bearer(m.token, 'scraper');
    expectStatus(await b.get('/metrics'), 200, '/api/v1/metrics');
    // Reads, writes, its own tokens, other tokens: every other call.
    expectError(await b.get('/groups'), 403, 'TokenScope');
    expectError(await b.get('/users'), 403, 'TokenScope');
    expectError(await b.get('/audit'), 403, 'TokenScope');
    expectError(await b.get('/auth/session'), 403, 'TokenScope');
    expectError(await b.put('/groups/by-metrics', {}), 403, 'TokenScope');
    expectError(await b.post('/tokens', {}), 403, 'TokenScope');
    expectError(await b.get('/tokens'), 403, 'TokenScope');
    expectError(await b.del(`/tokens/${m.id}`), 403, 'TokenScope');
    expectError(await b.get('/sessions'), 403, 'TokenScope');
    expectStatus(await h.admin.get('/groups/by-metrics'), 404, 'nothing was created');
  });

  h.test('DELETE /tokens/{id}: your own; an Owner at / anyone\'s; others get 404; audited without the secret', async () => {
    const bob = await h.newUser('bob-tok');
    const bobs = await newToken(bob.c, { name: 'bob-laptop' }, 'bob');
    const admins = await newToken(h.admin, { name: 'admin-other' }, 'admin-other');

    // bob sees his own only, and cannot list or revoke admin's.
    const bl = expectStatus(await bob.c.get('/tokens'), 200, 'bob lists');
    assert.deepEqual(bl.json.value.map((t) => t.id), [bobs.id]);
    expectError(await bob.c.get('/tokens?user=admin'), 403, 'AuthorizationFailed');
    expectError(await bob.c.del(`/tokens/${admins.id}`), 404, 'ResourceNotFound');
    expectStatus(await bearer(admins.token, 'adm').get('/groups'), 200, 'admin\'s token survived');

    // The Owner lists bob's and revokes one.
    const al = expectStatus(await h.admin.get('/tokens?user=bob-tok'), 200, 'admin lists bob\'s');
    assert.deepEqual(al.json.value.map((t) => t.id), [bobs.id]);
    expectError(await h.admin.get('/tokens?user=nobody-here'), 404, 'ResourceNotFound');
    expectStatus(await h.admin.del(`/tokens/${bobs.id}`), 204, 'admin revokes bob\'s');
    expectError(await bearer(bobs.token, 'bob-b').get('/groups'), 401, 'Unauthenticated');
    expectError(await h.admin.del(`/tokens/${bobs.id}`), 404, 'ResourceNotFound');
    expectError(await h.admin.del('/tokens/0000000000000000'), 404, 'ResourceNotFound');

    // Your own, with the token itself as the caller.
    expectStatus(await bearer(admins.token, 'self').del(`/tokens/${admins.id}`), 204, 'self-revoke');
    expectError(await bearer(admins.token, 'self2').get('/groups'), 401, 'Unauthenticated');

    const created = await auditOf('token.create');
    const revoked = await auditOf('token.revoke');
    const one = revoked.find((a) => a.target === `token:${bobs.id}`);
    assert.ok(one, JSON.stringify(revoked));
    assert.equal(one.principal, 'user:admin');
    assert.equal(one.detail.user, 'bob-tok');
    assert.ok(created.some((a) => a.target === `token:${bobs.id}` && a.principal === 'user:bob-tok'));
    const all = JSON.stringify([created, revoked]) + h.daemon.log();
    for (const t of [bobs.token, admins.token]) assert.ok(!all.includes(t), 'a secret in the audit trail or the log');
  });

  h.test('the account page lists your tokens (no secret) and revokes one', { timeout: 120000 }, async () => {
    const u = await h.newUser('pat-tok');
    const keep = await newToken(u.c, { name: 'keep-me' }, 'pat keep');
    const drop = await newToken(u.c, { name: 'drop-me', scope: 'metrics' }, 'pat drop');
    const browser = await launch();
    try {
      const { context, rec } = await newContext(browser, h);
      const p = await context.newPage();
      await signIn(p, h, u.name, u.pw);
      await p.click('#user-name');
      const row = p.locator('#tokens-table tr', { hasText: drop.id });
      await row.waitFor();
      assert.match(await row.innerText(), /drop-me[\s\S]*metrics/);
      assert.ok(await p.locator('#tokens-table tr', { hasText: keep.id }).count() === 1, 'the other token is listed');
      const html = await p.content();
      assert.ok(!html.includes(drop.token) && !html.includes(keep.token), 'a secret on the page');
      await p.click(`button[data-token="${drop.id}"]`);
      await p.click('#confirm-ok');
      await p.locator('#tokens-msg', { hasText: 'Revoked the API token' }).waitFor();
      await p.locator('#tokens-table tr', { hasText: drop.id }).waitFor({ state: 'detached' });
      assert.equal(await p.locator('#tokens-table tr', { hasText: keep.id }).count(), 1);
      assert.deepEqual([rec.errors, rec.csp, rec.foreign], [[], [], []]);
    } finally {
      await browser.close();
    }
    expectError(await bearer(drop.token, 'dropped').get('/metrics'), 401, 'Unauthenticated');
    expectStatus(await bearer(keep.token, 'kept').get('/groups'), 200, 'the other token still works');
  });

  h.test('bastion token create --scope metrics | list | revoke; login revokes the token it replaces', async () => {
    const cli = (args, opts) => runCli(h, args, opts);
    const login = () => cli(['login', h.daemon.origin, '--username', 'admin', '--password-stdin', '--insecure'],
      { input: `${h.daemon.adminPassword}\n` });
    const cfgPath = path.join(h.dir, 'xdg', 'bastion', 'config.json');

    expectCode(await login(), 0, 'login');
    const first = JSON.parse(fs.readFileSync(cfgPath, 'utf8')).token;
    h.secrets.add(first, 'first CLI token');
    const r2 = await login();
    expectCode(r2, 0, 'login again');
    assert.match(r2.stdout, /Revoked the API token this login replaces/);
    const second = JSON.parse(fs.readFileSync(cfgPath, 'utf8')).token;
    h.secrets.add(second, 'second CLI token');
    assert.notEqual(first, second);
    expectError(await bearer(first, 'old-cli').get('/groups'), 401, 'Unauthenticated', { what: 'the replaced token' });
    expectStatus(await bearer(second, 'new-cli').get('/groups'), 200, 'the new token');

    const made = await cli(['token', 'create', '--scope', 'metrics', '--name', 'prom', '-o', 'json'], { valueOut: true });
    expectCode(made, 0, 'token create');
    const t = JSON.parse(made.stdout);
    h.secrets.add(t.token, 'CLI-made metrics token');
    assert.equal(t.scope, 'metrics');
    assert.equal(t.name, 'prom');
    expectStatus(await rootGet('/metrics', t.token).then((x) => ({ ...x, json: null })), 200, 'metrics by the new token');

    const list = await cli(['token', 'list']);
    expectCode(list, 0, 'token list');
    const rows = tableRows(list.stdout);
    assert.deepEqual(rows[0], ['ID', 'NAME', 'USER', 'SCOPE', 'CREATED_AT', 'LAST_USED_AT', 'EXPIRES_AT']);
    const row = rows.find((x) => x[0] === t.id);
    assert.ok(row, list.stdout);
    assert.equal(row[3], 'metrics');
    assert.match(row[4], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    assert.match(row[5], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/, 'used once: a time');
    const js = await cli(['token', 'list', '--user', 'admin', '-o', 'json']);
    expectCode(js, 0, 'token list -o json');
    assert.ok(JSON.parse(js.stdout).some((x) => x.id === t.id && Number.isInteger(x.created_at)));

    const rv = await cli(['token', 'revoke', t.id]);
    expectCode(rv, 0, 'token revoke');
    assert.match(rv.stdout, new RegExp(`Revoked API token ${t.id}`));
    assert.equal((await rootGet('/metrics', t.token)).status, 401);
    expectCode(await cli(['token', 'revoke', t.id]), 4, 'revoke twice: not found');
    expectCode(await cli(['token', 'frob']), 2, 'unknown action');
  });
});

describe('the generated first password', () => {
  const dir = path.join(fs.mkdtempSync('/tmp/bastion-e2e-firstpw-'));
  let d = null;
  after(async () => { if (d) await d.stop(); fs.rmSync(dir, { recursive: true, force: true }); });

  h.test('without a terminal it goes to DATA/initial-admin-password (0600), the log says only where', async () => {
    d = await startDaemon(dir, { env: { BASTION_ADMIN_PASSWORD: undefined } });
    const file = path.join(d.dataDir, 'initial-admin-password');
    const st = fs.statSync(file);
    assert.equal(st.mode & 0o777, 0o600, `mode ${(st.mode & 0o777).toString(8)}`);
    const pw = fs.readFileSync(file, 'utf8').trim();
    assert.ok(pw.length >= 20, 'a generated password');
    const logs = d.log() + fs.readFileSync(d.outFile, 'utf8');
    assert.ok(!logs.includes(pw), 'the password is in the log');
    assert.match(logs, /initial-admin-password/);
    const c = new Client(d, { label: 'first' });
    await c.login('admin', pw);
  });
});
