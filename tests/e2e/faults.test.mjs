// Faults (issue 8, item 5), each where nothing is lost: the link to the VM
// cut (the session ends within the SSH keep-alive bound, with a reason); the
// browser vanishing without a close (the SSH channel closes within the
// WebSocket ping bound); the bastion killed and restarted (users, resources,
// roles and vault intact, the open session recorded as ended); the store
// busy past its busy timeout and the disk full (a clear 503, no corruption);
// 1,000 concurrent connects with wrong passwords (healthz stays fast, no
// descriptor or memory growth afterwards). The VM killed mid-session is in
// terminal.test.mjs.
//
// The daemon runs with short liveness intervals (environment below): SSH
// keep-alive every 2 s (ends after 3 unanswered: <= 10 s of silence), and a
// WebSocket ping every 2 s (closed after two silent intervals: <= 6 s).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { fileHarness } from './lib/harness.mjs';
import { expectSession, expectStatus, expectError, createTopology, addVm, connect, keyAuth, passwordAuth, ids } from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { startDaemon, rawGet } from './lib/daemon.mjs';
import { Client } from './lib/api.mjs';
import { sleep, waitFor, run, isRoot, makeTempDir, randomString } from './lib/util.mjs';

process.env.BASTION_SSH_KEEPALIVE = '2s';
process.env.BASTION_BROWSER_PING = '2s';
process.env.BASTION_MAX_SESSIONS_PER_USER = '5000';

// The storm below holds 1,000 connections at once from 127.0.0.1, which
// stands for 1,000 users here: over limits.connections_per_address (256).
const DAEMON_ENV = { BASTION_CONNECTIONS_PER_ADDRESS: '2000' };
const h = fileHarness({
  label: 'faults', block: 170, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
  daemonOpts: { env: DAEMON_ENV },
});
const G = 'e2e';
let main; let cut; let storm;

function body(over = {}) {
  return {
    bastion: ids.bastion(G, 'b1'),
    username: h.user.name,
    auth: keyAuth(h.keys['ed25519-openssh'].private),
    cols: 80,
    rows: 24,
    ...over,
  };
}

async function openShell(vm = 'vm-main', daemon = h.daemon, client = h.admin) {
  const s = expectSession(await connect(client, G, vm, body()), `connect ${vm}`);
  const a = await attach(daemon, client, s.terminal);
  assert.ok(a.ok, `attach refused: ${a.status} ${a.body}`);
  a.term.send('echo READY$((20+22))\r');
  await a.term.waitForOutput('READY42', { timeoutMs: 15000 });
  return { session: s, term: a.term };
}

async function liveSessions() {
  const r = expectStatus(await h.admin.get('/sessions'), 200);
  return r.json.value;
}

function fdCount(pid) { return fs.readdirSync(`/proc/${pid}/fd`).length; }

// n TLS connections to the daemon, opened 100 at a time, and an agent that
// gives each request one of them (closed after its answer). A storm sent on
// them reaches the daemon at once: opened by the requests themselves, a
// thousand TLS handshakes of this (niced) process could take longer than the
// daemon's 30 s for a request to arrive on a busy machine, and it closed
// them unanswered (socket hang up).
async function preopened(n) {
  const socks = [];
  for (let i = 0; i < n; i += 100) {
    socks.push(...await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.daemon.port, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    }))));
  }
  const agent = new https.Agent({ keepAlive: false, maxSockets: Infinity });
  agent.createConnection = () => socks.pop();
  return agent;
}
function rssKb(pid) { return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]); }

// A TCP relay between the test and the daemon that can "vanish": stop
// forwarding in both directions without closing anything, as a browser
// whose laptop lid closed or whose network went away.
function relay(targetPort) {
  return new Promise((resolve) => {
    const pairs = [];
    const server = net.createServer((down) => {
      const up = net.connect(targetPort, '127.0.0.1');
      down.pipe(up);
      up.pipe(down);
      down.on('error', () => {});
      up.on('error', () => {});
      pairs.push([down, up]);
    });
    server.listen(0, '127.0.0.1', () => resolve({
      port: server.address().port,
      vanish() {
        for (const [down, up] of pairs) {
          down.unpipe(up); up.unpipe(down);
          down.pause(); up.pause();
        }
      },
      close() {
        for (const [down, up] of pairs) { down.destroy(); up.destroy(); }
        server.close();
      },
    }));
  });
}

