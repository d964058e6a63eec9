// The PROXY protocol (issue 15 item 3; docs/scaling.md "Behind HAProxy"):
// a real HAProxy in TCP mode in front of the daemon, sending v2
// (send-proxy-v2) on one frontend and v1 (send-proxy) on another, from
// 127.0.0.5, the one trusted address (server.trusted_proxies). Clients
// connect from addresses of their own (127.0.0.7, …) so that the daemon's
// view of them can be told from HAProxy's: the audit trail's `source`,
// sign-in throttling and the per-address connection cap all see the client.
// Headers from anyone else, and bad or slow ones from the proxy, close the
// connection and are counted.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import https from 'node:https';
import { fileHarness } from './lib/harness.mjs';
import { Client, expectStatus } from './lib/api.mjs';
import { startHaproxy } from './lib/haproxy.mjs';
import { randomString, sleep } from './lib/util.mjs';

const PROXY_ADDR = '127.0.0.5';
const PER_ADDRESS = 4;
const h = fileHarness({
  label: 'proxy',
  daemonOpts: {
    env: {
      BASTION_PROXY_PROTOCOL: 'any',
      BASTION_TRUSTED_PROXIES: `${PROXY_ADDR}/32`,
      BASTION_CONNECTIONS_PER_ADDRESS: String(PER_ADDRESS),
    },
  },
});
let hp;
let token;

// A client of the daemon through a HAProxy frontend, from `from`.
function via(frontend, from, label) {
  return new Client({ ...h.daemon, port: hp.port(frontend) }, { secrets: h.secrets, label, localAddress: from });
}

async function audit(query) {
  const r = expectStatus(await h.admin.get(`/audit?${query}`), 200);
  return r.json.value;
}

async function refusedProxy() {
  const r = await new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: h.daemon.port, path: '/metrics', method: 'GET', rejectUnauthorized: false, agent: false,
      headers: { Authorization: `Bearer ${token}` }, timeout: 10000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(r.status, 200);
  const m = /^bastion_connections_refused_total\{reason="proxy"\} (\d+)$/m.exec(r.text);
  assert.ok(m, 'the proxy refusals are a metric');
  return Number(m[1]);
}

// Opens a raw TCP connection from `from` to the daemon, writes `bytes`
// (all at once, or the parts with `gapMs` between them) and resolves how
// it ended: {closed, ms, data} — closed by the daemon within timeoutMs, or
// not.
function rawConn(from, bytes, { timeoutMs = 4000 } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect({ host: '127.0.0.1', port: h.daemon.port, localAddress: from });
    let data = 0;
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ closed, ms: Date.now() - t0, data });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('connect', () => { if (bytes.length) s.write(bytes); });
    s.on('data', (c) => { data += c.length; });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
  });
}

// A TLS connection through `port` from `from`: resolves the socket once
// the handshake is done, or null when the connection was closed first.
function tlsVia(port, from) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, localAddress: from, rejectUnauthorized: false });
    const timer = setTimeout(() => { s.destroy(); resolve(null); }, 10000);
    s.once('secureConnect', () => { clearTimeout(timer); resolve(s); });
    s.once('error', () => { clearTimeout(timer); s.destroy(); resolve(null); });
    s.once('close', () => { clearTimeout(timer); resolve(null); });
  });
}

function v2Header(src, srcPort, { restLen } = {}) {
  const b = Buffer.alloc(16 + 12);
  Buffer.from([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]).copy(b);
  b[12] = 0x21;
  b[13] = 0x11;
  b.writeUInt16BE(restLen ?? 12, 14);
  src.split('.').forEach((o, i) => { b[16 + i] = Number(o); });
  [127, 0, 0, 1].forEach((o, i) => { b[20 + i] = o; });
  b.writeUInt16BE(srcPort, 24);
  b.writeUInt16BE(443, 26);
  return b;
}

