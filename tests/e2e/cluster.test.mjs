// Several instances on one PostgreSQL store, behind HAProxy (issue 15 items
// 2 and 4, SPEC §6): three daemons (own ports and data directories) share a
// throw-away cluster (lib/pg.mjs); a round-robin HAProxy in TCP mode, no
// affinity, PROXY v2, health-checks each one's /healthz over TLS, redispatches a
// connection a dead server refused, and keeps the instances as backups for
// when all are marked down (lib/haproxy.mjs); sshd runs in this file's
// network namespace. Checked: the instances listed `up`; a session opened
// on A listed by B with "instance":"A"; DELETE on B ends A's terminal
// within 2 s; two instances creating the same group, role assignment and a
// NIC's address, and recording the same host key, at the same moment (one
// wins, the other gets a single instance's second answer, one row);
// keyboard-interactive answers through the balancer reach the instance
// where the connect waits; PostgreSQL stopped for 20 s (503 through the
// balancer within 5 s, terminals go on, the ends written once after);
// `kill -9` A (its users reconnect through the balancer at once, A lost and
// its session ended `instance lost` within 30 s, the others untouched);
// SIGTERM C (healthz 503, the balancer sends new connects elsewhere, its
// terminal told after drain_timeout).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileHarness } from './lib/harness.mjs';
import {
  Client, expectSession, expectStatus, expectError, createTopology, addVm, connect, keyAuth, putOk, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { startDaemon, rawGet } from './lib/daemon.mjs';
import { startPg } from './lib/pg.mjs';
import { startHaproxy, haproxyBinary } from './lib/haproxy.mjs';
import { cluster, shell, echoes, timed } from './lib/cluster.mjs';
import { randomString, waitFor, sleep, untrackPid, freePort } from './lib/util.mjs';

const h = fileHarness({
  label: 'cluster', block: 240, net: true, daemon: false, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
});
const G = 'e2e';

let pg;
let cl;
let hp;
let lb; // the balancer, as a daemon-like target for clients
let adminPassword;
const SERVER = { A: 's1', B: 's2', C: 's3' };
const BALANCER = '127.0.0.5'; // HAProxy's source address towards the instances

function body(over = {}) {
  return { bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private), ...over };
}
const openShell = (on) => shell(cl.clients[on], cl.daemons[on], G, 'vm1', body(), `on ${on}`);
const lbClient = (label = 'admin@lb') => cl.sameSignIn(cl.clients.B, lb, label);

// HAProxy's view of server s: the last "Server be_lb/sN is UP|DOWN" it logged.
function hpState(s) {
  const re = new RegExp(`Server be_lb/${s} is (UP|DOWN)`, 'g');
  let m; let last = 'UP';
  const text = hp.log();
  while ((m = re.exec(text))) last = m[1];
  return last;
}