describe('faults', () => {
  before(async () => {
    await h.up();
    main = await h.sshd({ name: 'main', port: 22, addrs: [h.net.addr(2)] });
    // Its own address, so that cutting its link leaves the others alone.
    cut = await h.sshd({ name: 'cut', port: 22, addrs: [h.net.addr(3)] });
    // The storm's sshd: no start-up throttling, password auth fails fast.
    storm = await h.sshd({ name: 'storm', port: 22, addrs: [h.net.addr(4)],
      extraConfig: ['MaxStartups 2000', 'MaxAuthTries 2', 'LoginGraceTime 30'] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm-main', ip: h.net.addr(2), port: main.port });
    await addVm(h.admin, { group: G, name: 'vm-cut', ip: h.net.addr(3), port: cut.port });
    await addVm(h.admin, { group: G, name: 'vm-storm', ip: h.net.addr(4), port: storm.port });
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('the link to the VM cut: the session ends within the keep-alive bound, with a reason', { timeout: 60000 }, async (t) => {
    if (h.net.mode !== 'netns') { t.skip('needs a network namespace (root)'); return; }
    const { session, term } = await openShell('vm-cut');
    // Link down inside the namespace: packets vanish, no RST or FIN ever
    // comes back, and the bastion's socket sees nothing at all.
    await run('ip', ['-n', h.net.ns, 'link', 'set', h.net.nsIf, 'down']);
    const t0 = Date.now();
    try {
      const closed = await term.waitForControl('closed', { timeoutMs: 20000 });
      const ms = Date.now() - t0;
      assert.match(closed.reason, /stopped answering/, JSON.stringify(closed));
      // 3 unanswered keep-alives at 2 s: ended 8-10 s after the last word.
      assert.ok(ms <= 14000, `ended after ${ms} ms`);
      await term.waitClosed({ timeoutMs: 5000 });
      await waitFor(async () => !(await liveSessions()).some((s) => s.id === session.id),
        { timeoutMs: 5000, what: 'session gone from the list' });
      const au = expectStatus(await h.admin.get('/audit?action=session.end'), 200);
      const rec = au.json.value.find((x) => x.detail && x.detail.session === session.id);
      assert.ok(rec, au.text.slice(0, 500));
      assert.match(rec.detail.reason, /stopped answering/);
    } finally {
      term.close();
      await run('ip', ['-n', h.net.ns, 'link', 'set', h.net.nsIf, 'up'], { allowFail: true });
    }
    // The link back (the carrier takes a moment): a new session works.
    let again = null;
    await waitFor(async () => {
      const r = await connect(h.admin, G, 'vm-cut', body());
      if (r.status !== 201) return false;
      again = r.json.session;
      return true;
    }, { timeoutMs: 15000, intervalMs: 500, what: 'connect once the link is back' });
    expectStatus(await h.admin.del(`/sessions/${again.id}`), [200, 204], 'disconnect');
  });

  h.test('an idle session with a live VM is not ended by the keep-alive', { timeout: 30000 }, async () => {
    const { term } = await openShell();
    try {
      await sleep(9000); // more than 3 keep-alive intervals without a byte
      assert.equal(term.closed, null, JSON.stringify(term.controls));
      const from = term.length;
      term.send('echo STILL$((1+1))\r');
      await term.waitForOutput('STILL2', { from, timeoutMs: 5000 });
    } finally {
      term.close();
    }
  });

  h.test('the browser vanishes without a close: the SSH channel closes within the ping bound', { timeout: 60000 }, async () => {
    const r = await relay(h.daemon.port);
    try {
      const s = expectSession(await connect(h.admin, G, 'vm-main', body()), 'connect');
      const via = { ...h.daemon, origin: `https://127.0.0.1:${r.port}`, wsBase: `wss://127.0.0.1:${r.port}` };
      const a = await attach(via, h.admin, s.terminal);
      assert.ok(a.ok, `attach refused: ${a.status} ${a.body}`);
      a.term.send('echo READY$((20+22))\r');
      await a.term.waitForOutput('READY42', { timeoutMs: 15000 });
      const before = main.sessionPids().length;
      assert.ok(before >= 1, 'sshd serves the session');
      r.vanish();
      const t0 = Date.now();
      await waitFor(async () => !(await liveSessions()).some((x) => x.id === s.id),
        { timeoutMs: 30000, intervalMs: 250, what: 'session ended after the browser vanished' });
      const ms = Date.now() - t0;
      // two silent 2 s intervals, then the tick: at most about 6 s
      assert.ok(ms <= 12000, `ended after ${ms} ms`);
      // the SSH connection to the VM is gone too: sshd's session process exits
      await waitFor(() => main.sessionPids().length < before, { timeoutMs: 10000, what: 'sshd session process gone' });
      assert.match(h.daemon.log(), /sent nothing for \d+ s \(pings unanswered\)/);
    } finally {
      r.close();
    }
  });

  h.test('a quiet but present browser is not closed (it answers pings)', { timeout: 30000 }, async () => {
    const { term } = await openShell();
    try {
      await sleep(8000); // four ping intervals without a keystroke
      assert.equal(term.closed, null, JSON.stringify(term.controls));
      const from = term.length;
      term.send('echo HERE$((2+2))\r');
      await term.waitForOutput('HERE4', { from, timeoutMs: 5000 });
    } finally {
      term.close();
    }
  });

  h.test('bastion killed and restarted: users, resources, roles and vault intact; the open session recorded as ended', { timeout: 90000 }, async () => {
    const pw = `Fault-${randomString(16)}`;
    h.secrets.add(pw, 'password of faultuser');
    expectStatus(await h.admin.put('/users/faultuser', { password: pw }), [200, 201], 'user');
    expectStatus(await h.admin.put('/role-assignments/fault-ra', { principal: 'user:faultuser', role: 'Reader', scope: `/groups/${G}` }), [200, 201], 'role');
    expectStatus(await h.admin.put(`/groups/${G}/vaults/kv`, {}), [200, 201], 'vault');
    expectStatus(await h.admin.put(`/groups/${G}/vaults/kv/access-policies/user:admin`, { secret_permissions: ['get', 'set', 'list'] }), [200, 201], 'policy');
    const secretValue = `s3cret-${randomString(20)}`;
    expectStatus(await h.admin.put(`/groups/${G}/vaults/kv/secrets/db`, { value: secretValue }), [200, 201], 'secret');
    const { session, term } = await openShell();
    await sleep(500); // the session start is written on the worker pool
    h.daemon.proc.kill('SIGKILL');
    await term.waitClosed({ timeoutMs: 10000 }).catch(() => {});
    term.close();
    await waitFor(() => h.daemon.exit !== null, { timeoutMs: 5000, what: 'daemon gone' });
    h.secrets.scan(h.daemon.log(), 'bastion stderr log (before the kill)');

    const adminPassword = h.daemon.adminPassword;
    h.daemon = await startDaemon(h.dir, { adminPassword, env: DAEMON_ENV });
    h.admin = h.client('admin');
    await h.admin.login('admin', adminPassword);
    const u = new Client(h.daemon, { secrets: h.secrets, label: 'faultuser' });
    await u.login('faultuser', pw);
    expectStatus(await u.get(`/groups/${G}/vms/vm-main`), 200, 'faultuser reads the VM through the role');
    const vms = expectStatus(await h.admin.get(`/groups/${G}/vms`), 200);
    assert.deepEqual(vms.json.value.map((v) => v.name).sort(), ['vm-cut', 'vm-main', 'vm-storm']);
    const sec = expectStatus(await h.admin.get(`/groups/${G}/vaults/kv/secrets/db`), 200);
    assert.equal(sec.json.value, secretValue);
    assert.deepEqual((await liveSessions()).map((s) => s.id).filter((id) => id === session.id), []);
    const au = expectStatus(await h.admin.get('/audit?action=session.end'), 200);
    const rec = au.json.value.find((x) => x.detail && x.detail.session === session.id);
    assert.ok(rec, au.text.slice(0, 500));
    assert.equal(rec.detail.reason, 'bastion restarted');
    // and it serves terminals again
    const again = await openShell();
    again.term.close();
  });

  h.test('the store busy past its busy timeout: 503 ServiceUnavailable, reads go on, nothing corrupted', { timeout: 60000 }, async () => {
    const db = path.join(h.daemon.dataDir, 'bastion.db');
    // Another process holds the write lock for 9 s (the busy timeout is 5 s).
    const py = 'import sqlite3,sys,time\n'
      + 'c=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=10)\n'
      + 'c.execute("BEGIN IMMEDIATE")\nprint("locked",flush=True)\ntime.sleep(9)\nc.execute("ROLLBACK")\n';
    const { spawn } = await import('node:child_process');
    const locker = spawn('python3', ['-c', py, db], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((resolve, reject) => {
        locker.stdout.on('data', (d) => { if (String(d).includes('locked')) resolve(); });
        locker.once('exit', (c) => reject(new Error(`locker exited ${c}`)));
      });
      const w = await h.admin.put('/groups/busy-g', {}, { timeoutMs: 20000 });
      expectError(w, 503, 'ServiceUnavailable', { what: 'write while the store is locked' });
      assert.ok(w.ms >= 4000, `answered after the busy timeout, not before (${w.ms} ms)`);
      expectStatus(await h.admin.get(`/groups/${G}/vms`), 200, 'reads go on (WAL)');
      expectStatus(await rawGet(h.daemon.port, '/api/v1/healthz', 3000), 200);
    } finally {
      await new Promise((r) => { if (locker.exitCode !== null) r(); else locker.once('exit', r); });
    }
    expectStatus(await h.admin.put('/groups/busy-g', {}), [200, 201], 'the write works once the lock is gone');
    const ic = await run('python3', ['-c', 'import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])', db]);
    assert.equal(ic.stdout.trim(), 'ok');
  });

  h.test('the disk full: 503 ServiceUnavailable with a clear message, nothing corrupted, writes work once there is room', { timeout: 90000 }, async (t) => {
    if (!isRoot) { t.skip('needs root to mount a tmpfs'); return; }
    const dir = makeTempDir('faults-full');
    const dataDir = path.join(dir, 'data');
    fs.mkdirSync(dataDir, { mode: 0o700 });
    const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', dataDir], { allowFail: true });
    if (m.code !== 0) { t.skip(`cannot mount a tmpfs: ${m.stderr}`); fs.rmSync(dir, { recursive: true, force: true }); return; }
    let d = null;
    try {
      d = await startDaemon(dir);
      h.secrets.add(d.adminPassword, 'admin password (disk full daemon)');
      const c = new Client(d, { secrets: h.secrets, label: 'full' });
      await c.login('admin', d.adminPassword);
      expectStatus(await c.put('/groups/before', {}), [200, 201]);
      // Fill the file system to the last byte.
      const filler = path.join(dataDir, 'filler');
      await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { allowFail: true });
      let refused = null;
      // Until SQLite needs a page it cannot get (the WAL may first reuse
      // room it already has).
      for (let i = 0; i < 400 && !refused; i++) {
        const big = { address_prefixes: Array.from({ length: 64 }, (_, k) => `10.${i % 250}.${k}.0/24`) };
        const r = await c.put(`/groups/before/networks/n${i}`, big, { timeoutMs: 20000 });
        if (r.status === 503) refused = r;
        else expectStatus(r, [200, 201], `network n${i} while filling`);
      }
      assert.ok(refused, 'a write was refused once the disk was full');
      expectError(refused, 503, 'ServiceUnavailable', { messageIncludes: 'store' });
      expectStatus(await rawGet(d.port, '/api/v1/healthz', 3000), 200, 'still answering');
      expectStatus(await c.get('/groups/before'), 200, 'reads go on');
      fs.rmSync(filler);
      expectStatus(await c.put('/groups/after', {}), [200, 201], 'writes work once there is room');
      const ic = await run('python3', ['-c', 'import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])', path.join(dataDir, 'bastion.db')]);
      assert.equal(ic.stdout.trim(), 'ok');
      const stop = await d.stop(10000);
      assert.equal(stop.code, 0, d.logTail(20));
      assert.doesNotMatch(d.log(), /runtime error|Sanitizer/);
      h.secrets.scan(d.log(), 'disk-full daemon log');
    } finally {
      if (d) await d.stop(5000);
      await run('umount', [dataDir], { allowFail: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  h.test('1,000 concurrent connects with wrong passwords: healthz stays fast; no fd or memory growth afterwards', { timeout: 300000 }, async () => {
    const pid = h.daemon.pid;
    // The "VM" and this client share the bastion's two cores here, unlike
    // in a deployment: sshd (a process per connection) and the client run
    // at a lower priority, so that what is measured is the bastion's loop,
    // not the CPU it was left.
    const os = await import('node:os');
    const myPrio = os.getPriority();
    os.setPriority(storm.pid, 19);
    const wrong = `Wrong-${randomString(12)}`;
    h.secrets.add(wrong, 'wrong password');
    const storm1 = async (n) => {
      try { os.setPriority(myPrio); } catch { /* not root: stays lower */ }
      const agent = await preopened(n);
      os.setPriority(Math.min(myPrio + 10, 19));
      // The probe is curl in its own process: this process is busy with
      // a thousand TLS handshakes of its own.
      const { spawn } = await import('node:child_process');
      const url = `https://127.0.0.1:${h.daemon.port}/api/v1/healthz`;
      const prober = spawn('sh', ['-c', `while :; do curl -sk -o /dev/null --max-time 10 -w '%{http_code} %{time_total}\\n' ${url}; sleep 0.2; done`],
        { stdio: ['ignore', 'pipe', 'ignore'], detached: true }); // its own process group
      let out = '';
      prober.stdout.on('data', (d) => { out += d; });
      const results = await Promise.all(Array.from({ length: n }, () =>
        connect(h.admin, G, 'vm-storm', body({ auth: passwordAuth(wrong) }), { timeoutMs: 120000, agent })
          .then((r) => r.status, (e) => `error ${e.message}`)));
      await sleep(300);
      try { process.kill(-prober.pid, 'SIGTERM'); } catch { /* gone */ } // sh and its curl
      await new Promise((r) => { if (prober.exitCode !== null || prober.signalCode) r(); else prober.once('exit', r); });
      const lat = out.trim().split('\n').filter(Boolean).map((l) => {
        const [code, secs] = l.split(' ');
        return { status: Number(code), ms: Math.round(Number(secs) * 1000) };
      });
      return { results, lat };
    };
    const count = (arr) => arr.reduce((m, x) => { m[x] = (m[x] || 0) + 1; return m; }, {});
    const settle = async () => {
      await waitFor(async () => (await liveSessions()).length === 0, { timeoutMs: 30000, what: 'no sessions' });
      await sleep(1500);
    };
    // A small warm-up so that pools and caches exist before the baseline.
    await storm1(50);
    await settle();
    const fd0 = fdCount(pid);
    const { results, lat } = await storm1(1000);
    await settle();
    const fd1 = fdCount(pid);
    const rss1 = rssKb(pid);
    const c = count(results);
    // Each answer is a clear one: 401 SshAuthenticationFailed, or 504 when
    // sshd's own listen backlog (128) dropped the SYN of a burst this size
    // long enough for the 10 s connect bound.
    assert.equal((c[401] || 0) + (c[504] || 0), 1000, `every connect answered 401 or 504: ${JSON.stringify(c)}`);
    assert.ok(c[401] >= 500, `most reached sshd and were refused: ${JSON.stringify(c)}`);
    const worst = Math.max(...lat.map((x) => x.ms));
    assert.ok(lat.length >= 3 && lat.every((x) => x.status === 200), `healthz answered: ${JSON.stringify(lat.slice(0, 20))}`);
    assert.ok(worst < 3000, `healthz worst latency ${worst} ms during the storm`);
    assert.ok(fd1 <= fd0 + 2, `descriptors: ${fd0} before, ${fd1} after`);
    // A second storm must not grow memory again: what the first left is the
    // allocator's high-water mark, not a leak.
    const second = await storm1(500);
    await settle();
    const rss2 = rssKb(pid);
    const fd2 = fdCount(pid);
    const c2 = count(second.results);
    assert.equal((c2[401] || 0) + (c2[504] || 0), 500, JSON.stringify(c2));
    assert.ok(fd2 <= fd0 + 2, `descriptors after the second storm: ${fd2} (baseline ${fd0})`);
    try { os.setPriority(myPrio); } catch { /* not root: stays lower */ }
    assert.ok(rss2 - rss1 < 16 * 1024, `RSS grew ${rss2 - rss1} kB over 500 more failed connects (${rss1} -> ${rss2} kB)`);
  });

  h.test('no password or key in any response or log line', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit();
});
