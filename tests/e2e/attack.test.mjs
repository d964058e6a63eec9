// What an attacker does to the server's queues (issue 13 items 1, 2, 3, 12):
// pipelined requests it never reads, WebSocket frames that provoke answers
// while it does not read, more connections than one address may hold, and
// frames sent with the upgrade before the attach completes. Each memory
// test measures the daemon's RSS (/proc/PID/status) under the attack and
// asserts a bound; each checks that a normal client is still served.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { fileHarness } from './lib/harness.mjs';
import { expectSession, expectStatus, createTopology, addVm, connect, keyAuth, ids, Client } from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { rawGet, startDaemon } from './lib/daemon.mjs';
import { sleep, waitFor, makeTempDir, run } from './lib/util.mjs';

const PING_S = 2; // browser ping interval: a peer that stops reading is closed within ~3 of them
const h = fileHarness({
  label: 'attack', block: 150, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
  // Under ASan, freed memory waits in a quarantine (256 MiB by default)
  // that RSS would count as growth: a small one measures what is held.
  daemonOpts: {
    env: {
      BASTION_BROWSER_PING: `${PING_S}s`,
      ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=8'].filter(Boolean).join(':'),
    },
  },
});
const G = 'e2e';
const PER_ADDRESS = 256; // the default of limits.connections_per_address

function rssKb(pid) { return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]); }

// Samples the daemon's RSS every 100 ms for ms; returns the peak.
async function peakRss(pid, ms) {
  let peak = rssKb(pid);
  for (let t = 0; t < ms; t += 100) {
    await sleep(100);
    peak = Math.max(peak, rssKb(pid));
  }
  return peak;
}

function tlsOpen(port) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(s));
    s.once('error', reject);
  });
}