describe('cluster: three instances on one PostgreSQL, behind HAProxy', () => {
  before(async () => {
    if (!haproxyBinary()) throw new Error('haproxy is not installed (scripts/deps.sh --test)');
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    pg = await startPg(h.dir);
    h.secrets.add(pg.password, 'store password');
    adminPassword = `Adm-${randomString(20)}`;
    h.secrets.add(adminPassword, 'admin password');
    cl = cluster(h, { store: pg.url, adminPassword });
    // A first: it migrates and creates the first account; then the others.
    // The balancer sends PROXY v2 headers from its own address (its checks
    // too): the instances believe them from there only.
    const proxied = { BASTION_PROXY_PROTOCOL: 'v2', BASTION_TRUSTED_PROXIES: `${BALANCER}/32` };
    await cl.start('A', { env: proxied });
    await cl.start('B', { env: proxied });
    await cl.start('C', { env: { ...proxied, BASTION_DRAIN_TIMEOUT: '3s' } });
    const closedPort = await freePort('127.0.0.1'); // nothing listens there
    hp = await startHaproxy(h.dir, {
      label: 'haproxy-cluster',
      frontends: [{
        name: 'lb',
        httpCheck: '/healthz',
        fall: 1,
        rise: 1,
        redispatch: true,
        backups: true,
        servers: ['A', 'B', 'C'].map((n) => ({ port: cl.daemons[n].port, check: 500, proxy: 'v2', source: BALANCER })),
      }, {
        // The instant after a kill -9, before a check notices, made
        // permanent: a server that refuses every connection, unchecked.
        name: 'rd',
        redispatch: true,
        servers: [{ port: closedPort }, ...['A', 'B'].map((n) => ({ port: cl.daemons[n].port, proxy: 'v2', source: BALANCER }))],
      }],
    });
    lb = cl.via(hp.port('lb'));
    await createTopology(cl.clients.A, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(cl.clients.A, { group: G, name: 'vm1', ip: h.net.addr(2) });
  }, { timeout: 240000 });

  after(async () => {
    if (hp) await hp.stop();
    for (const d of Object.values(cl ? cl.daemons : {})) {
      try { await d.stop(10000); } catch { /* gone */ }
    }
    if (cl) h.daemon = cl.daemons.B; // for the artefacts' log tail
    if (pg) await pg.stop();
    for (const [name, d] of Object.entries(cl ? cl.daemons : {})) {
      assert.doesNotMatch(d.log(), /runtime error|Sanitizer/, `instance ${name}'s log`);
      // Through the balancer, every request is the client's (PROXY v2);
      // only HAProxy's own checks come from its address.
      const fromBalancer = d.log().split('\n').filter((l) => l.includes(`source=${BALANCER}`) && !l.includes('path=/healthz'));
      assert.deepEqual(fromBalancer, [], `instance ${name}: requests seen from the balancer's address`);
      h.secrets.scan(d.log(), `instance ${name}'s log`);
    }
    assert.deepEqual(h.secrets.leaks, [], 'no secret in any answer or log');
  }, { timeout: 120000 });

  h.test('every instance is listed up, by any of them; the shape is SPEC §6; the balancer sees them healthy', async () => {
    for (const on of ['A', 'B', 'C']) {
      const list = await cl.instances(on);
      assert.deepEqual(list.map((x) => x.name), ['A', 'B', 'C'], `names on ${on}`);
      for (const x of list) {
        assert.equal(x.state, 'up', `${x.name} on ${on}`);
        assert.deepEqual(Object.keys(x).sort(), ['last_seen', 'name', 'sessions', 'started_at', 'state']);
        assert.ok(x.last_seen >= x.started_at);
      }
    }
    const m = expectStatus(await cl.clients.B.get('/metrics'), 200);
    assert.ok(m.text.includes('\nbastion_instance_info{name="B"} 1\n'), 'the name in the metrics');
    // Reader at / is required: a user without roles is refused.
    const pw = `Pw-${randomString(20)}`;
    h.secrets.add(pw, 'password of nobody');
    expectStatus(await cl.clients.A.put('/users/nobody', { password: pw }), 201);
    const nobody = new Client(cl.daemons.B, { secrets: h.secrets, label: 'nobody@B' });
    await nobody.login('nobody', pw);
    expectStatus(await nobody.get('/instances'), 403);
    // HAProxy's checks (GET /healthz over TLS) pass: nobody marked down.
    await sleep(1200);
    assert.doesNotMatch(hp.log(), /is DOWN/, hp.logTail());
  });

  h.test('a connection a server refuses is retried on another (redispatch): every request answered', async () => {
    const rd = cl.sameSignIn(cl.clients.B, cl.via(hp.port('rd')), 'admin@rd');
    const from = hp.log().length;
    const each = [];
    for (let i = 0; i < 6; i++) {
      const { r, ms } = await timed(() => rd.get('/instances'));
      expectStatus(r, 200, `request #${i} through a balancer with a dead server`);
      each.push(ms);
    }
    const lines = hp.log().slice(from).split('\n').filter((l) => l.includes('fe_rd '));
    const retried = lines.filter((l) => /\/\+?[1-9]\d* \d+\/\d+$/.test(l));
    console.log(`# 6 requests, a third dealt to a closed port: all answered, ${retried.length} retried on another server; each ${each.join(', ')} ms`);
    assert.ok(retried.length >= 2, `the dead server's share was redispatched:\n${lines.join('\n')}`);
  });

  h.test('a second process with a live instance\'s name refuses to start, and says why', { timeout: 30000 }, async () => {
    const dir = path.join(h.dir, 'inst-A2');
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
    fs.copyFileSync(cl.masterKey, path.join(dir, 'data', 'master.key'));
    fs.chmodSync(path.join(dir, 'data', 'master.key'), 0o600);
    await assert.rejects(startDaemon(dir, {
      adminPassword, store: pg.url, env: { BASTION_INSTANCE_NAME: 'A' },
    }), /another instance named 'A' is running on this store/);
  });

  h.test('a session opened on A is listed by B with "instance":"A"; DELETE on B closes it within 2 s', { timeout: 60000 }, async () => {
    const { session, term } = await openShell('A');
    let row;
    // The store learns of the attach on A's worker pool, a moment later.
    await waitFor(async () => {
      row = (await cl.clients.B.get('/sessions')).json.value.find((x) => x.id === session.id);
      return row && row.state === 'attached';
    }, { timeoutMs: 5000, what: 'B lists A\'s session as attached' });
    assert.equal(row.instance, 'A');
    assert.equal(row.kind, 'terminal');
    assert.equal(row.user, 'admin');
    assert.equal(await cl.holderOf('A', session.id), 'A', 'the holder lists it with its own name');
    assert.equal((await cl.instances('C')).find((x) => x.name === 'A').sessions, 1);

    const { ms } = await timed(async () => {
      expectStatus(await cl.clients.B.del(`/sessions/${session.id}`), 204, 'DELETE on B');
      await term.waitClosed({ timeoutMs: 5000 });
    });
    console.log(`# DELETE on B -> closed on A's terminal: ${ms} ms`);
    assert.ok(ms <= 2000, `closed after ${ms} ms`);
    const closed = term.controls.find((m) => m.type === 'closed');
    assert.ok(closed, `closed message: ${JSON.stringify(term.controls)}`);
    assert.equal(closed.reason, 'disconnected by admin');
    await waitFor(async () => (await cl.clients.C.del(`/sessions/${session.id}`)).status === 404,
      { timeoutMs: 5000, what: 'the ended session is 404 on C' });
    const created = (await cl.clients.B.get('/audit?action=connect')).json.value
      .find((x) => x.detail && x.detail.session === session.id);
    assert.equal(created.detail.instance, 'A', 'the connect record names the instance');
    let ended;
    await waitFor(async () => {
      ended = (await cl.clients.B.get('/audit?action=session.end')).json.value
        .find((x) => x.detail && x.detail.session === session.id);
      return ended;
    }, { timeoutMs: 5000, what: 'the session.end record' });
    assert.equal(ended.detail.instance, 'A', 'so does the end');
    const audit = (await cl.clients.C.get('/audit?action=session.disconnect')).json.value;
    assert.ok(audit.some((x) => x.detail && x.detail.session === session.id && x.detail.instance === 'A'),
      'session.disconnect recorded with the holder');
  });

  h.test('disabling a user on B ends that user\'s terminal on A', { timeout: 60000 }, async () => {
    const pw = `Pw-${randomString(20)}`;
    h.secrets.add(pw, 'password of uma');
    expectStatus(await cl.clients.A.put('/users/uma', { password: pw }), 201);
    expectStatus(await cl.clients.A.put('/role-assignments/e2e-uma', { principal: 'user:uma', role: 'Reader', scope: ids.group(G) }), [200, 201]);
    const uma = new Client(cl.daemons.A, { secrets: h.secrets, label: 'uma@A' });
    await uma.login('uma', pw);
    const { term } = await shell(uma, cl.daemons.A, G, 'vm1', body(), 'uma on A');
    const { ms } = await timed(async () => {
      expectStatus(await cl.clients.B.put('/users/uma', { disabled: true }), 200, 'disable on B');
      await term.waitClosed({ timeoutMs: 5000 });
    });
    console.log(`# user disabled on B -> closed on A: ${ms} ms`);
    assert.match(term.controls.find((m) => m.type === 'closed').reason, /your account was disabled by admin/);
  });

  h.test('A and B create the same group and role assignment, and two NICs with one address, at once: one wins, never a 500, never two rows', { timeout: 120000 }, async () => {
    const A = cl.clients.A;
    const B = cl.clients.B;
    const pw = `Pw-${randomString(20)}`;
    h.secrets.add(pw, 'password of racer');
    expectStatus(await A.put('/users/racer', { password: pw }), 201);
    const tally = {};
    const ROUNDS = 20;
    for (let i = 0; i < ROUNDS; i++) {
      const g = ids.group(`race${i}`);
      const ra = { principal: 'user:racer', role: 'Reader', scope: ids.group(G) };
      const nic = { network: ids.network(G, 'n1'), private_ip: h.net.addr(20 + i) };
      const [ga, gb, ra1, rb1, na, nb] = await Promise.all([
        A.put(g, {}), B.put(g, {}),
        A.put(`/role-assignments/race-${i}`, ra), B.put(`/role-assignments/race-${i}`, ra),
        A.put(ids.nic(G, `race${i}-a`), nic), B.put(ids.nic(G, `race${i}-b`), nic),
      ]);
      const pairs = { group: [ga, gb], role: [ra1, rb1], nic: [na, nb] };
      for (const [what, [x, y]] of Object.entries(pairs)) {
        const got = [x.status, y.status].sort();
        const key = `${what} ${got.join('/')}`;
        tally[key] = (tally[key] || 0) + 1;
        const want = what === 'nic' ? [201, 409] : [200, 201];
        assert.deepEqual(got, want, `round ${i}, ${what}: ${x.status} ${x.text} | ${y.status} ${y.text}`);
      }
      const lost = na.status === 409 ? na : nb;
      assert.equal(lost.json.error.code, 'Conflict', lost.text);
      assert.match(lost.json.error.message, /private_ip: .* is already used by/);
    }
    console.log(`# same writes on A and B at once, ${ROUNDS} rounds: ${JSON.stringify(tally)}`);
    assert.equal(await pg.query("SELECT count(*) FROM groups WHERE name LIKE 'race%'"), String(ROUNDS));
    assert.equal(await pg.query("SELECT count(*) FROM role_assignments WHERE id LIKE 'race-%'"), String(ROUNDS));
    assert.equal(await pg.query(`SELECT count(*) FROM resources WHERE id LIKE '/groups/${G}/nics/race%'`), String(ROUNDS),
      'one NIC per address');
    // The audit trail says what happened: one created, one replaced.
    const puts = (await A.get('/audit?action=group.put')).json.value.filter((x) => x.target === ids.group('race0'));
    assert.deepEqual(puts.map((x) => x.result).sort(), ['created', 'replaced']);
  });

  h.test('A and B create the same user, vault, access policy and secret at once: 201 and 200, never a 500, one row', { timeout: 120000 }, async () => {
    const A = cl.clients.A;
    const B = cl.clients.B;
    const pair = async (what, fn) => {
      const [x, y] = await Promise.all([fn(A), fn(B)]);
      assert.deepEqual([x.status, y.status].sort(), [200, 201], `${what}: ${x.status} ${x.text} | ${y.status} ${y.text}`);
    };
    for (let i = 0; i < 5; i++) {
      const pw = `Pw-${randomString(20)}`;
      h.secrets.add(pw, `password of racer${i}`);
      const vault = `/groups/${G}/vaults/rv${i}`;
      await pair(`round ${i}, user`, (c) => c.put(`/users/racer${i}`, { password: pw }));
      await pair(`round ${i}, vault`, (c) => c.put(vault, {}));
      await pair(`round ${i}, access policy`, (c) => c.put(`${vault}/access-policies/user:admin`, { secret_permissions: ['get', 'set', 'list'] }));
      await pair(`round ${i}, secret`, (c) => c.put(`${vault}/secrets/s`, { value: `v${i}` }));
    }
    assert.equal(await pg.query("SELECT count(*) FROM users WHERE name LIKE 'racer_'"), '5');
    assert.equal(await pg.query(`SELECT count(*) FROM resources WHERE id LIKE '/groups/${G}/vaults/rv%'`), '5');
    assert.equal(await pg.query("SELECT count(*) FROM vault_policies WHERE principal = 'user:admin'"), '5');
    // Two writes of one secret are two versions of it, as one after the other.
    const v = expectStatus(await A.get(`/groups/${G}/vaults/rv0/secrets/s/versions`), 200);
    assert.equal(v.json.value.length, 2);
  });

  h.test('connects via A and via B at once to a VM whose host key is not recorded: both work, one host-key row', { timeout: 120000 }, async () => {
    const vm = ids.vm(G, 'vm1');
    for (let i = 0; i < 5; i++) {
      expectStatus(await cl.clients.A.del(`${vm}/host-keys`), 204, 'forget the host key');
      assert.equal(await pg.query(`SELECT count(*) FROM host_keys WHERE vm_id = '${vm}'`), '0');
      const [ra, rb] = await Promise.all([
        connect(cl.clients.A, G, 'vm1', body()), connect(cl.clients.B, G, 'vm1', body()),
      ]);
      const sa = expectSession(ra, `round ${i} via A`);
      const sb = expectSession(rb, `round ${i} via B`);
      await waitFor(async () => await pg.query(`SELECT count(*) FROM host_keys WHERE vm_id = '${vm}'`) !== '0',
        { timeoutMs: 5000, what: 'the host key recorded' });
      assert.equal(await pg.query(`SELECT count(*) FROM host_keys WHERE vm_id = '${vm}'`), '1', `round ${i}`);
      expectStatus(await cl.clients.A.del(`/sessions/${sa.id}`), 204);
      expectStatus(await cl.clients.B.del(`/sessions/${sb.id}`), 204);
    }
    // And it is the one both compare with next time.
    const s = await openShell('C');
    s.term.close();
    assert.equal(await pg.query(`SELECT count(*) FROM host_keys WHERE vm_id = '${vm}'`), '1');
  });

  h.test('keyboard-interactive through the balancer: the answers reach the instance where the connect waits', { timeout: 90000 }, async (t) => {
    if (!h.user.password) { t.skip('needs root (a test user with a password)'); return; }
    if (!h.sshds.some((s) => s.name === 'twostep')) {
      await h.sshd({ name: 'twostep', port: 2203, addrs: [h.net.addr(2)], extraConfig: ['AuthenticationMethods publickey,password'] });
      await putOk(cl.clients.A, ids.vm(G, 'vm-2step'), { nic: ids.nic(G, 'vm1-nic'), ssh_port: 2203 });
    }
    const c = lbClient();
    // Each request is a connection of its own, dealt round-robin: the
    // answers land on another instance than the connect, every time.
    for (let i = 0; i < 3; i++) {
      const r = await connect(c, G, 'vm-2step', body());
      assert.equal(r.status, 202, `round ${i}: ${r.status} ${r.text}`);
      const ch = r.json.challenge;
      assert.match(ch.prompts[0].prompt, /Password/);
      const done = await c.post(`/sessions/${ch.id}/answers`, { answers: [h.user.password] });
      const s = expectSession(done, `round ${i}: the answers through the balancer`);
      const a = await attach(lb, c, s.terminal);
      assert.ok(a.ok, `round ${i}: attach through the balancer: ${a.status} ${a.body}`);
      await echoes(a.term);
      a.term.close();
      await a.term.waitClosed({ timeoutMs: 5000 });
    }
  });

  h.test('PostgreSQL stopped for 20 s: through the balancer 503 within 5 s, terminals go on, the instances come back, ends written once', { timeout: 150000 }, async () => {
    const c = lbClient();
    const kept = await shell(c, lb, G, 'vm1', body(), 'kept, through the balancer');
    const ending = await shell(c, lb, G, 'vm1', body(), 'ending, through the balancer');
    const open = `SELECT count(*) FROM term_sessions WHERE id IN ('${kept.session.id}', '${ending.session.id}') AND ended_at IS NULL`;
    await waitFor(async () => await pg.query(open) === '2', { timeoutMs: 5000, what: 'both sessions recorded as open' });
    const slowest = { ms: 0, what: '' };
    const fast503 = async (what, fn) => {
      const { r, ms } = await timed(fn);
      if (ms > slowest.ms) Object.assign(slowest, { ms, what });
      expectError(r, 503, 'ServiceUnavailable');
    };
    const haltedAt = Date.now();
    await pg.halt();
    await fast503('GET vms', () => c.get(`/groups/${G}/vms`));
    await fast503('PUT group', () => c.put(ids.group('other'), {}));
    await fast503('sign-in', () => new Client(lb, { secrets: h.secrets, label: 'fresh@lb' })
      .post('/auth/login', { username: 'admin', password: adminPassword }));
    // Every instance tells the balancer (healthz 503); it marks them all
    // down and sends connections to the backups: the same instances.
    await waitFor(() => ['s1', 's2', 's3'].every((s) => hpState(s) === 'DOWN'),
      { timeoutMs: 8000, what: `HAProxy to mark every instance down\n${hp.logTail()}` });
    await echoes(kept.term);
    ending.term.send('exit\r');
    await ending.term.waitClosed({ timeoutMs: 10000 });
    let n = 0;
    while (Date.now() - haltedAt < 20000) {
      await fast503('GET vms', () => c.get(`/groups/${G}/vms`));
      await echoes(kept.term);
      n++;
      await sleep(1500);
    }
    console.log(`# store away 20 s: ${n + 3} requests through the balancer, slowest ${slowest.what} ${slowest.ms} ms`);
    assert.ok(slowest.ms < 5000, `every request answered within 5 s; slowest: ${slowest.what} ${slowest.ms} ms`);
    await pg.resume();
    const back = Date.now();
    await waitFor(async () => {
      for (const d of Object.values(cl.daemons)) if ((await rawGet(d.port, '/healthz')).status !== 200) return false;
      return true;
    }, { timeoutMs: 15000, intervalMs: 250, what: 'every instance healthy again' });
    await waitFor(() => ['s1', 's2', 's3'].every((s) => hpState(s) === 'UP'),
      { timeoutMs: 5000, what: 'HAProxy to mark them up' });
    console.log(`# store back -> every instance healthy and UP in HAProxy: ${Date.now() - back} ms`);
    expectStatus(await c.get(`/groups/${G}/vms`), 200, 'the API answers through the balancer');
    const endedRow = `SELECT count(*) FROM term_sessions WHERE id = '${ending.session.id}' AND ended_at IS NOT NULL`;
    await waitFor(async () => await pg.query(endedRow) === '1', { timeoutMs: 10000, what: 'the end recorded' });
    const audits = `SELECT count(*) FROM audit WHERE action = 'session.end' AND detail LIKE '%${ending.session.id}%'`;
    await waitFor(async () => await pg.query(audits) === '1', { timeoutMs: 10000, what: 'its session.end record' });
    const endedAt = Number(await pg.query(`SELECT ended_at FROM term_sessions WHERE id = '${ending.session.id}'`));
    assert.ok(endedAt * 1000 < back - 3000, 'the end keeps the time it happened, not the time it was written');
    await echoes(kept.term);
    expectStatus(await c.del(`/sessions/${kept.session.id}`), 204);
    await kept.term.waitClosed({ timeoutMs: 5000 });
    // A retry that would write it twice has had its chance (a second).
    assert.equal(await pg.query(audits), '1', 'written once');
    assert.equal(await pg.query(`SELECT count(*) FROM term_sessions WHERE id = '${ending.session.id}'`), '1');
  });

  h.test('kill -9 A: its users reconnect through the balancer at once; A lost within 30 s, its session ended "instance lost"; the others untouched', { timeout: 90000 }, async () => {
    const a = await openShell('A');
    const b = await openShell('B');
    const t0 = Date.now();
    process.kill(cl.daemons.A.pid, 'SIGKILL');
    untrackPid(cl.daemons.A.pid);
    // Gone (a connection accepted by the kernel in the instant before its
    // listener closed is reset, as with any server that dies; after that
    // a connect to it is refused). At once, before a check notices: the
    // connections dealt to A are refused, and HAProxy retries them on
    // another server (redispatch).
    await waitFor(() => cl.daemons.A.exit, { timeoutMs: 5000, intervalMs: 10, what: 'A to die' });
    const logFrom = hp.log().length;
    const burst = await Promise.all(Array.from({ length: 6 }, () => lbClient('admin@lb-burst').get('/instances')));
    for (const r of burst) expectStatus(r, 200, 'a request through the balancer right after kill -9');
    const redispatched = hp.log().slice(logFrom).split('\n').filter((l) => /\/\+?[1-9]\d* \d+\/\d+$/.test(l)).length;
    console.log(`# kill -9 A -> 6 requests at once through the balancer: all answered, ${redispatched} retried on another server (${Date.now() - t0} ms)`);
    await a.term.waitClosed({ timeoutMs: 5000 });
    // Its user connects again through the balancer: a connection dealt to
    // A is refused and redispatched, until the check marks A down.
    const c = lbClient('admin@lb-after-kill');
    const holders = [];
    const each = [];
    const { ms } = await timed(async () => {
      for (let i = 0; i < 6; i++) {
        const { r: s, ms: one } = await timed(() => shell(c, lb, G, 'vm1', body(), `reconnect #${i} through the balancer`));
        each.push(one);
        holders.push(await cl.holderOf('B', s.session.id));
        s.term.close();
      }
    });
    console.log(`# kill -9 A -> 6 connects with their terminals through the balancer: ${ms} ms (each ${each.join(', ')} ms), held by ${holders.join(',')}`);
    assert.ok(holders.every((x) => x === 'B' || x === 'C'), holders.join(','));
    await waitFor(async () => await cl.stateOf('B', 'A') === 'lost', { timeoutMs: 30000, intervalMs: 250, what: 'A marked lost' });
    const lostMs = Date.now() - t0;
    console.log(`# kill -9 A -> A lost: ${lostMs} ms`);
    assert.ok(lostMs <= 30000);
    // A lease after the store came back (previous test), no survivor took
    // another for lost.
    assert.deepEqual((await cl.instances('C')).map((x) => [x.name, x.state]), [['A', 'lost'], ['B', 'up'], ['C', 'up']]);
    const list = (await cl.clients.B.get('/sessions')).json.value;
    assert.ok(!list.some((x) => x.id === a.session.id), 'A\'s session is no longer listed');
    assert.ok(list.some((x) => x.id === b.session.id && x.instance === 'B'), 'B\'s is');
    const ends = (await cl.clients.C.get('/audit?action=session.end')).json.value
      .filter((x) => x.detail && x.detail.session === a.session.id);
    assert.equal(ends.length, 1, `one session.end for A's session: ${JSON.stringify(ends)}`);
    assert.equal(ends[0].detail.reason, 'instance lost');
    assert.equal(ends[0].detail.instance, 'A');
    await echoes(b.term);
    assert.equal((await cl.clients.B.get('/audit?action=session.end')).json.value
      .filter((x) => x.detail && x.detail.session === b.session.id).length, 0, 'B\'s session untouched');
    b.term.close();
    // A restarted on its port: it claims its name again, the balancer takes it back.
    await cl.start('A', { port: cl.daemons.A.port, env: { BASTION_PROXY_PROTOCOL: 'v2', BASTION_TRUSTED_PROXIES: `${BALANCER}/32` } });
    await waitFor(() => hpState('s1') === 'UP', { timeoutMs: 5000, what: 'HAProxy to mark A up again' });
    assert.equal(await cl.stateOf('B', 'A'), 'up');
  });

  h.test('SIGTERM C: healthz 503 at once, the balancer sends new connects elsewhere; its terminal is told after drain_timeout; exit 0; its row goes', { timeout: 60000 }, async () => {
    const d = cl.daemons.C;
    const { term } = await openShell('C');
    const made = expectStatus(await cl.clients.C.post('/tokens', { name: 'drain' }), 201, 'token');
    h.secrets.add(made.json.token, 'drain token');
    const t0 = Date.now();
    d.proc.kill('SIGTERM');
    await waitFor(async () => {
      const r = await rawGet(d.port, '/healthz', 2000);
      return r.status === 503 && /draining/.test(r.text);
    }, { timeoutMs: 2000, intervalMs: 50, what: 'C\'s healthz 503' });
    console.log(`# SIGTERM C -> healthz 503: ${Date.now() - t0} ms`);
    expectError(await connect(cl.clients.C, G, 'vm1', body()), 503, 'ServiceUnavailable');
    // A native client's stream is a new session too: refused as well.
    assert.equal(await streamStatus(d.port, `/groups/${G}/vms/vm1/stream?port=22`, made.json.token), 503,
      'a stream opened on the draining instance');
    await echoes(term); // its terminal goes on while it drains
    await waitFor(() => hpState(SERVER.C) === 'DOWN', { timeoutMs: 3000, intervalMs: 50, what: 'HAProxy to mark C down' });
    console.log(`# SIGTERM C -> HAProxy marks it down: ${Date.now() - t0} ms`);
    const c = lbClient('admin@lb-drain');
    const holders = [];
    for (let i = 0; i < 4; i++) {
      const s = expectSession(await connect(c, G, 'vm1', body()), `connect #${i} through the balancer while C drains`);
      holders.push(await cl.holderOf('B', s.id));
      expectStatus(await c.del(`/sessions/${s.id}`), 204);
      if (i % 2) expectStatus(await c.get('/instances'), 200); // the next connect to the other one
    }
    console.log(`# while C drains, connects through the balancer held by ${holders.join(',')}`);
    assert.deepEqual([...new Set(holders)].sort(), ['A', 'B'], `held by ${holders.join(',')}`);
    await term.waitClosed({ timeoutMs: 10000 });
    const ms = Date.now() - t0;
    assert.ok(ms >= 2500, `closed after the 3 s drain timeout, not before (${ms} ms)`);
    assert.equal(term.controls.find((m) => m.type === 'closed').reason, 'the bastion is shutting down');
    await waitFor(() => d.exit, { timeoutMs: 15000, what: 'C exits' });
    assert.equal(d.exit.code, 0, `C exited ${JSON.stringify(d.exit)}`);
    assert.match(d.log(), /received SIGTERM: draining/);
    assert.equal(await cl.stateOf('B', 'C'), undefined, 'a clean stop removes the row');
  });
});

// The status of a native client's stream upgrade (docs/api.md), on a TLS
// connection of its own; the connection is closed after the answer's head.
function streamStatus(port, pathAndQuery, token) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      socket.write(`GET /api/v1${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`
        + 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
        + `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n`
        + `Sec-WebSocket-Protocol: bastion.stream.v1\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    });
    let buf = '';
    socket.setTimeout(10000, () => { socket.destroy(); reject(new Error('no answer to the stream upgrade')); });
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      socket.destroy();
      resolve(Number(buf.split(' ')[1]));
    });
    socket.on('error', reject);
  });
}

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
