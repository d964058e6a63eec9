// GET /metrics (issue 6): Prometheus text format at the root, for a bearer
// token of a user with Reader at "/": active sessions, connects by result,
// bytes, the connect-latency histogram, HTTP requests by status, event-loop
// lag.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import {
  expectSession, expectStatus, createTopology, addVm, connect, keyAuth, passwordAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { randomString, waitFor } from './lib/util.mjs';
import https from 'node:https';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';

const h = fileHarness({
  label: 'metrics', block: 130, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
});
const G = 'e2e';
let token;

function body(over = {}) {
  return {
    bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private), ...over,
  };
}

// Parses the exposition; every sample line must be `name{labels} value`.
function parse(text) {
  const samples = new Map();
  const types = new Map();
  for (const line of text.split('\n')) {
    if (!line) continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name, type);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+]+|\+Inf|NaN)$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    samples.set(`${m[1]}${m[2] || ''}`, Number(m[3]));
  }
  return { samples, types };
}

// GET /metrics at the root (the API client prefixes /api/v1).
function rootGet(urlPath, bearer) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: h.daemon.port, path: urlPath, method: 'GET', rejectUnauthorized: false, agent: false,
      headers: bearer ? { Authorization: `Bearer ${bearer}` } : {}, timeout: 10000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('GET /metrics timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function scrape() {
  const r = await rootGet('/metrics', token);
  assert.equal(r.status, 200, `GET /metrics: ${r.status} ${r.text}`);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  return parse(r.text);
}