describe('PROXY protocol behind HAProxy', () => {
  before(async () => {
    await h.up();
    hp = await startHaproxy(h.dir, {
      frontends: [
        { name: 'v2', servers: [{ port: h.daemon.port, proxy: 'v2', source: PROXY_ADDR }] },
        { name: 'v1', servers: [{ port: h.daemon.port, proxy: 'v1', source: PROXY_ADDR }] },
        { name: 'plain', servers: [{ port: h.daemon.port, proxy: null, source: PROXY_ADDR }] },
        { name: 'checked', servers: [{ port: h.daemon.port, proxy: 'v2', source: PROXY_ADDR, check: 500 }] },
      ],
    });
    const t = await h.admin.post('/tokens', { name: 'metrics' });
    expectStatus(t, 201);
    token = t.json.token;
    h.secrets.add(token, 'metrics token');
  }, { timeout: 120000 });

  after(async () => {
    if (hp) await hp.stop();
    await h.down();
  }, { timeout: 60000 });

  h.test('sign in through HAProxy, v2 and v1: the audit source is the client\'s address, not the balancer\'s', async () => {
    const { name, pw } = await h.newUser(`pp${randomString(6).toLowerCase()}`);
    for (const [fe, from] of [['v2', '127.0.0.7'], ['v1', '127.0.0.8']]) {
      const c = via(fe, from, `${name} via ${fe}`);
      await c.login(name, pw);
      expectStatus(await c.get('/groups'), [200], `GET /groups through ${fe}`);
      const recs = await audit(`action=auth.login&principal=${encodeURIComponent(`user:${name}`)}`);
      const sources = recs.map((r) => r.detail && r.detail.source);
      assert.ok(sources.includes(from), `a sign-in through ${fe} is audited from ${from}: ${JSON.stringify(sources)}`);
      assert.ok(!sources.includes(PROXY_ADDR), `never from the balancer: ${JSON.stringify(sources)}`);
    }
  });

  h.test('HAProxy\'s health checks (send-proxy-v2: a LOCAL header) are served, not refused', async () => {
    // HAProxy 2.6 opens each check with a v2 LOCAL header (seen on the wire:
    // 0d0a0d0a000d0a515549540a 20 00 0000), then closes: refusing it would
    // be counted here.
    const before = await refusedProxy();
    await sleep(2500); // five checks at 500 ms
    assert.equal(await refusedProxy(), before, 'no health check was refused');
    assert.doesNotMatch(h.daemon.log(), /closed: (a malformed|no PROXY header|a PROXY header)/, 'nothing logged about them');
    assert.match(hp.logTail(200), /fe_checked|be_checked/, 'the checked backend is up');
    assert.doesNotMatch(hp.logTail(200), /be_checked\/s1 is DOWN/, 'HAProxy never saw the daemon down');
  });

  h.test('sign-in throttling counts the client behind the balancer, not the balancer', { timeout: 120000 }, async () => {
    const bad = via('v2', '127.0.0.9', 'guesser');
    let locked = null;
    for (let i = 0; i < 30 && !locked; i++) {
      const r = await bad.post('/auth/login', { username: `nobody${i}`, password: `wrong-${randomString(12)}` }, { csrf: false });
      if (r.status === 429) locked = i;
      else assert.equal(r.status, 401, `attempt ${i}: ${r.status} ${r.text}`);
    }
    assert.equal(locked, 20, 'the 21st failure from one address is refused');
    const recs = await audit('action=auth.throttled');
    assert.ok(recs.some((r) => r.detail && r.detail.source === '127.0.0.9' && r.detail.by === 'address'),
      `the lock names the client: ${JSON.stringify(recs.map((r) => r.detail))}`);
    // Another client behind the same balancer signs in.
    const other = via('v2', '127.0.0.10', 'admin elsewhere');
    await other.login('admin', h.daemon.adminPassword);
  });

  h.test('the per-address connection cap counts the client behind the balancer', { timeout: 60000 }, async () => {
    const held = [];
    try {
      for (let i = 0; i < PER_ADDRESS; i++) {
        const s = await tlsVia(hp.port('v2'), '127.0.0.11');
        assert.ok(s, `connection ${i + 1} of ${PER_ADDRESS} from 127.0.0.11`);
        held.push(s);
      }
      assert.equal(await tlsVia(hp.port('v2'), '127.0.0.11'), null, 'one more from 127.0.0.11 is closed');
      const s = await tlsVia(hp.port('v2'), '127.0.0.12');
      assert.ok(s, 'another client behind the same balancer connects');
      held.push(s);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  h.test('a PROXY header from an untrusted address is refused; a missing, malformed, oversized or slow one from the proxy too', { timeout: 60000 }, async () => {
    const before = await refusedProxy();
    // Untrusted (the test's own 127.0.0.1): never believed, v1 or v2.
    let r = await rawConn('127.0.0.1', Buffer.from('PROXY TCP4 10.9.9.9 127.0.0.1 1234 443\r\n'));
    assert.deepEqual([r.closed, r.data], [true, 0], 'v1 header from an untrusted address: closed');
    r = await rawConn('127.0.0.1', v2Header('10.9.9.9', 1234));
    assert.deepEqual([r.closed, r.data], [true, 0], 'v2 header from an untrusted address: closed');
    // From the proxy's address: no header (TLS at once), through HAProxy too.
    assert.equal(await tlsVia(h.daemon.port, PROXY_ADDR), null, 'the proxy without a header: closed');
    assert.equal(await tlsVia(hp.port('plain'), '127.0.0.13'), null, 'HAProxy without send-proxy: closed');
    r = await rawConn(PROXY_ADDR, Buffer.from('PROXY TCP4 10.9.9.9\r\n'));
    assert.deepEqual([r.closed, r.data], [true, 0], 'malformed v1: closed');
    r = await rawConn(PROXY_ADDR, Buffer.from(`PROXY UNKNOWN ${'x'.repeat(200)}`));
    assert.deepEqual([r.closed, r.data], [true, 0], 'v1 without CRLF in 107 bytes: closed');
    r = await rawConn(PROXY_ADDR, v2Header('10.9.9.9', 1234, { restLen: 0xffff }));
    assert.deepEqual([r.closed, r.data], [true, 0], 'v2 announcing 64 KiB: closed');
    // Slow: half a header, then nothing. The deadline (5 s) closes it.
    r = await rawConn(PROXY_ADDR, Buffer.from('PROXY TCP4 10.9.'), { timeoutMs: 15000 });
    assert.equal(r.closed, true, 'half a header: closed');
    assert.ok(r.ms >= 4000 && r.ms < 10000, `closed after ${r.ms} ms (deadline 5 s)`);
    await sleep(200);
    const after = await refusedProxy();
    assert.ok(after - before >= 8, `counted: ${after - before} refusals (reason="proxy")`);
    // Still serving, direct and through the balancer.
    expectStatus(await h.admin.get('/groups'), [200]);
    const c = via('v2', '127.0.0.14', 'after');
    await c.login('admin', h.daemon.adminPassword);
  });
});
