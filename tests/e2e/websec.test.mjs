// Web hardening (issue 8, item 3), checked against the running daemon:
// every state-changing route of the router's table refuses a cookie request
// without the CSRF token, a login issues a new session id, TLS below 1.2 and
// non-forward-secret or non-AEAD suites are refused, and the portal's pages
// carry the security headers: the strict policy everywhere but the
// recordings player's page, whose policy adds only 'wasm-unsafe-eval' and
// same-origin framing.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import { expectError } from './lib/api.mjs';
import { rawGet } from './lib/daemon.mjs';
import { REPO_DIR, run } from './lib/util.mjs';

const h = fileHarness({ label: 'websec', daemon: true });

// The routes table of src/api/router.c: { "METHOD", "pattern", handler, flags }.
function routes() {
  const src = fs.readFileSync(path.join(REPO_DIR, 'src/api/router.c'), 'utf8');
  const out = [];
  for (const m of src.matchAll(/\{\s*"([A-Z]+)",\s*"([^"]+)",\s*\w+,\s*([A-Z_0-9|]+)\s*\}/g)) {
    out.push({ method: m[1], pattern: m[2], auth: m[3] !== '0' });
  }
  return out;
}

function tls(args) {
  return run('openssl', ['s_client', '-connect', `127.0.0.1:${h.daemon.port}`, '-brief', ...args],
    { allowFail: true, input: '', timeoutMs: 10000 });
}

describe('websec', () => {
  before(() => h.up(), { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('every authenticated POST/PUT/DELETE route refuses a cookie without X-CSRF-Token', async () => {
    const list = routes().filter((r) => r.auth && r.method !== 'GET');
    assert.ok(list.length >= 15, `found only ${list.length} state-changing routes in router.c`);
    const c = h.client('csrf-walk');
    await c.login('admin', h.daemon.adminPassword);
    for (const r of list) {
      const p = `/${r.pattern.replaceAll('*', 'x1')}`;
      const res = await c.request(r.method, p, { body: r.method === 'DELETE' ? undefined : {}, csrf: false });
      expectError(res, 403, 'CsrfTokenInvalid', { what: `${r.method} ${p}` });
    }
  });

  h.test('each login issues a new session id; the old one stops working', async () => {
    const c = h.client('rotate');
    await c.login('admin', h.daemon.adminPassword);
    const first = c.cookies.get('__Host-bastion_session').value;
    await c.login('admin', h.daemon.adminPassword);
    const second = c.cookies.get('__Host-bastion_session').value;
    assert.notEqual(first, second);
    const old = await c.get('/auth/session', { cookies: false, headers: { Cookie: `__Host-bastion_session=${first}` } });
    expectError(old, 401, 'Unauthenticated');
  });

  h.test('TLS: 1.0 and 1.1 refused; 1.2 only with ECDHE and AEAD; 1.3 works', async () => {
    for (const v of ['-tls1', '-tls1_1']) {
      const r = await tls([v]);
      assert.notEqual(r.code, 0, `${v} was accepted`);
    }
    for (const cipher of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-SHA']) {
      const r = await tls(['-tls1_2', '-cipher', cipher]);
      assert.notEqual(r.code, 0, `TLS 1.2 with ${cipher} was accepted`);
    }
    const ok12 = await tls(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    assert.equal(ok12.code, 0, ok12.stderr || ok12.stdout);
    const ok13 = await tls(['-tls1_3']);
    assert.equal(ok13.code, 0, ok13.stderr || ok13.stdout);
  });

  h.test('the portal page carries HSTS, a strict CSP and no-framing headers', async () => {
    const r = await rawGet(h.daemon.port, '/');
    assert.equal(r.status, 200);
    const csp = r.headers['content-security-policy'];
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(r.headers['strict-transport-security'], /max-age=\d+/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    // No script inline in the page itself.
    assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/i);
  });

  // The whole policy, word for word: the portal's must not loosen when the
  // player's does (src/server/http.c).
  const STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    + "img-src 'self' data:; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
  const PLAYER_CSP = STRICT_CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'")
    .replace("frame-ancestors 'none'", "frame-ancestors 'self'");

  h.test('only the player page may compile WebAssembly and be framed (by its own origin)', async () => {
    for (const p of ['/', '/index.html', '/app.js', '/app.css', '/player.js', '/player.css', '/licenses.txt', '/no-such-file']) {
      const r = await rawGet(h.daemon.port, p);
      assert.equal(r.headers['content-security-policy'], STRICT_CSP, p);
      assert.equal(r.headers['x-frame-options'], 'DENY', p);
    }
    const api = await rawGet(h.daemon.port, '/api/v1/healthz');
    assert.equal(api.headers['content-security-policy'], STRICT_CSP, 'an API answer');
    const r = await rawGet(h.daemon.port, '/player.html');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/html/);
    assert.equal(r.headers['content-security-policy'], PLAYER_CSP);
    assert.equal(r.headers['x-frame-options'], 'SAMEORIGIN');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    assert.match(r.headers['strict-transport-security'], /max-age=\d+/);
    // It loads our bundle and nothing inline.
    assert.match(r.text, /<script src="\/player\.js" defer><\/script>/);
    assert.doesNotMatch(r.text, /<script(?![^>]*\bsrc=)[^>]*>/i);
    // The player's notices ship with it.
    const lic = await rawGet(h.daemon.port, '/licenses.txt');
    assert.match(lic.text, /^==== asciinema-player \d+\.\d+\.\d+ \(Apache-2\.0\) ====$/m);
    assert.match(lic.text, /^==== solid-js \d+\.\d+\.\d+ \(MIT\) ====$/m);
  });
});
