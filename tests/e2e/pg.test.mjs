// The PostgreSQL store (issue 15, items 1 and 4; SPEC §6): a daemon started
// with BASTION_STORE=postgresql://… on a throw-away cluster (lib/pg.mjs,
// scripts/pg.sh) runs the main journeys — first admin sign-in, users,
// resources, roles, a vault with its secrets and deleted-vault retention,
// connects to a real sshd with a password and a vault key (host key
// recorded once), the terminal, DELETE /sessions/{id}, the audit trail —
// and survives PostgreSQL frozen (SIGSTOP: connections open, nothing
// answers): requests answer 503 within 5 s, /healthz turns 503 and back, an
// open terminal keeps echoing. PostgreSQL stopped for 20 s and started
// again is in cluster.test.mjs, with three instances behind HAProxy.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import {
  Client, expectSession, expectStatus, expectError, createTopology, addVm, connect, keyAuth, passwordAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { startDaemon, rawGet, BASTION_BIN } from './lib/daemon.mjs';
import { startPg } from './lib/pg.mjs';
import { randomString, waitFor, run } from './lib/util.mjs';

const h = fileHarness({
  label: 'pg', block: 250, net: true, daemon: false, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
});
const G = 'e2epg';
const KV = `/groups/${G}/vaults/kv`;
const sec = (vault, name = '') => `${vault}/secrets${name ? `/${name}` : ''}`;
let pg;

// A client that shares admin's sign-in but does not scan answers for
// secrets: vault reads answer with the values on purpose.
function plainClient(from) {
  const c = new Client(h.daemon, { label: `${from.label}-plain` });
  c.cookies = from.cookies;
  c.csrf = from.csrf;
  return c;
}

async function openShell(client, auth, marker) {
  const s = expectSession(await connect(client, G, 'vm1', {
    bastion: ids.bastion(G, 'b1'), username: h.user.name, auth,
  }), `connect (${auth.type})`);
  const a = await attach(h.daemon, client, s.terminal);
  assert.ok(a.ok, `attach: ${a.status} ${a.body}`);
  a.term.send(`echo ${marker}$((40+2))\r`);
  await a.term.waitForOutput(`${marker}42`, { timeoutMs: 15000 });
  return { session: s, term: a.term };
}

async function echoes(term, marker, timeoutMs = 5000) {
  const from = term.length;
  term.send(`echo ${marker}$((1+1))\r`);
  await term.waitForOutput(`${marker}2`, { timeoutMs, from });
}

