// The audit trail (issue 6): what is recorded (sign-ins, connect attempts
// with result code and auth type, session ends with duration and bytes,
// resource and role changes, disconnects), GET /audit with filters and
// paging, the JSON line on stderr for each record, `bastion audit export`,
// and no secret anywhere in it.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import {
  expectSession, expectStatus, expectError, createTopology, addVm, connect, keyAuth, passwordAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { BASTION_BIN } from './lib/daemon.mjs';
import { run, randomString, waitFor } from './lib/util.mjs';

const h = fileHarness({
  label: 'audit', block: 120, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
});
const G = 'e2e';
const READER = 'e2eauditreader';
let readerPw;
let reader;
let sessionId;

function body(over = {}) {
  return {
    bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private), ...over,
  };
}

async function all(query = '') {
  const out = [];
  let cursor = null;
  for (let i = 0; i < 100; i++) {
    const sep = query ? '&' : '';
    const r = expectStatus(await h.admin.get(`/audit?${query}${cursor ? `${sep}cursor=${cursor}` : ''}`), 200);
    out.push(...r.json.value);
    if (!r.json.next) return out;
    cursor = r.json.next;
  }
  throw new Error('paging did not end');
}

// The {"audit":{...}} lines the daemon wrote to stderr.
function stderrRecords() {
  return h.daemon.log().split('\n').filter((l) => l.startsWith('{"audit":')).map((l) => JSON.parse(l).audit);
}

