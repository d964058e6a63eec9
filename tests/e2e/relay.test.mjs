// No affinity (issue 15 item 3, SPEC §6): two instances on one PostgreSQL;
// a session connected on A is used through B, which relays the request to
// A over TLS pinned to A's certificate SHA-256 from the store
// (server/relay.c, api/relay.c). Checked: the terminal through B echoes,
// resizes, closes, and DELETE on either ends it; an answers POST on B is
// relayed (A's answer, byte for byte the same as asked on A); a watch
// through B; a certificate that is not the recorded one → 502 and nothing
// sent to that server; a reader that stops reading does not grow B's
// memory (measured); behind a round-robin HAProxy (TCP, no affinity) ten
// users in a row sign in, connect and use their terminal; A killed → B
// answers 502 at once.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { fileHarness } from './lib/harness.mjs';
import {
  Client, expectSession, expectStatus, createTopology, addVm, connect, keyAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { startDaemon } from './lib/daemon.mjs';
import { startPg } from './lib/pg.mjs';
import { startHaproxy, haproxyBinary } from './lib/haproxy.mjs';
import { randomString, waitFor, sleep } from './lib/util.mjs';

const h = fileHarness({
  label: 'relay', block: 190, net: true, daemon: false, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
});
const G = 'e2e';

let pg;
const daemons = {};
const clients = {};
let adminPassword;

async function startInstance(name) {
  // One vault master key for every instance (docs/scaling.md): A's.
  if (daemons.A) {
    const dataDir = path.join(h.dir, `data-${name}`);
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fs.copyFileSync(path.join(daemons.A.dataDir, 'master.key'), path.join(dataDir, 'master.key'));
  }
  const d = await startDaemon(h.dir, {
    adminPassword, store: pg.url, dataName: `data-${name}`, logName: `bastion-${name}`,
    // Under ASan, freed memory waits in a quarantine (256 MiB by default)
    // that RSS would count as growth: a small one measures what is held.
    env: {
      BASTION_INSTANCE_NAME: name,
      ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=8'].filter(Boolean).join(':'),
    },
  });
  daemons[name] = d;
  const c = new Client(d, { secrets: h.secrets, label: `admin@${name}` });
  await c.login('admin', adminPassword);
  clients[name] = c;
}

// The same sign-in (cookie and CSRF token), sent to instance `on`.
function sameSignIn(from, on) {
  const c = new Client(daemons[on], { secrets: h.secrets, label: `admin@${from}->${on}` });
  c.cookies = clients[from].cookies;
  c.csrf = clients[from].csrf;
  return c;
}

function body() {
  return { bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private) };
}

async function connectOn(on) {
  return expectSession(await connect(clients[on], G, 'vm1', body()), `connect on ${on}`);
}

async function echoes(term) {
  const tag = randomString(8);
  const from = term.length;
  term.send(`echo ${tag}$((1+1))\r`);
  await term.waitForOutput(`${tag}2`, { timeoutMs: 10000, from });
}

async function metric(on, line) {
  const r = expectStatus(await clients[on].get('/metrics'), 200, `metrics on ${on}`);
  const m = r.text.split('\n').find((l) => l.startsWith(`${line} `));
  return m ? Number(m.slice(line.length + 1)) : 0;
}
const JOINED = 'bastion_relayed_connections_total{result="joined"}';
const FAILED = 'bastion_relayed_connections_total{result="failed"}';
const DOWN = 'bastion_relayed_bytes_total{direction="from_holder"}';

function rssKiB(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
}