describe('PostgreSQL store', () => {
  before(async () => {
    await h.up();
    pg = await startPg(h.dir);
    h.secrets.add(pg.password, 'PostgreSQL password');
    // On a shared store SIGTERM waits drain_timeout before it drains (a
    // rolling upgrade, scaling.md); the harness's SIGTERM test wants an exit
    // within 10 s.
    h.daemon = await startDaemon(h.dir, { store: pg.url, env: { BASTION_DRAIN_TIMEOUT: '2s' } });
    h.secrets.add(h.daemon.adminPassword, 'admin password');
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
  }, { timeout: 180000 });
  after(async () => {
    try { await h.down(); } finally { if (pg) await pg.stop(); }
  }, { timeout: 60000 });

  h.test('the first admin signs in; the schema is PostgreSQL\'s', async () => {
    h.admin = h.client('admin');
    await h.admin.login('admin', h.daemon.adminPassword);
    assert.equal(await pg.query("SELECT count(*) FROM users WHERE name = 'admin'"), '1');
    const version = await pg.query('SELECT version FROM schema_version');
    assert.match(version, /^[1-9][0-9]*$/);
    // serve --check-config reaches the same store and accepts its schema
    const chk = await run(BASTION_BIN, ['serve', '--check-config', '--data', h.daemon.dataDir],
      { env: { ...process.env, BASTION_STORE: pg.url }, allowFail: true });
    assert.equal(chk.code, 0, chk.stderr);
    h.secrets.scan(chk.stdout + chk.stderr, 'check-config output');
    // ... and refuses one newer than the binary, or one it cannot reach
    await pg.query('UPDATE schema_version SET version = 9999');
    try {
      const newer = await run(BASTION_BIN, ['serve', '--check-config', '--data', h.daemon.dataDir],
        { env: { ...process.env, BASTION_STORE: pg.url }, allowFail: true });
      assert.equal(newer.code, 1, newer.stderr);
      assert.match(newer.stderr, new RegExp(`schema version 9999, newer than this binary knows \\(${version}\\)`));
      const exp = await run(BASTION_BIN, ['audit', 'export'], { env: { ...process.env, BASTION_STORE: pg.url }, allowFail: true });
      assert.equal(exp.code, 1, exp.stderr);
      assert.match(exp.stderr, /newer than this binary knows/);
    } finally {
      await pg.query(`UPDATE schema_version SET version = ${Number(version)}`);
    }
    const gone = pg.url.replace(`:${pg.port}/`, ':1/');
    const unreachable = await run(BASTION_BIN, ['serve', '--check-config', '--data', h.daemon.dataDir],
      { env: { ...process.env, BASTION_STORE: gone }, allowFail: true, timeoutMs: 15000 });
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.match(unreachable.stderr, /PostgreSQL store \(store.url\) cannot be reached/);
    h.secrets.scan(unreachable.stdout + unreachable.stderr, 'check-config output');
  });

  h.test('users, groups, networks, VMs, bastions and role assignments: PUT, GET, DELETE', async () => {
    const pw = `Pw-${randomString(16)}`;
    h.secrets.add(pw, 'password of pgreader');
    expectStatus(await h.admin.put('/users/pgreader', { password: pw }), 201, 'create user');
    expectStatus(await h.admin.put('/users/pgreader', { password: pw }), 200, 'same PUT again');
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm1', ip: h.net.addr(2) });
    await addVm(h.admin, { group: G, name: 'vm-gone', ip: h.net.addr(3) });
    const vm = expectStatus(await h.admin.get(ids.vm(G, 'vm1')), 200, 'GET vm');
    assert.equal(vm.json.id, ids.vm(G, 'vm1'));
    assert.equal(vm.json.nic, ids.nic(G, 'vm1-nic'));
    const b = expectStatus(await h.admin.get(ids.bastion(G, 'b1')), 200, 'GET bastion');
    assert.deepEqual(b.json.networks, [ids.network(G, 'n1')]);
    expectError(await h.admin.del(ids.network(G, 'n1')), 409, 'ResourceInUse');
    expectStatus(await h.admin.del(ids.vm(G, 'vm-gone')), 204, 'DELETE vm');
    expectError(await h.admin.get(ids.vm(G, 'vm-gone')), 404, 'ResourceNotFound');
    expectStatus(await h.admin.put('/role-assignments/pg-reader',
      { principal: 'user:pgreader', role: 'Reader', scope: ids.group(G) }), 201, 'assign');
    const reader = h.client('pgreader');
    await reader.login('pgreader', pw);
    const list = expectStatus(await reader.get(`/groups/${G}/vms`), 200, 'Reader lists VMs');
    assert.deepEqual(list.json.value.map((v) => v.id), [ids.vm(G, 'vm1')]);
    expectError(await reader.put(ids.vm(G, 'nope'), { nic: ids.nic(G, 'vm1-nic') }), 403, 'AuthorizationFailed');
    expectStatus(await h.admin.del('/role-assignments/pg-reader'), 204, 'unassign');
    expectStatus(await reader.get(ids.vm(G, 'vm1')), [403, 404], 'no role, no VM');
    expectStatus(await h.admin.del('/users/pgreader'), 204, 'delete user');
    assert.equal(await pg.query("SELECT count(*) FROM users WHERE name = 'pgreader'"), '0');
    // The read cache served some of this (the admin's session, the lists)
    // and says so in /metrics.
    const m = expectStatus(await h.admin.get('/metrics'), 200, 'metrics').text;
    const metric = (re) => Number((re.exec(m) || [])[1]);
    assert.equal(metric(/^bastion_store_cache_up (\d+)$/m), 1, 'the cache listens');
    assert.ok(metric(/^bastion_store_cache_lookups_total\{result="hit"\} (\d+)$/m) > 0, 'hits counted');
    assert.ok(metric(/^bastion_store_cache_lookups_total\{result="miss"\} (\d+)$/m) > 0, 'misses counted');
    assert.ok(metric(/^bastion_store_cache_entries (\d+)$/m) >= 0, 'entries reported');
  });

  h.test('a vault: secrets with versions, delete and recover; a deleted vault recovered, then purged', async () => {
    expectStatus(await h.admin.put(KV, { soft_delete_retention_days: 30 }), 201, 'create vault');
    expectStatus(await h.admin.put(`${KV}/access-policies/user:admin`,
      { secret_permissions: ['list', 'get', 'set', 'delete'] }), 201, 'policy');
    const a = plainClient(h.admin);
    const p1 = expectStatus(await a.put(sec(KV, 'db'), { value: 'first-value' }), 201);
    const p2 = expectStatus(await a.put(sec(KV, 'db'), { value: 'second-value' }), 200);
    assert.equal(p2.json.versions, 2);
    assert.equal((await a.get(sec(KV, 'db'))).json.value, 'second-value');
    assert.equal((await a.get(`${sec(KV, 'db')}?version=${p1.json.version}`)).json.value, 'first-value');
    const vers = await a.get(`${sec(KV, 'db')}/versions`);
    assert.deepEqual(vers.json.value.map((v) => v.version), [p2.json.version, p1.json.version]);
    // nothing in plaintext in the database
    assert.equal(await pg.query(
      "SELECT count(*) FROM vault_secret_versions WHERE position(convert_to('second-value', 'UTF8') in sealed) > 0"), '0');
    expectStatus(await a.del(sec(KV, 'db')), 204, 'soft delete');
    expectError(await a.get(sec(KV, 'db')), 404, 'SecretNotFound');
    expectStatus(await a.post(`${sec(KV, 'db')}/recover`, {}), 200, 'recover');
    assert.equal((await a.get(sec(KV, 'db'))).json.value, 'second-value');
    // the deleted vault: kept, its name reserved, recovered whole, purged
    const DV = `/groups/${G}/deleted-vaults/kv`;
    expectStatus(await h.admin.del(KV), 204, 'delete vault');
    const dl = expectStatus(await h.admin.get(`/groups/${G}/deleted-vaults`), 200);
    assert.equal(dl.json.value.length, 1);
    assert.equal(dl.json.value[0].secrets, 1);
    expectError(await h.admin.put(KV, {}), 409, 'Conflict');
    expectStatus(await h.admin.post(`${DV}/recover`, {}), 200, 'recover vault');
    assert.equal((await a.get(sec(KV, 'db'))).json.value, 'second-value');
    expectStatus(await h.admin.del(KV), 204, 'delete again');
    expectStatus(await h.admin.del(DV), 204, 'purge');
    expectError(await h.admin.get(DV), 404, 'ResourceNotFound');
    assert.equal(await pg.query('SELECT count(*) FROM deleted_vault_secret_versions'), '0');
    // one for the connect test: the private key in a vault
    expectStatus(await h.admin.put(KV, {}), 201, 'a new vault of that name');
    expectStatus(await h.admin.put(`${KV}/access-policies/user:admin`, { secret_permissions: ['get', 'set'] }), 201);
    expectStatus(await a.put(sec(KV, 'key'), { value: h.keys['ed25519-openssh'].private }), 201);
  });

  h.test('connect with a password and a vault key; the host key recorded once; DELETE /sessions/{id}', { timeout: 90000 }, async () => {
    assert.ok(h.user.password, 'the test user has a password');
    const one = await openShell(h.admin, passwordAuth(h.user.password), 'PW');
    assert.equal(await pg.query(`SELECT count(*) FROM host_keys WHERE vm_id = '${ids.vm(G, 'vm1')}'`), '1');
    const two = await openShell(h.admin, { type: 'vault-key', vault: KV, secret: 'key' }, 'VK');
    assert.equal(await pg.query(`SELECT count(*) FROM host_keys WHERE vm_id = '${ids.vm(G, 'vm1')}'`), '1');
    const live = expectStatus(await h.admin.get('/sessions'), 200);
    assert.deepEqual(live.json.value.map((s) => s.id).sort(), [one.session.id, two.session.id].sort());
    await waitFor(async () => await pg.query(`SELECT count(*) FROM term_sessions WHERE ended_at IS NULL`) === '2',
      { timeoutMs: 5000, what: 'both sessions recorded as open' });
    for (const x of [one, two]) {
      expectStatus(await h.admin.del(`/sessions/${x.session.id}`), [200, 204], 'DELETE /sessions/{id}');
      await x.term.waitClosed({ timeoutMs: 5000 });
    }
    await waitFor(async () => await pg.query('SELECT count(*) FROM term_sessions WHERE ended_at IS NULL') === '0',
      { timeoutMs: 5000, what: 'both sessions recorded as ended' });
    const audit = expectStatus(await h.admin.get('/audit?action=session.end'), 200);
    const ended = audit.json.value.map((r) => r.detail && r.detail.session);
    assert.ok(ended.includes(one.session.id) && ended.includes(two.session.id), JSON.stringify(audit.json.value));
  });

  h.test('PostgreSQL frozen (SIGSTOP, connections open, nothing answers): 503 within 5 s, none hangs', { timeout: 90000 }, async () => {
    const kept = await openShell(h.admin, passwordAuth(h.user.password), 'FRZ');
    pg.freeze();
    const frozenAt = Date.now();
    let slowest = 0;
    try {
      // The instance's read cache (store/pg_cache.c) may answer what it
      // holds for up to 2 s after the store last answered (a frozen
      // server does not close its connections); past that, 503.
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const r = await h.admin.get(`/groups/${G}/vms`);
        slowest = Math.max(slowest, Date.now() - t0);
        if (t0 - frozenAt < 2000 && r.status === 200) continue;
        expectError(r, 503, 'ServiceUnavailable');
      }
      await waitFor(async () => (await rawGet(h.daemon.port, '/healthz')).status === 503,
        { timeoutMs: 8000, what: '/healthz 503 while the store does not answer' });
      const t0 = Date.now();
      expectError(await h.admin.get(`/groups/${G}/vms`), 503, 'ServiceUnavailable');
      slowest = Math.max(slowest, Date.now() - t0);
      await echoes(kept.term, 'FROZEN');
    } finally {
      pg.thaw();
    }
    assert.ok(slowest < 5000, `every request answered within 5 s; slowest ${slowest} ms`);
    await waitFor(async () => (await rawGet(h.daemon.port, '/healthz')).status === 200,
      { timeoutMs: 10000, what: '/healthz 200 once it answers again' });
    expectStatus(await h.admin.get(`/groups/${G}/vms`), 200, 'the API answers again');
    expectStatus(await h.admin.del(`/sessions/${kept.session.id}`), [200, 204]);
    await kept.term.waitClosed({ timeoutMs: 5000 });
  });

  h.test('bastion audit export --store reads the shared trail', async () => {
    const r = await run(BASTION_BIN, ['audit', 'export', '--action', 'session.end'],
      { env: { ...process.env, BASTION_STORE: pg.url } });
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 2, r.stdout); // the two sessions of the connect test, at least
    assert.ok(lines.every((l) => l.action === 'session.end'));
    h.secrets.scan(r.stdout + r.stderr, 'audit export output');
  });

  h.test('no secret (the store URL\'s password included) in any answer or log', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit();
});
