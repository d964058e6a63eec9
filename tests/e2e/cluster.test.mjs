// Several instances on one PostgreSQL store (issue 15, SPEC §6): three
// daemons (own ports and data directories) share a throw-away cluster from
// scripts/pg.sh; sshd runs in this file's network namespace. Checked: the
// instances listed `up`; a session opened on A listed by B with
// "instance":"A"; DELETE on B ends A's terminal (closed within 2 s,
// measured); `kill -9` A: within 30 s A is `lost` and its session recorded
// as ended with `instance lost` (sessions and audit) while B's terminal
// keeps echoing; SIGTERM C: `draining`, then its row goes.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import {
  Client, expectSession, expectStatus, createTopology, addVm, connect, keyAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { startDaemon, rawGet } from './lib/daemon.mjs';
import {
  REPO_DIR, run, randomString, waitFor, untrackPid, onExitCleanup, descendantsOf,
} from './lib/util.mjs';

const h = fileHarness({
  label: 'cluster', block: 240, net: true, daemon: false, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
});
const G = 'e2e';
const PG_SH = path.join(REPO_DIR, 'scripts', 'pg.sh');

// A small PostgreSQL starter of this file's own (the lead unifies it with
// tests/e2e/lib/pg.mjs): scripts/pg.sh start prints the URL.
let pgDir = null;
let pgUrl = null;
let undoPg = null;
async function pgStart(dir) {
  pgDir = path.join(dir, 'pg');
  const r = await run('sh', [PG_SH, 'start', pgDir], { timeoutMs: 120000 });
  pgUrl = r.stdout.trim().split('\n').pop();
  assert.match(pgUrl, /^postgres(ql)?:\/\//, 'pg.sh printed a URL');
  h.secrets.add(pgUrl, 'store URL');
  undoPg = onExitCleanup(() => { try { run('sh', [PG_SH, 'stop', pgDir], { allowFail: true }); } catch { /* gone */ } });
}
async function pgStop() {
  if (!pgDir) return;
  await run('sh', [PG_SH, 'stop', pgDir], { allowFail: true, timeoutMs: 60000 });
  if (undoPg) undoPg();
  pgDir = null;
}

const daemons = {};
const clients = {};
let adminPassword;

// Every instance is given the same vault master key (SPEC §6): the first
// one's, copied into the others' data directories before they start.
let masterKey = null;

async function startInstance(name, extraEnv = {}) {
  const dir = path.join(h.dir, `inst-${name}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (masterKey) {
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
    fs.copyFileSync(masterKey, path.join(dir, 'data', 'master.key'));
    fs.chmodSync(path.join(dir, 'data', 'master.key'), 0o600);
  }
  const d = await startDaemon(dir, {
    adminPassword,
    env: {
      BASTION_STORE: pgUrl,
      BASTION_INSTANCE_NAME: name,
      ...extraEnv,
    },
  });
  daemons[name] = d;
  if (!masterKey) masterKey = path.join(d.dataDir, 'master.key');
  const c = new Client(d, { secrets: h.secrets, label: `admin@${name}` });
  await c.login('admin', adminPassword);
  clients[name] = c;
  return d;
}

function body() {
  return { bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private) };
}

// A terminal opened on instance `on`, echoing.
async function openShell(on) {
  const c = clients[on];
  const s = expectSession(await connect(c, G, 'vm1', body()), `connect on ${on}`);
  const a = await attach(daemons[on], c, s.terminal);
  assert.ok(a.ok, `attach on ${on}: ${a.status} ${a.body}`);
  a.term.send('echo READY$((40+2))\r');
  await a.term.waitForOutput('READY42', { timeoutMs: 15000 });
  return { session: s, term: a.term };
}

async function echoes(term, what) {
  const tag = randomString(8);
  const from = term.length;
  term.send(`echo ${tag}$((1+1))\r`);
  await term.waitForOutput(`${tag}2`, { timeoutMs: 10000, from });
  return what;
}

async function instances(on) {
  const r = await clients[on].get('/instances');
  expectStatus(r, 200, `GET /instances on ${on}`);
  return r.json.value;
}

function stateOf(list, name) {
  const i = list.find((x) => x.name === name);
  return i ? i.state : undefined;
}

describe('cluster: three instances on one PostgreSQL', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    await pgStart(h.dir);
    adminPassword = `Adm-${randomString(20)}`;
    h.secrets.add(adminPassword, 'admin password');
    // A first: it migrates and creates the first account; then the others.
    await startInstance('A');
    await startInstance('B');
    await startInstance('C', { BASTION_DRAIN_TIMEOUT: '3s' });
    await createTopology(clients.A, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(clients.A, { group: G, name: 'vm1', ip: h.net.addr(2) });
  }, { timeout: 240000 });

  after(async () => {
    for (const d of Object.values(daemons)) {
      try { await d.stop(10000); } catch { /* gone */ }
    }
    h.daemon = daemons.B; // for the artefacts' log tail
    await pgStop();
  }, { timeout: 120000 });

  h.test('every instance is listed up, by any of them; the shape is SPEC §6', async () => {
    for (const on of ['A', 'B', 'C']) {
      const list = await instances(on);
      assert.deepEqual(list.map((x) => x.name), ['A', 'B', 'C'], `names on ${on}`);
      for (const x of list) {
        assert.equal(x.state, 'up', `${x.name} on ${on}`);
        assert.deepEqual(Object.keys(x).sort(), ['last_seen', 'name', 'sessions', 'started_at', 'state']);
        assert.ok(x.last_seen >= x.started_at);
      }
    }
    const m = await clients.B.get('/metrics');
    expectStatus(m, 200);
    assert.ok(m.text.includes('\nbastion_instance_info{name="B"} 1\n'), 'the name in the metrics');
    // Reader at / is required: a user without roles is refused.
    const pw = `Pw-${randomString(20)}`;
    h.secrets.add(pw, 'password of nobody');
    expectStatus(await clients.A.put('/users/nobody', { password: pw }), 201);
    const nobody = new Client(daemons.B, { secrets: h.secrets, label: 'nobody@B' });
    await nobody.login('nobody', pw);
    expectStatus(await nobody.get('/instances'), 403);
  });

  h.test('a second process with a live instance\'s name refuses to start, and says why', { timeout: 30000 }, async () => {
    const dir = path.join(h.dir, 'inst-A2');
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
    fs.copyFileSync(masterKey, path.join(dir, 'data', 'master.key'));
    fs.chmodSync(path.join(dir, 'data', 'master.key'), 0o600);
    await assert.rejects(startDaemon(dir, {
      adminPassword,
      env: { BASTION_STORE: pgUrl, BASTION_INSTANCE_NAME: 'A' },
    }), /another instance named 'A' is running on this store/);
  });

  h.test('a session opened on A is listed by B with "instance":"A"; DELETE on B closes it within 2 s', { timeout: 60000 }, async () => {
    const { session, term } = await openShell('A');
    let onB; let row;
    // The store learns of the attach on A's worker pool, a moment later.
    await waitFor(async () => {
      onB = (await clients.B.get('/sessions')).json.value;
      row = onB.find((x) => x.id === session.id);
      return row && row.state === 'attached';
    }, { timeoutMs: 5000, what: 'B lists A\'s session as attached' });
    assert.equal(row.instance, 'A');
    assert.equal(row.kind, 'terminal');
    assert.equal(row.user, 'admin');
    const onA = (await clients.A.get('/sessions')).json.value.find((x) => x.id === session.id);
    assert.equal(onA.instance, 'A', 'the holder lists it with its own name');
    assert.equal((await instances('C')).find((x) => x.name === 'A').sessions, 1);

    const t0 = Date.now();
    const r = await clients.B.del(`/sessions/${session.id}`);
    expectStatus(r, 204, 'DELETE on B');
    await term.waitClosed({ timeoutMs: 5000 });
    const ms = Date.now() - t0;
    process.stderr.write(`[e2e cluster] DELETE on B -> closed on A's terminal: ${ms} ms\n`);
    assert.ok(ms <= 2000, `closed after ${ms} ms`);
    const closed = term.controls.find((m) => m.type === 'closed');
    assert.ok(closed, `closed message: ${JSON.stringify(term.controls)}`);
    assert.equal(closed.reason, 'disconnected by admin');
    // A second DELETE, anywhere: it is gone.
    await waitFor(async () => (await clients.C.del(`/sessions/${session.id}`)).status === 404,
      { timeoutMs: 5000, what: 'the ended session is 404 on C' });
    const created = (await clients.B.get('/audit?action=connect')).json.value
      .find((x) => x.detail && x.detail.session === session.id);
    assert.equal(created.detail.instance, 'A', 'the connect record names the instance');
    let ended;
    await waitFor(async () => {
      ended = (await clients.B.get('/audit?action=session.end')).json.value
        .find((x) => x.detail && x.detail.session === session.id);
      return ended;
    }, { timeoutMs: 5000, what: 'the session.end record' });
    assert.equal(ended.detail.instance, 'A', 'so does the end');
    const audit = (await clients.C.get('/audit?action=session.disconnect')).json.value;
    assert.ok(audit.some((x) => x.detail && x.detail.session === session.id && x.detail.instance === 'A'),
      'session.disconnect recorded with the holder');
  });

  h.test('disabling a user on B ends that user\'s terminal on A', { timeout: 60000 }, async () => {
    const pw = `Pw-${randomString(20)}`;
    h.secrets.add(pw, 'password of uma');
    expectStatus(await clients.A.put('/users/uma', { password: pw }), 201);
    expectStatus(await clients.A.put('/role-assignments/e2e-uma', { principal: 'user:uma', role: 'Reader', scope: ids.group(G) }), [200, 201]);
    const uma = new Client(daemons.A, { secrets: h.secrets, label: 'uma@A' });
    await uma.login('uma', pw);
    const s = expectSession(await connect(uma, G, 'vm1', body()), 'connect as uma');
    const a = await attach(daemons.A, uma, s.terminal);
    assert.ok(a.ok);
    await echoes(a.term, 'uma echoes');
    const t0 = Date.now();
    expectStatus(await clients.B.put('/users/uma', { disabled: true }), 200, 'disable on B');
    await a.term.waitClosed({ timeoutMs: 5000 });
    process.stderr.write(`[e2e cluster] user disabled on B -> closed on A: ${Date.now() - t0} ms\n`);
    const closed = a.term.controls.find((m) => m.type === 'closed');
    assert.match(closed.reason, /your account was disabled by admin/);
  });

  h.test('the store frozen for 15 s: healthz 503 once the lease is past, terminals echo, nobody is marked lost afterwards', { timeout: 90000 }, async () => {
    const b = await openShell('B');
    const pm = Number(fs.readFileSync(path.join(pgDir, 'pid'), 'utf8').trim());
    const pids = [pm, ...descendantsOf(pm)];
    const signal = (sig) => { for (const p of pids) { try { process.kill(p, sig); } catch { /* gone */ } } };
    const t0 = Date.now();
    signal('SIGSTOP');
    try {
      await waitFor(async () => {
        const r = await rawGet(daemons.B.port, '/healthz', 2000);
        return r.status === 503 && /store unreachable/.test(r.text);
      }, { timeoutMs: 20000, intervalMs: 250, what: 'B\'s healthz 503' });
      const ms = Date.now() - t0;
      process.stderr.write(`[e2e cluster] store frozen -> healthz 503: ${ms} ms\n`);
      // The store's own probe (about a second, plus the 4.5 s a frozen
      // server is waited for) turns it before the lease (10 s) runs out;
      // the lease's fail-closed is the bound.
      assert.ok(ms <= 12000, `within the lease and a beat (${ms} ms)`);
      await echoes(b.term, 'B echoes while the store is frozen');
      while (Date.now() - t0 < 15000) await new Promise((r) => setTimeout(r, 200));
    } finally {
      signal('SIGCONT');
    }
    await waitFor(async () => (await rawGet(daemons.B.port, '/healthz', 2000)).status === 200,
      { timeoutMs: 15000, intervalMs: 250, what: 'B healthy again' });
    // A lease and a beat later: every instance renewed its lease, none
    // was taken for lost by one that came back first.
    await new Promise((r) => setTimeout(r, 13000));
    for (const on of ['A', 'B', 'C']) {
      assert.deepEqual((await instances(on)).map((x) => x.state), ['up', 'up', 'up'], `states on ${on}`);
    }
    const list = (await clients.A.get('/sessions')).json.value;
    assert.ok(list.some((x) => x.id === b.session.id && x.instance === 'B'), 'B\'s session is still listed');
    await echoes(b.term, 'B echoes after');
    b.term.close();
  });

  h.test('kill -9 A: within 30 s A is lost, its session ended "instance lost" (sessions, audit); B\'s terminal still echoes', { timeout: 90000 }, async () => {
    const a = await openShell('A');
    const b = await openShell('B');
    const t0 = Date.now();
    process.kill(daemons.A.pid, 'SIGKILL');
    untrackPid(daemons.A.pid);
    await waitFor(async () => stateOf(await instances('B'), 'A') === 'lost',
      { timeoutMs: 30000, intervalMs: 250, what: 'A marked lost' });
    process.stderr.write(`[e2e cluster] kill -9 A -> A lost: ${Date.now() - t0} ms\n`);
    assert.ok(Date.now() - t0 <= 30000);
    const list = (await clients.B.get('/sessions')).json.value;
    assert.ok(!list.some((x) => x.id === a.session.id), 'A\'s session is no longer listed');
    assert.ok(list.some((x) => x.id === b.session.id && x.instance === 'B'), 'B\'s is');
    const ends = (await clients.C.get('/audit?action=session.end')).json.value
      .filter((x) => x.detail && x.detail.session === a.session.id);
    assert.equal(ends.length, 1, `one session.end for A's session: ${JSON.stringify(ends)}`);
    assert.equal(ends[0].detail.reason, 'instance lost');
    assert.equal(ends[0].detail.instance, 'A');
    assert.equal((await instances('C')).find((x) => x.name === 'A').sessions, 0);
    await echoes(b.term, 'B still echoes');
    // B's session is untouched by the reaping.
    assert.equal((await clients.B.get('/audit?action=session.end')).json.value
      .filter((x) => x.detail && x.detail.session === b.session.id).length, 0);
    b.term.close();
  });

  h.test('SIGTERM C: draining at once (healthz 503, connects refused), its terminal goes on for the drain timeout, then is told; exit 0; its row goes', { timeout: 60000 }, async () => {
    const c = daemons.C;
    const { term } = await openShell('C');
    const t0 = Date.now();
    c.proc.kill('SIGTERM');
    await waitFor(async () => {
      const r = await rawGet(c.port, '/healthz', 2000);
      return r.status === 503 && /draining/.test(r.text);
    }, { timeoutMs: 2000, intervalMs: 50, what: 'C\'s healthz 503' });
    process.stderr.write(`[e2e cluster] SIGTERM C -> healthz 503: ${Date.now() - t0} ms\n`);
    await waitFor(async () => stateOf(await instances('B'), 'C') === 'draining',
      { timeoutMs: 2000, intervalMs: 50, what: 'C draining on B' });
    const r = await connect(clients.C, G, 'vm1', body());
    expectStatus(r, 503, 'a connect on a draining instance');
    assert.equal(r.json.error.code, 'ServiceUnavailable');
    await echoes(term, 'C\'s terminal goes on while draining');
    await term.waitClosed({ timeoutMs: 10000 });
    const ms = Date.now() - t0;
    assert.ok(ms >= 2500, `closed after the 3 s drain timeout, not before (${ms} ms)`);
    assert.equal(term.controls.find((m) => m.type === 'closed').reason, 'the bastion is shutting down');
    // Its own exit (a second SIGTERM would cut it short).
    await waitFor(() => c.exit, { timeoutMs: 15000, what: 'C exits' });
    assert.equal(c.exit.code, 0, `C exited ${JSON.stringify(c.exit)}`);
    assert.match(c.log(), /received SIGTERM: draining/);
    const list = await instances('B');
    assert.equal(stateOf(list, 'C'), undefined, 'a clean stop removes the row');
    await assert.rejects(rawGet(c.port, '/healthz', 2000), 'C no longer accepts connections');
  });
});