describe('audit', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm1', ip: h.net.addr(2) });
    readerPw = `Rdr-${randomString(16)}`;
    h.secrets.add(readerPw, 'reader password');
    expectStatus(await h.admin.put(`/users/${READER}`, { password: readerPw }), [200, 201]);
    expectStatus(await h.admin.put('/role-assignments/e2e-audit-reader',
      { principal: `user:${READER}`, role: 'Reader', scope: ids.group(G) }), [200, 201]);
    reader = h.client(READER);
    // a failed sign-in, then a good one
    const bad = await reader.post('/auth/login', { username: READER, password: `Wrong-${randomString(12)}` });
    expectError(bad, 401, 'Unauthenticated');
    await reader.login(READER, readerPw);

    // a session that runs, then ends; refused connects of several kinds
    const s = expectSession(await connect(reader, G, 'vm1', body()));
    sessionId = s.id;
    const a = await attach(h.daemon, reader, s.terminal);
    assert.ok(a.ok, `attach ${a.status}`);
    a.term.send('echo AUDIT$((1+1))\r');
    await a.term.waitForOutput('AUDIT2', { timeoutMs: 15000 });
    a.term.send('exit 3\r');
    await a.term.waitForControl('exit', { timeoutMs: 10000 });
    a.term.close();
    const wrongPw = `Wrong-ssh-${randomString(12)}`;
    h.secrets.add(wrongPw, 'wrong ssh password');
    expectError(await connect(reader, G, 'vm1', body({ auth: passwordAuth(wrongPw) })), 401, 'SshAuthenticationFailed');
    expectError(await connect(reader, G, 'vm1', body({ auth: keyAuth('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAnotakeyatallnotakeyatall\n-----END OPENSSH PRIVATE KEY-----\n') })),
      400, 'InvalidPrivateKey');
    const nobodyPw = `Nob-${randomString(16)}`;
    h.secrets.add(nobodyPw, 'nobody password');
    expectStatus(await h.admin.put('/users/e2enobody', { password: nobodyPw }), [200, 201]);
    const nobody = h.client('e2enobody');
    await nobody.login('e2enobody', nobodyPw);
    expectError(await connect(nobody, G, 'vm1', body()), 403, 'AuthorizationFailed');
    // an admin disconnect
    const s2 = expectSession(await connect(reader, G, 'vm1', body()));
    expectStatus(await h.admin.del(`/sessions/${s2.id}`), 204);
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('sign-ins, success and failure, are recorded', async () => {
    const recs = await all(`action=auth.login&principal=${encodeURIComponent(`user:${READER}`)}`);
    assert.ok(recs.some((r) => r.result === 'success'), JSON.stringify(recs));
    assert.ok(recs.some((r) => r.result === 'failure'), JSON.stringify(recs));
  });

  h.test('connect attempts carry the result code and the auth type', async () => {
    const recs = await all('action=connect');
    const by = (code) => recs.filter((r) => r.result === code);
    const created = by('Created').find((r) => r.detail.session === sessionId);
    assert.ok(created, JSON.stringify(recs));
    assert.equal(created.principal, `user:${READER}`);
    assert.equal(created.target, ids.vm(G, 'vm1'));
    assert.equal(created.detail.auth_type, 'ssh-key');
    assert.equal(created.detail.source, '127.0.0.1');
    assert.equal(by('SshAuthenticationFailed')[0]?.detail.auth_type, 'password', JSON.stringify(recs));
    assert.equal(by('InvalidPrivateKey')[0]?.detail.auth_type, 'ssh-key', JSON.stringify(recs));
    const denied = by('AuthorizationFailed')[0];
    assert.ok(denied, JSON.stringify(recs));
    assert.equal(denied.principal, 'user:e2enobody');
  });

  h.test('session end: reason, duration and bytes; the disconnect names who', async () => {
    const ends = await all('action=session.end');
    const end = ends.find((r) => r.detail.session === sessionId);
    assert.ok(end, JSON.stringify(ends));
    assert.equal(end.detail.reason, 'the shell exited');
    assert.ok(Number.isInteger(end.detail.duration_s));
    assert.ok(end.detail.bytes_to_vm > 0 && end.detail.bytes_from_vm > 0, JSON.stringify(end));
    const disc = await all('action=session.disconnect');
    assert.equal(disc.length, 1, JSON.stringify(disc));
    assert.equal(disc[0].principal, 'user:admin');
    assert.equal(disc[0].detail.user, READER);
    assert.ok(ends.some((r) => r.detail.reason === 'disconnected by admin'));
  });

  h.test('resource and role changes are recorded', async () => {
    const res = await all(`action=resource.put&target=${encodeURIComponent(ids.vm(G, 'vm1'))}`);
    assert.equal(res.length, 1, JSON.stringify(res));
    assert.equal(res[0].principal, 'user:admin');
    const roles = (await all('principal=user%3Aadmin')).filter((r) => r.action.startsWith('role'));
    assert.ok(roles.length >= 1, 'a role assignment change is audited');
  });

  h.test('filters: result, since/until (unix and RFC 3339); bad parameters are 400', async () => {
    const failures = await all('result=failure');
    assert.ok(failures.length >= 1 && failures.every((r) => r.result === 'failure'));
    const everything = await all();
    const newest = everything[0];
    const since = await all(`since=${newest.ts}`);
    assert.ok(since.length >= 1 && since.every((r) => r.ts >= newest.ts));
    const iso = new Date((newest.ts + 1) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    const until = await all(`until=${encodeURIComponent(iso)}`);
    assert.equal(until.length, everything.length);
    assert.equal((await all('until=1')).length, 0);
    expectError(await h.admin.get('/audit?limit=1001'), 400, 'InvalidRequest', { messageIncludes: 'limit' });
    expectError(await h.admin.get('/audit?limit=0'), 400, 'InvalidRequest');
    expectError(await h.admin.get('/audit?colour=blue'), 400, 'InvalidRequest', { messageIncludes: 'colour' });
    expectError(await h.admin.get('/audit?since=yesterday'), 400, 'InvalidRequest', { messageIncludes: 'since' });
  });

  h.test('paging: newest first, pages of limit, "next" until the end, nothing twice', async () => {
    const everything = await all();
    assert.ok(everything.length > 10);
    const paged = [];
    let next = null;
    let pages = 0;
    do {
      const r = expectStatus(await h.admin.get(`/audit?limit=3${next ? `&cursor=${next}` : ''}`), 200);
      assert.ok(r.json.value.length <= 3);
      paged.push(...r.json.value);
      next = r.json.next;
      pages++;
    } while (next && pages < 200);
    assert.deepEqual(paged.map((r) => r.id), everything.map((r) => r.id));
    for (let i = 1; i < paged.length; i++) assert.ok(paged[i - 1].id > paged[i].id, 'newest first');
  });

  h.test('only an Owner at / may read it', async () => {
    expectError(await reader.get('/audit'), 403, 'AuthorizationFailed');
    expectError(await h.client('anon').get('/audit'), 401, 'Unauthenticated');
  });

  h.test('every record is also one JSON line on stderr', async () => {
    const everything = await all();
    await waitFor(() => stderrRecords().length >= everything.length, { timeoutMs: 5000, what: 'stderr lines' });
    const lines = new Map(stderrRecords().map((r) => [r.id, r]));
    for (const rec of everything) assert.deepEqual(lines.get(rec.id), rec, `record ${rec.id} on stderr`);
  });

  h.test('bastion audit export prints the trail as JSON lines, oldest first; --since filters', async () => {
    const everything = await all();
    const r = await run(BASTION_BIN, ['audit', 'export', '--data', h.daemon.dataDir], { timeoutMs: 20000 });
    assert.equal(r.code, 0, r.stderr);
    h.secrets.scan(r.stdout, 'audit export');
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= everything.length);
    assert.deepEqual(lines.slice(0, everything.length), [...everything].reverse());
    const cut = everything[0].ts;
    const r2 = await run(BASTION_BIN, ['audit', 'export', '--data', h.daemon.dataDir, '--since', String(cut)], { timeoutMs: 20000 });
    assert.equal(r2.code, 0, r2.stderr);
    const l2 = r2.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(l2.length >= 1 && l2.every((x) => x.ts >= cut));
    const bad = await run(BASTION_BIN, ['audit', 'export'], { allowFail: true });
    assert.equal(bad.code, 2);
  });

  h.test('no password or key in any audit record, response or log line', async () => {
    const everything = await all();
    h.secrets.scan(JSON.stringify(everything), 'GET /audit records');
    h.assertNoLeaks();
  });

  h.testCleanExit();
});
