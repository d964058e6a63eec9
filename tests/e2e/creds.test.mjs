// Credentials under attack (issue 13): password hashing cannot starve the
// API, an unknown user name never reaches the audit trail, the database
// files are the owner's only, parse errors do not echo the body.
//
// Sign-ins that must look like other machines are sent from other loopback
// source addresses (127.0.13.X: all of 127/8 is local on Linux), so that
// the per-address throttle does not end the flood before it starts.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import { expectError, expectStatus, loginFrom as loginFromAddr } from './lib/api.mjs';
import { randomString } from './lib/util.mjs';

// The umask the daemon inherits: the database files must be 0600 anyway.
process.umask(0o022);

const h = fileHarness({ label: 'creds', daemon: true });

function loginFrom(localAddress, username, password) {
  return loginFromAddr(h, localAddress, username, password, { timeoutMs: 60000 });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

describe('creds', () => {
  before(() => h.up(), { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('a flood of wrong sign-ins: token-authenticated calls stay fast, surplus sign-ins get 503 Retry-After: 1', { timeout: 120000 }, async () => {
    const tok = expectStatus(await h.admin.post('/tokens', { name: 'flood-probe' }), 201, 'token');
    const probe = h.client('probe');
    probe.bearer = tok.json.token;
    // One kept-alive connection: the probe times the API, not TLS handshakes.
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    h.secrets.add(tok.json.token, 'probe token');
    expectStatus(await probe.get('/auth/session'), 200, 'probe works');

    // 240 wrong sign-ins, 32 at a time, from 24 addresses (10 each: under
    // the address threshold), each for a different name (one failure per
    // name: under the account threshold). Bounded in count and time.
    const TOTAL = 240, CONCURRENCY = 32, ADDRS = 24;
    const wrong = `Wrong-${randomString(16)}`;
    const statuses = new Map();
    let next = 0, busy = 0;
    const deadline = Date.now() + 90000;
    let flooding = true;
    const worker = async () => {
      while (next < TOTAL && Date.now() < deadline) {
        const i = next++;
        const r = await loginFrom(`127.0.13.${1 + (i % ADDRS)}`, `flood-${i}`, wrong);
        statuses.set(r.status, (statuses.get(r.status) || 0) + 1);
        if (r.status === 503) {
          expectError(r, 503, 'ServiceUnavailable', { what: `sign-in ${i}` });
          assert.equal(r.headers['retry-after'], '1', `sign-in ${i}: Retry-After`);
          busy++;
        } else {
          expectError(r, 401, 'Unauthenticated', { what: `sign-in ${i}` });
        }
      }
    };
    const flood = Promise.all(Array.from({ length: CONCURRENCY }, worker)).finally(() => { flooding = false; });

    // Meanwhile, one authenticated call after another, timed.
    const times = [];
    await new Promise((r) => setTimeout(r, 300)); // let the flood fill the pool
    for (let i = 0; i < 200 && flooding; i++) {
      const r = await probe.get('/auth/session', { agent });
      expectStatus(r, 200, `probe ${i}`);
      times.push(r.ms);
    }
    await flood;
    agent.destroy();
    assert.ok(times.length >= 10, `enough probes ran during the flood (${times.length})`);
    times.sort((a, b) => a - b);
    const p50 = percentile(times, 0.5), max = times[times.length - 1];
    const summary = `${times.length} probes: p50 ${p50} ms, p90 ${percentile(times, 0.9)} ms, max ${max} ms; sign-ins ${JSON.stringify([...statuses])}`;
    process.stderr.write(`[creds] ${summary}\n`);
    assert.ok(p50 < 200, `p50 under 200 ms: ${summary}`);
    assert.ok(max < 1000, `max under 1 s: ${summary}`);
    assert.ok(busy > 0, `some sign-ins were refused with 503: ${summary}`);
    assert.ok((statuses.get(401) || 0) > 0, `some sign-ins were checked: ${summary}`);
  });

  h.test('the throttle cannot count (store locked past its busy timeout): right and wrong passwords both get 503', { timeout: 60000 }, async () => {
    const pw = `Pw-${randomString(20)}`;
    h.secrets.add(pw, 'password of busy-user');
    expectStatus(await h.admin.put('/users/busy-user', { password: pw }), 201, 'user');
    const db = path.join(h.daemon.dataDir, 'bastion.db');
    // Another process holds the write lock for 9 s (the busy timeout is 5 s).
    const py = 'import sqlite3,sys,time\n'
      + 'c=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=10)\n'
      + 'c.execute("BEGIN IMMEDIATE")\nprint("locked",flush=True)\ntime.sleep(9)\nc.execute("ROLLBACK")\n';
    const locker = spawn('python3', ['-c', py, db], { stdio: ['ignore', 'pipe', 'inherit'] });
    let answers;
    try {
      await new Promise((resolve, reject) => {
        locker.stdout.on('data', (d) => { if (String(d).includes('locked')) resolve(); });
        locker.once('exit', (c) => reject(new Error(`locker exited ${c}`)));
      });
      answers = await Promise.all([
        loginFrom('127.0.14.1', 'busy-user', `${pw}x`),
        loginFrom('127.0.14.2', 'busy-user', pw),
        loginFrom('127.0.14.3', 'busy-user', `${pw}y`),
      ]);
    } finally {
      await new Promise((r) => { if (locker.exitCode !== null) r(); else locker.once('exit', r); });
    }
    for (const [i, r] of answers.entries()) {
      expectError(r, 503, 'ServiceUnavailable', { what: `sign-in ${i} while the store is locked` });
      assert.equal(r.headers['set-cookie'], undefined, `sign-in ${i}: no cookie`);
    }
    // Once the store writes again, the right password works and the wrong
    // ones were not counted as checked guesses (nothing was checked).
    const ok = await loginFrom('127.0.14.2', 'busy-user', pw);
    expectStatus(ok, 200, 'the right password once the lock is gone');
  });

  h.test('an unknown user name (maybe a password typed there) is nowhere in the audit trail or the log', async () => {
    const marker = `Mk${randomString(20)}`;
    h.secrets.add(marker, 'password typed into the username field');
    const c = h.client('marker');
    expectError(await c.post('/auth/login', { username: marker, password: 'whatever-password-1' }), 401, 'Unauthenticated');
    expectError(await c.post('/auth/login', { username: `${marker} with spaces!`, password: 'whatever-password-1' }), 401, 'Unauthenticated');
    const a = expectStatus(await h.admin.get('/audit?action=auth.login&result=failure'), 200, 'audit');
    assert.ok(a.json.value.length >= 2, a.text);
    assert.ok(a.json.value.some((r) => r.principal === 'user:?' && r.target === 'user:?'), a.text);
    assert.ok(!a.text.includes(marker), 'the marker is not in the audit trail');
    assert.ok(!h.daemon.log().includes(marker), 'the marker is not in the daemon log');
  });

  h.test('parse errors do not echo the body', async () => {
    const marker = `Echo${randomString(16)}`;
    const c = h.client('echo');
    const bodies = [
      `{"username": ${marker}}`,
      `{"username": "a", "password": "b" ${marker}}`,
      `${marker}`,
      `{"${marker}": tru}`,
      `["${marker}"`,
    ];
    for (const raw of bodies) {
      const r = await c.request('POST', '/auth/login', { raw });
      expectError(r, 400, 'InvalidRequest', { what: raw });
      assert.ok(!r.text.includes(marker), `no echo of ${raw}: ${r.text}`);
    }
  });

  h.test('the database files are 0600 whatever the umask', async () => {
    // A write, so that the WAL and its index exist.
    expectStatus(await h.admin.put('/groups/creds-modes', {}), [200, 201], 'write');
    for (const f of ['bastion.db', 'bastion.db-wal', 'bastion.db-shm']) {
      const st = fs.statSync(path.join(h.daemon.dataDir, f));
      assert.equal((st.mode & 0o777).toString(8), '600', `${f} mode`);
    }
  });

  h.test('no secret in any response or log line', () => h.assertNoLeaks());

  h.testCleanExit();
});