// SQLite: one instance per data directory, named HOSTNAME:PORT by default.
describe('cluster: one instance on SQLite', () => {
  let d; let c;
  before(async () => {
    const dir = path.join(h.dir, 'sqlite');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    d = await startDaemon(dir, { adminPassword });
    c = new Client(d, { secrets: h.secrets, label: 'admin@sqlite' });
    await c.login('admin', adminPassword);
  }, { timeout: 60000 });
  after(async () => { if (d) await d.stop(10000); }, { timeout: 30000 });

  h.test('GET /instances lists this one, named HOSTNAME:PORT; its sessions carry that name', { timeout: 60000 }, async () => {
    const list = (await c.get('/instances')).json.value;
    assert.equal(list.length, 1);
    assert.equal(list[0].name, `${os.hostname()}:${d.port}`);
    assert.equal(list[0].state, 'up');
    await createTopology(c, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(c, { group: G, name: 'vm1', ip: h.net.addr(2) });
    const s = expectSession(await connect(c, G, 'vm1', body()), 'connect on SQLite');
    const row = (await c.get('/sessions')).json.value.find((x) => x.id === s.id);
    assert.equal(row.instance, list[0].name);
    assert.equal(row.kind, 'terminal');
    expectStatus(await c.del(`/sessions/${s.id}`), 204);
  });

  h.test('SIGTERM: exit 0 by itself (under ASan: no leak)', { timeout: 30000 }, async () => {
    const r = await d.stop(10000);
    assert.equal(r.code, 0, JSON.stringify(r));
  });
});

after(() => h.down(), { timeout: 60000 });
