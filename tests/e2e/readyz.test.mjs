// The readiness probe (issue 19 item 4, docs/operations.md "Health"):
// GET /readyz (and /api/v1/readyz), for anyone, 200 {"store":"ok",
// "loops":"ok"} when the store answers a trivial query and every event
// loop a wake-up within 1 s; 503 naming what is not. /healthz stays.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';

// A worker pool of two, so that two stuck calls fill it.
const h = fileHarness({ label: 'readyz', daemonOpts: { env: { UV_THREADPOOL_SIZE: '2' } } });

function rootGet(urlPath) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = https.request({
      host: '127.0.0.1', port: h.daemon.port, path: urlPath, method: 'GET', rejectUnauthorized: false, agent: false, timeout: 15000,
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, text, json: JSON.parse(text), ms: Date.now() - t0 });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

describe('readyz', () => {
  before(() => h.up(), { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('ready: 200 {"store":"ok","loops":"ok"} at the root and under /api/v1, without signing in', async () => {
    for (const p of ['/readyz', '/api/v1/readyz']) {
      const r = await rootGet(p);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
      assert.deepEqual(r.json, { store: 'ok', loops: 'ok' });
    }
    const live = await rootGet('/healthz');
    assert.equal(live.status, 200);
    assert.deepEqual(live.json, { status: 'ok' });
  });

  h.test('a store that does not answer within 1 s: 503 {"store":"timeout"}, and ready again after', { timeout: 60000 }, async () => {
    // Another process holds the write lock; two writes wait for
    // it (the store's busy timeout) on both workers, and the probe's
    // query waits behind them.
    const py = 'import sqlite3,sys,time\n'
      + 'c=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=10)\n'
      + 'c.execute("BEGIN IMMEDIATE")\nprint("locked",flush=True)\nsys.stdin.read()\nc.execute("ROLLBACK")\n';
    // It holds the lock until its stdin closes.
    const locker = spawn('python3', ['-c', py, path.join(h.daemon.dataDir, 'bastion.db')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let r;
    let writes;
    try {
      await new Promise((resolve, reject) => {
        locker.stdout.on('data', (d) => { if (String(d).includes('locked')) resolve(); });
        locker.once('exit', (c) => reject(new Error(`locker exited ${c}`)));
      });
      writes = [h.admin.put('/groups/rz-1', {}), h.admin.put('/groups/rz-2', {})];
      // The writes reach the workers soon; until then a probe may still
      // find a free one (bounded: the busy timeout is 5 s).
      for (let i = 0; i < 8; i++) {
        await new Promise((res) => setTimeout(res, 200));
        r = await rootGet('/readyz');
        if (r.status !== 200) break;
      }
    } finally {
      locker.stdin.end();
      await new Promise((res) => { if (locker.exitCode !== null) res(); else locker.once('exit', res); });
      await Promise.allSettled(writes || []);
    }
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.store, 'timeout');
    assert.equal(r.json.loops, 'ok');
    assert.ok(r.ms >= 900 && r.ms < 5000, `answered after ${r.ms} ms`);
    // The liveness probe does not depend on the store.
    assert.equal((await rootGet('/healthz')).status, 200);
    const again = await rootGet('/readyz');
    assert.equal(again.status, 200, again.text);
  });
});