describe('relay: a session held by A, used through B', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    pg = await startPg(h.dir);
    h.secrets.add(pg.password, 'store password');
    adminPassword = `Adm-${randomString(20)}`;
    h.secrets.add(adminPassword, 'admin password');
    await startInstance('A');
    await startInstance('B');
    await createTopology(clients.A, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(clients.A, { group: G, name: 'vm1', ip: h.net.addr(2) });
  }, { timeout: 240000 });

  after(async () => {
    for (const d of Object.values(daemons)) {
      try { await d.stop(10000); } catch { /* gone */ }
    }
    h.daemon = daemons.B;
    if (pg) await pg.stop();
    for (const [name, d] of Object.entries(daemons)) {
      assert.doesNotMatch(d.log(), /runtime error|Sanitizer/, `instance ${name}'s log`);
    }
    await h.down();
  }, { timeout: 120000 });

  h.test('the terminal through B: echoes, resizes; closing it through B ends the session on A', { timeout: 60000 }, async () => {
    const s = await connectOn('A');
    const viaB = sameSignIn('A', 'B');
    const joined0 = await metric('B', JOINED);
    const a = await attach(daemons.B, viaB, s.terminal);
    assert.ok(a.ok, `attach through B: ${a.status} ${a.body}`);
    await echoes(a.term);
    a.term.resize(123, 45);
    const from = a.term.length;
    a.term.send('stty size\r');
    await a.term.waitForOutput('45 123', { timeoutMs: 10000, from });
    assert.equal(await metric('B', JOINED), joined0 + 1, 'B relayed it');
    assert.equal(await metric('A', JOINED), 0, 'A relayed nothing');
    a.term.close();
    await a.term.waitClosed({ timeoutMs: 5000 });
    // As on one instance: the terminal's end is the session's (A's list).
    await waitFor(async () => {
      const l = expectStatus(await clients.A.get('/sessions'), 200).json.value;
      return !l.some((x) => x.id === s.id);
    }, { timeoutMs: 5000, what: 'the session to end on A' });
  });

  h.test('DELETE on B of a terminal opened through B closes it', { timeout: 60000 }, async () => {
    const s = await connectOn('A');
    const viaB = sameSignIn('A', 'B');
    const a = await attach(daemons.B, viaB, s.terminal);
    assert.ok(a.ok, `attach through B: ${a.status} ${a.body}`);
    await echoes(a.term);
    expectStatus(await clients.B.del(`/sessions/${s.id}`), 204, 'DELETE on B');
    await a.term.waitClosed({ timeoutMs: 5000 });
    const gone = await attach(daemons.B, viaB, s.terminal);
    assert.equal(gone.status, 404, `after DELETE: ${gone.body}`);
  });

  h.test('DELETE on A of a terminal opened through B closes it', { timeout: 60000 }, async () => {
    const s = await connectOn('A');
    const a = await attach(daemons.B, sameSignIn('A', 'B'), s.terminal);
    assert.ok(a.ok, `attach through B: ${a.status} ${a.body}`);
    await echoes(a.term);
    expectStatus(await clients.A.del(`/sessions/${s.id}`), 204, 'DELETE on A');
    await a.term.waitClosed({ timeoutMs: 5000 });
  });

  h.test('an answers POST on B is relayed to A: the same answer as asked on A', { timeout: 60000 }, async () => {
    const s = await connectOn('A');
    const a = await attach(daemons.A, clients.A, s.terminal);
    assert.ok(a.ok);
    try {
      const direct = await clients.A.post(`/sessions/${s.id}/answers`, { answers: ['123456'] });
      const joined0 = await metric('B', JOINED);
      const relayed = await sameSignIn('A', 'B').post(`/sessions/${s.id}/answers`, { answers: ['123456'] });
      assert.equal(await metric('B', JOINED), joined0 + 1, 'B relayed it');
      assert.equal(relayed.status, direct.status, relayed.text);
      assert.deepEqual(relayed.json, direct.json);
      // Without the CSRF token the holder refuses, as it would itself.
      const noCsrf = await sameSignIn('A', 'B').post(`/sessions/${s.id}/answers`, { answers: ['1'] }, { csrf: false });
      const noCsrfA = await clients.A.post(`/sessions/${s.id}/answers`, { answers: ['1'] }, { csrf: false });
      assert.equal(noCsrf.status, noCsrfA.status, noCsrf.text);
      // A session nobody holds: 404 on B, not relayed.
      const none = await clients.B.post('/sessions/no-such-session/answers', { answers: ['1'] });
      assert.equal(none.status, 404, none.text);
    } finally { a.term.close(); }
  });

  h.test('a watch through B sees A\'s session live', { timeout: 60000 }, async () => {
    const s = await connectOn('A');
    const a = await attach(daemons.A, clients.A, s.terminal);
    assert.ok(a.ok);
    try {
      const w = await attach(daemons.B, clients.B, `/api/v1/sessions/${s.id}/watch`);
      assert.ok(w.ok, `watch through B: ${w.status} ${w.body}`);
      const live = `Live${randomString(8)}`;
      a.term.send(`echo ${live.slice(0, 4)}""${live.slice(4)}\r`);
      await w.term.waitForOutput(`${live}\r\n`, { timeoutMs: 10000 });
      w.term.close();
    } finally { a.term.close(); }
  });

  h.test('a certificate other than the recorded one: 502, and nothing is sent to that server', { timeout: 60000 }, async () => {
    const s = await connectOn('A');
    // An impostor at a new address for A: it holds a certificate (B's),
    // just not A's.
    let handshakes = 0;
    let bytes = 0;
    const server = tls.createServer({
      cert: fs.readFileSync(path.join(daemons.B.dataDir, 'tls-cert.pem')),
      key: fs.readFileSync(path.join(daemons.B.dataDir, 'tls-key.pem')),
    }, (sock) => {
      handshakes++;
      sock.on('data', (d) => { bytes += d.length; });
      sock.on('error', () => {});
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const url = await pg.query("SELECT advertise_url FROM instances WHERE name = 'A'");
    try {
      await pg.query(`UPDATE instances SET advertise_url = 'https://127.0.0.1:${server.address().port}' WHERE name = 'A'`);
      const failed0 = await metric('B', FAILED);
      const r = await attach(daemons.B, sameSignIn('A', 'B'), s.terminal);
      assert.equal(r.ok, false);
      assert.equal(r.status, 502, r.body);
      assert.match(r.body, /"code":"InstanceUnreachable"/);
      assert.match(r.body, /certificate/);
      assert.equal(await metric('B', FAILED), failed0 + 1);
      await sleep(200);
      assert.equal(handshakes, 1, 'the impostor was reached');
      assert.equal(bytes, 0, 'and sent nothing: no request, no cookie');
    } finally {
      await pg.query(`UPDATE instances SET advertise_url = '${url}' WHERE name = 'A'`);
      server.close();
    }
    const ok = await attach(daemons.B, sameSignIn('A', 'B'), s.terminal);
    assert.ok(ok.ok, `with A's address back: ${ok.status} ${ok.body}`);
    await echoes(ok.term);
    ok.term.close();
  });

  h.test('a reader that stops reading through B: B stops reading A; its memory stays bounded', { timeout: 90000 }, async () => {
    const s = await connectOn('A');
    const a = await attach(daemons.B, sameSignIn('A', 'B'), s.terminal);
    assert.ok(a.ok);
    try {
      await echoes(a.term);
      const rss0 = rssKiB(daemons.B.pid);
      const down0 = await metric('B', DOWN);
      a.term.ws._socket.pause(); // reads nothing from now on
      a.term.send('head -c 300000000 /dev/zero | base64\r');
      // Until the relay's flow stops: B's count of bytes from A settles.
      let prev = -1;
      let cur = 0;
      await waitFor(async () => {
        await sleep(1000);
        cur = await metric('B', DOWN);
        const settled = cur === prev;
        prev = cur;
        return settled;
      }, { timeoutMs: 40000, what: 'the relayed bytes to settle' });
      const rss1 = rssKiB(daemons.B.pid);
      const relayed = cur - down0;
      console.log(`# slow reader: ${relayed} bytes relayed before the flow stopped; B's RSS ${rss0} -> ${rss1} KiB`);
      assert.ok(relayed < 64 * 1024 * 1024, `the flow stopped (${relayed} bytes, of 400 MB)`);
      assert.ok(rss1 - rss0 < 16 * 1024, `B's memory grew by ${rss1 - rss0} KiB`);
    } finally {
      a.term.close();
      await clients.A.del(`/sessions/${s.id}`);
    }
  });

  h.test('behind a round-robin HAProxy (TCP, no affinity): sign-in, connect and terminal work every time', { timeout: 180000 }, async (t) => {
    if (!haproxyBinary()) { t.skip('haproxy is not installed (scripts/deps.sh --test)'); return; }
    const hp = await startHaproxy(h.dir, {
      label: 'haproxy-rr',
      frontends: [{ name: 'rr', servers: [{ port: daemons.A.port }, { port: daemons.B.port }] }],
    });
    try {
      const port = hp.port('rr');
      // Every request of the client is a connection of its own, which the
      // balancer hands to A and B in turn: sign-in, connect and the
      // terminal's upgrade of one user land on different instances.
      const lb = { ...daemons.A, port, origin: `https://127.0.0.1:${port}`, wsBase: `wss://127.0.0.1:${port}` };
      const joined0 = (await metric('A', JOINED)) + (await metric('B', JOINED));
      for (let i = 0; i < 10; i++) {
        const c = new Client(lb, { secrets: h.secrets, label: `admin@balancer#${i}` });
        await c.login('admin', adminPassword);
        const s = expectSession(await connect(c, G, 'vm1', body()), `connect #${i} through the balancer`);
        const a = await attach(lb, c, s.terminal);
        assert.ok(a.ok, `terminal #${i} through the balancer: ${a.status} ${a.body}`);
        await echoes(a.term);
        a.term.close();
        await a.term.waitClosed({ timeoutMs: 5000 });
      }
      const joined = (await metric('A', JOINED)) + (await metric('B', JOINED)) - joined0;
      console.log(`# through the balancer: 10 of 10 terminals worked, ${joined} of them relayed to their holder`);
      assert.ok(joined > 0, 'some terminals reached an instance that did not hold them');
    } finally {
      await hp.stop();
    }
  });

  h.test('A killed: a terminal through B is answered 502 at once, no hang', { timeout: 60000 }, async () => {
    const s = await connectOn('A');
    await waitFor(async () => expectStatus(await clients.B.get('/sessions'), 200).json.value.some((x) => x.id === s.id),
      { timeoutMs: 10000, what: 'B to list A\'s session' });
    process.kill(daemons.A.pid, 'SIGKILL');
    await waitFor(() => daemons.A.exit, { timeoutMs: 10000, what: 'A to die' });
    const t0 = Date.now();
    const r = await attach(daemons.B, clients.B, s.terminal, { timeoutMs: 8000 });
    const ms = Date.now() - t0;
    console.log(`# holder gone: answered in ${ms} ms`);
    assert.equal(r.ok, false);
    assert.equal(r.status, 502, r.body);
    assert.match(r.body, /"code":"InstanceUnreachable"/);
    assert.ok(ms < 3000, `answered in ${ms} ms`);
  });
});