describe('metrics', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm1', ip: h.net.addr(2) });
    const t = await h.admin.post('/tokens', { name: 'prometheus' });
    expectStatus(t, 201);
    token = t.json.token;
    h.secrets.add(token, 'metrics token');
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('needs a token (or cookie) of a Reader at /', async () => {
    const anon = await rootGet('/metrics', null);
    assert.equal(anon.status, 401, anon.text);
    assert.equal((await rootGet('/metrics', 'not-a-token')).status, 401);
    const pw = `Met-${randomString(16)}`;
    h.secrets.add(pw, 'norole password');
    expectStatus(await h.admin.put('/users/e2enorole', { password: pw }), [200, 201]);
    const u = h.client('e2enorole');
    await u.login('e2enorole', pw);
    assert.equal((await u.get('/metrics')).status, 403);
    // /metrics is at the root; the router also answers it under /api/v1
    assert.equal((await h.admin.get('/api/v1/metrics', { bearer: token, cookies: false })).status, 200);
  });

  h.test('sessions, connects by result, bytes and connect latency move with real sessions', async () => {
    const before0 = (await scrape()).samples;
    const s = expectSession(await connect(h.admin, G, 'vm1', body()));
    const a = await attach(h.daemon, h.admin, s.terminal);
    assert.ok(a.ok);
    a.term.send('echo METRIC$((5*5))\r');
    await a.term.waitForOutput('METRIC25', { timeoutMs: 15000 });
    let m = (await scrape()).samples;
    assert.equal(m.get('bastion_sessions_active'), 1);
    assert.equal(m.get('bastion_connects_total{result="Created"}') - (before0.get('bastion_connects_total{result="Created"}') || 0), 1);
    assert.ok(m.get('bastion_session_bytes_total{direction="to_vm"}') >= 'echo METRIC$((5*5))\r'.length);
    assert.ok(m.get('bastion_session_bytes_total{direction="from_vm"}') > 0);
    a.term.send('exit\r');
    await a.term.waitClosed({ timeoutMs: 10000 });
    a.term.close();
    const wrong = `Wrong-${randomString(12)}`;
    h.secrets.add(wrong, 'wrong ssh password');
    assert.equal((await connect(h.admin, G, 'vm1', body({ auth: passwordAuth(wrong) }))).status, 401);
    assert.equal((await connect(h.admin, G, 'vm1', { ...body(), cols: 0 })).status, 400);
    await waitFor(async () => (await scrape()).samples.get('bastion_sessions_active') === 0,
      { timeoutMs: 10000, what: 'active sessions back to 0' });
    m = (await scrape()).samples;
    assert.equal(m.get('bastion_connects_total{result="SshAuthenticationFailed"}'), 1);
    assert.equal(m.get('bastion_connects_total{result="InvalidRequest"}'), 1);
    // two dials: one success, one refused by sshd
    assert.equal(m.get('bastion_connect_latency_seconds_count'), 2);
    assert.equal(m.get('bastion_connect_latency_seconds_bucket{le="+Inf"}'), 2);
    assert.ok(m.get('bastion_connect_latency_seconds_sum') > 0);
  });

  h.test('HTTP requests by status; each event loop\'s lag; well-formed exposition', async () => {
    await h.client('anon').get('/groups');
    const { samples, types } = await scrape();
    assert.ok(samples.get('bastion_http_requests_total{code="200"}') > 0);
    assert.ok(samples.get('bastion_http_requests_total{code="401"}') >= 1);
    assert.equal(types.get('bastion_http_requests_total'), 'counter');
    assert.equal(types.get('bastion_connect_latency_seconds'), 'histogram');
    assert.equal(types.get('bastion_sessions_active'), 'gauge');
    // One gauge per event loop, each probed.
    const loops = samples.get('bastion_event_loops');
    assert.ok(loops >= 1, `bastion_event_loops ${loops}`);
    for (let i = 0; i < loops; i++) {
      const lag = samples.get(`bastion_event_loop_lag_seconds{loop="${i}"}`);
      assert.ok(lag >= 0 && lag < 1, `lag of loop ${i}: ${lag}`);
    }
    assert.equal(types.get('bastion_connections_moved_total'), 'counter');
    await waitFor(async () => (await scrape()).samples.get('bastion_event_loop_lag_distribution_seconds_count') >= 2,
      { timeoutMs: 5000, what: 'the lag probe runs' });
    // cumulative buckets never decrease
    const buckets = [...samples].filter(([k]) => k.startsWith('bastion_connect_latency_seconds_bucket')).map(([, v]) => v);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i] >= buckets[i - 1]);
  });

  h.test('process_*: CPU, resident memory, descriptors and their limit, start time, from /proc', async () => {
    const { samples, types } = await scrape();
    const now = Date.now() / 1000;
    assert.ok(samples.get('process_cpu_seconds_total') > 0, 'cpu');
    assert.equal(types.get('process_cpu_seconds_total'), 'counter');
    assert.ok(samples.get('process_resident_memory_bytes') > 1 << 20, 'rss above 1 MiB');
    const fds = samples.get('process_open_fds');
    const max = samples.get('process_max_fds');
    assert.ok(fds > 3 && fds < max, `open ${fds}, max ${max}`);
    const start = samples.get('process_start_time_seconds');
    const pstart = fs.statSync(`/proc/${h.daemon.pid}`).mtimeMs / 1000;
    assert.ok(start <= now && start > now - 3600, `start ${start}`);
    assert.ok(Math.abs(start - pstart) < 60, `start ${start} vs /proc ${pstart}`);
  });

  h.test('sign-in failures by reason and lock-outs', { timeout: 60000 }, async () => {
    const pw = `Lock-${randomString(16)}`;
    h.secrets.add(pw, 'lock-me password');
    expectStatus(await h.admin.put('/users/lock-me', { password: pw }), [200, 201]);
    const m0 = (await scrape()).samples;
    const c = h.client('signin-fail');
    const bad = (name) => c.post('/auth/login', { username: name, password: `Wrong-${randomString(10)}` });
    assert.equal((await bad('no-such-user-here')).status, 401);
    for (let i = 0; i < 5; i++) assert.equal((await bad('lock-me')).status, 401, `failure ${i}`);
    assert.equal((await c.post('/auth/login', { username: 'lock-me', password: pw })).status, 429, 'locked');
    const m = (await scrape()).samples;
    const d = (k) => m.get(k) - (m0.get(k) || 0);
    assert.equal(d('bastion_signin_failures_total{reason="unknown_user"}'), 1);
    assert.equal(d('bastion_signin_failures_total{reason="bad_password"}'), 5);
    assert.equal(d('bastion_signin_failures_total{reason="throttled"}'), 1);
    assert.equal(d('bastion_signin_lockouts_total'), 1);
  });

  h.test('the TLS certificate\'s expiry, updated on SIGHUP', { timeout: 60000 }, async () => {
    const certFile = path.join(h.daemon.dataDir, 'tls-cert.pem');
    const expiry = (file) => Math.floor(Date.parse(new crypto.X509Certificate(fs.readFileSync(file)).validTo) / 1000);
    assert.equal((await scrape()).samples.get('bastion_tls_cert_expiry_timestamp_seconds'), expiry(certFile));
    // A new pair valid 5 days, in place of the generated one.
    const tmp = path.join(h.dir, 'newpair');
    fs.mkdirSync(tmp, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '5',
      '-subj', '/CN=127.0.0.1', '-keyout', path.join(tmp, 'key.pem'), '-out', path.join(tmp, 'cert.pem')], { stdio: 'ignore' });
    fs.copyFileSync(path.join(tmp, 'key.pem'), path.join(h.daemon.dataDir, 'tls-key.pem'));
    fs.copyFileSync(path.join(tmp, 'cert.pem'), certFile);
    const want = expiry(certFile);
    assert.ok(want < Date.now() / 1000 + 6 * 86400);
    h.daemon.proc.kill('SIGHUP');
    await waitFor(async () => (await scrape()).samples.get('bastion_tls_cert_expiry_timestamp_seconds') === want,
      { timeoutMs: 10000, what: 'the new expiry' });
  });

  h.test('store errors by kind: a write that waits past the busy timeout counts as busy', { timeout: 60000 }, async () => {
    const m0 = (await scrape()).samples;
    for (const k of ['busy', 'timeout', 'unavailable', 'constraint', 'other']) {
      assert.ok(m0.has(`bastion_store_errors_total{kind="${k}"}`), `kind ${k}`);
    }
    const py = 'import sqlite3,sys,time\n'
      + 'c=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=10)\n'
      + 'c.execute("BEGIN IMMEDIATE")\nprint("locked",flush=True)\nsys.stdin.read()\nc.execute("ROLLBACK")\n';
    // It holds the lock until its stdin closes: after the write's answer
    // (the store's busy timeout is 5 s), however slow the machine.
    const locker = spawn('python3', ['-c', py, path.join(h.daemon.dataDir, 'bastion.db')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let r;
    try {
      await new Promise((resolve, reject) => {
        locker.stdout.on('data', (x) => { if (String(x).includes('locked')) resolve(); });
        locker.once('exit', (x) => reject(new Error(`locker exited ${x}`)));
      });
      r = await h.admin.put('/groups/busy-metric', {});
    } finally {
      locker.stdin.end();
      await new Promise((res) => { if (locker.exitCode !== null) res(); else locker.once('exit', res); });
    }
    assert.equal(r.status, 503, r.text);
    const m = (await scrape()).samples;
    assert.ok(m.get('bastion_store_errors_total{kind="busy"}') - m0.get('bastion_store_errors_total{kind="busy"}') >= 1);
  });

  h.test('no password or key in any response or log line', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit();
});