// A client frame (masked, with a zero key: the payload stays as it is).
function frame(opcode, payload) {
  assert.ok(payload.length < 126);
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

function repeated(unit, totalBytes) {
  const n = Math.floor(totalBytes / unit.length);
  return Buffer.alloc(n * unit.length).fill(unit);
}

async function newSession() {
  return expectSession(await connect(h.admin, G, 'vm1', {
    bastion: ids.bastion(G, 'b1'),
    username: h.user.name,
    auth: keyAuth(h.keys['ed25519-openssh'].private),
    cols: 80,
    rows: 24,
  }), 'connect vm1');
}

async function openShell() {
  const s = await newSession();
  const a = await attach(h.daemon, h.admin, s.terminal);
  assert.ok(a.ok, `attach refused: ${a.status} ${a.body}`);
  a.term.send('echo READY$((20+22))\r');
  await a.term.waitForOutput('READY42', { timeoutMs: 15000 });
  return { session: s, term: a.term };
}

async function sessionGone(id, what) {
  await waitFor(async () => !expectStatus(await h.admin.get('/sessions'), 200).json.value.some((x) => x.id === id),
    { timeoutMs: 30000, what });
}

// Floods an attached terminal with frames while never reading what comes
// back; returns the daemon's RSS growth (kB) and checks the peer is closed.
async function floodWithoutReading(payload, what) {
  const pid = h.daemon.pid;
  const { session, term } = await openShell();
  const sock = term.ws._socket;
  sock.pause(); // from now on nothing the server sends is read
  sock.on('error', () => {});
  const before = rssKb(pid);
  sock.write(payload);
  const peak = await peakRss(pid, 6000);
  process.stderr.write(`[attack] ${what}: RSS ${before} -> ${peak} kB\n`);
  expectStatus(await rawGet(h.daemon.port, '/api/v1/healthz', 5000), 200, `healthz during the ${what}`);
  // It stopped reading a peer that does not read: the peer is closed.
  await sessionGone(session.id, `the ${what} peer closed`);
  sock.destroy();
  return peak - before;
}

describe('attack', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm1', ip: h.net.addr(2) });
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('pipelined GET /app.js never read (4 connections x 4,000): RSS grows < 64 MiB; others are served', { timeout: 60000 }, async () => {
    const pid = h.daemon.pid;
    const req = 'GET /app.js HTTP/1.1\r\nHost: bastion.test\r\n\r\n'; // 44 bytes
    assert.equal(req.length, 44);
    const socks = [];
    const before = rssKb(pid);
    try {
      for (let i = 0; i < 4; i++) {
        const s = await tlsOpen(h.daemon.port);
        s.on('error', () => {});
        s.pause();
        // Two connections with every request in a TLS record of its own,
        // two with all of them in as few records as fit.
        // (Node coalesces writes made while one is pending: each waits.)
        if (i % 2 === 0) for (let k = 0; k < 4000; k++) await new Promise((r) => s.write(req, r));
        else s.write(req.repeat(4000));
        socks.push(s);
      }
      const peak = await peakRss(pid, 5000);
      expectStatus(await rawGet(h.daemon.port, '/api/v1/healthz', 5000), 200, 'healthz during the attack');
      const js = await rawGet(h.daemon.port, '/app.js', 20000);
      assert.equal(js.status, 200);
      assert.ok(js.text.length > 100000, `app.js whole: ${js.text.length} bytes`);
      process.stderr.write(`[attack] pipelined GET /app.js: RSS ${before} -> ${peak} kB\n`);
      assert.ok(peak - before < 64 * 1024, `RSS grew ${peak - before} kB (${before} -> ${peak} kB)`);
    } finally {
      for (const s of socks) s.destroy();
    }
  });

  h.test('a client that stops reading mid-answer is closed after 60 s without progress', { timeout: 120000 }, async () => {
    const s = await tlsOpen(h.daemon.port);
    s.on('error', () => {});
    try {
      s.pause();
      s.write('GET /app.js HTTP/1.1\r\nHost: bastion.test\r\n\r\n'.repeat(50));
      // The server's side of this connection, as the kernel sees it.
      const established = async () => (await run('ss', ['-Htn', 'state', 'established',
        `( sport = :${h.daemon.port} and dport = :${s.localPort} )`])).stdout.trim().split('\n').filter(Boolean).length;
      await sleep(2000);
      assert.equal(await established(), 1, 'held while the client may still read');
      const t0 = Date.now();
      await waitFor(async () => (await established()) === 0, { timeoutMs: 90000, intervalMs: 1000, what: 'the server closed its side' });
      assert.ok(Date.now() - t0 > 40000, `closed after ${Date.now() - t0} ms: too early`);
    } finally {
      s.destroy();
    }
  });

  h.test('8 MiB of one-byte invalid text frames, answers never read: RSS grows < 32 MiB; the peer is closed', { timeout: 90000 }, async () => {
    const grew = await floodWithoutReading(repeated(frame(1, Buffer.from('x')), 8 * 1024 * 1024), 'text flood');
    assert.ok(grew < 32 * 1024, `RSS grew ${grew} kB`);
  });

  h.test('64 MiB of pings, pongs never read: RSS grows < 32 MiB; the peer is closed', { timeout: 90000 }, async () => {
    const grew = await floodWithoutReading(repeated(frame(9, Buffer.alloc(125, 0x61)), 64 * 1024 * 1024), 'ping flood');
    assert.ok(grew < 32 * 1024, `RSS grew ${grew} kB`);
  });

  h.test('binary frames sent with the upgrade, before the attach completes, reach the VM', { timeout: 60000 }, async () => {
    const s = await newSession();
    const sock = await tlsOpen(h.daemon.port);
    try {
      const key = crypto.randomBytes(16).toString('base64');
      const upgrade = `GET ${s.terminal} HTTP/1.1\r\nHost: 127.0.0.1:${h.daemon.port}\r\n`
        + 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
        + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Protocol: bastion.v1\r\n`
        + `Origin: ${h.daemon.origin}\r\nCookie: ${h.admin.cookieHeader()}\r\n\r\n`;
      // One write: the frames are there before the server has even authorised the upgrade.
      sock.write(Buffer.concat([Buffer.from(upgrade), frame(2, Buffer.from('echo EARLY$((40+2))\r'))]));
      let raw = Buffer.alloc(0);
      let out = Buffer.alloc(0);
      let head = null;
      sock.on('data', (d) => {
        raw = Buffer.concat([raw, d]);
        if (!head) {
          const end = raw.indexOf('\r\n\r\n');
          if (end < 0) return;
          head = raw.subarray(0, end).toString();
          raw = raw.subarray(end + 4);
        }
        // Server frames: unmasked; binary payloads are the terminal's output.
        for (;;) {
          if (raw.length < 2) return;
          let len = raw[1] & 0x7f;
          let off = 2;
          if (len === 126) { if (raw.length < 4) return; len = raw.readUInt16BE(2); off = 4; }
          else if (len === 127) { if (raw.length < 10) return; len = Number(raw.readBigUInt64BE(2)); off = 10; }
          if (raw.length < off + len) return;
          if ((raw[0] & 0x0f) === 2) out = Buffer.concat([out, raw.subarray(off, off + len)]);
          raw = raw.subarray(off + len);
        }
      });
      await waitFor(() => head !== null, { timeoutMs: 10000, what: 'the upgrade answer' });
      assert.match(head, /^HTTP\/1\.1 101 /, head);
      await waitFor(() => out.includes('EARLY42'), { timeoutMs: 15000, what: `EARLY42 in the output (got ${JSON.stringify(out.toString())})` });
    } finally {
      sock.destroy();
    }
    await sessionGone(s.id, 'the session ended with its socket');
  });

  // Plain TCP connections, held open without a byte: each is one the
  // server keeps (until the 30 s handshake bound).
  async function openMany(port, n) {
    const socks = [];
    for (let i = 0; i < n; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.closedByServer = false;
      s.on('end', () => { s.closedByServer = true; });
      s.on('close', () => { s.closedByServer = true; });
      s.on('error', () => { s.closedByServer = true; });
      await new Promise((resolve) => { s.once('connect', resolve); s.once('error', resolve); });
      socks.push(s);
    }
    await sleep(1000); // a refused connection is closed at once
    return socks;
  }

  async function refusedMetric(reason) {
    const r = expectStatus(await h.admin.get('/metrics'), 200);
    const m = new RegExp(`^bastion_connections_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(r.text);
    assert.ok(m, `metric for ${reason} in ${r.text.slice(0, 200)}`);
    return Number(m[1]);
  }

  h.test(`connections per address: past ${PER_ADDRESS} from 127.0.0.1 closed at once and counted; closing some lets new ones in`, { timeout: 60000 }, async () => {
    const metricBefore = await refusedMetric('per_address');
    const socks = await openMany(h.daemon.port, PER_ADDRESS + 20);
    try {
      const open = socks.filter((s) => !s.closedByServer);
      const refused = socks.length - open.length;
      assert.ok(open.length <= PER_ADDRESS && open.length >= PER_ADDRESS - 5, `open: ${open.length}`);
      assert.ok(refused >= 20, `refused: ${refused}`);
      // The refused ones were the last, not a random few.
      assert.ok(socks.slice(0, PER_ADDRESS - 5).every((s) => !s.closedByServer), 'the first ones stay');
      // Closing 10 makes room (the server sees them go).
      for (const s of open.slice(0, 10)) s.destroy();
      await sleep(500);
      const more = await openMany(h.daemon.port, 5);
      socks.push(...more);
      assert.ok(more.every((s) => !s.closedByServer), 'new connections are let in once others closed');
      expectStatus(await rawGet(h.daemon.port, '/api/v1/healthz', 5000), 200, 'a request on the last free slot');
      for (const s of socks) s.destroy();
      await sleep(500);
      assert.ok(await refusedMetric('per_address') - metricBefore >= refused, 'counted');
    } finally {
      for (const s of socks) s.destroy();
    }
  });

  h.test('connections in total (limits.connections = 20, no per-address cap): the 21st is closed at once', { timeout: 60000 }, async () => {
    const dir = makeTempDir('attack-total');
    let d = null;
    const socks = [];
    try {
      d = await startDaemon(dir, { env: { BASTION_MAX_CONNECTIONS: '20', BASTION_CONNECTIONS_PER_ADDRESS: '0' } });
      h.secrets.add(d.adminPassword, 'admin password (total-cap daemon)');
      // The start's health checks closed their connections; the daemon
      // counts one until it has seen the close: wait until it holds none.
      await waitFor(async () => (await run('ss', ['-Htn', `( sport = :${d.port} )`])).stdout.trim() === '',
        { timeoutMs: 10000, what: 'the daemon to hold no connection' });
      socks.push(...await openMany(d.port, 30));
      const open = socks.filter((s) => !s.closedByServer).length;
      assert.equal(open, 20, `open: ${open} of 30`);
      for (const s of socks) s.destroy();
      await sleep(500);
      const c = new Client(d, { secrets: h.secrets, label: 'total' });
      await c.login('admin', d.adminPassword);
      const m = /^bastion_connections_refused_total\{reason="total"\} (\d+)$/m.exec((await c.get('/metrics')).text);
      assert.ok(m && Number(m[1]) >= 10, `counted: ${m && m[1]}`);
      const stop = await d.stop(10000);
      assert.equal(stop.code, 0, d.logTail(20));
    } finally {
      for (const s of socks) s.destroy();
      if (d) await d.stop(5000);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  h.test('no password or key in any response or log line', () => {
    h.assertNoLeaks();
  });

  h.testCleanExit();
});
