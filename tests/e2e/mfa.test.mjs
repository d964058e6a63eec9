// Second factors (docs/sign-in.md "Second factors", docs/api.md): TOTP
// enrolment and confirmation with codes computed here from the secret
// (RFC 6238), sign-in without / with a wrong / with the right code, a
// replayed code refused, recovery codes once, wrong codes counted by the
// throttle, removal, an Owner's reset (audited), auth.require_mfa's
// restricted session, and the portal's QR code and second step in Chromium.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import https from 'node:https';
import { fileHarness } from './lib/harness.mjs';
import { expectError, expectStatus } from './lib/api.mjs';
import { startDaemon } from './lib/daemon.mjs';
import { Client } from './lib/api.mjs';
import { randomString, makeTempDir } from './lib/util.mjs';
import { launch, newContext, signIn, shot } from './lib/browser.mjs';
import qrcode from '../../web/node_modules/qrcode-generator/dist/qrcode.mjs';
import { runCli, expectCode } from './lib/cli.mjs';
import { BASTION_BIN } from './lib/daemon.mjs';
import { which, trackPid, untrackPid } from './lib/util.mjs';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const h = fileHarness({ label: 'mfa', daemon: true });

function base32Decode(s) {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0; let acc = 0; const out = [];
  for (const ch of s.replace(/=+$/, '')) {
    const v = alpha.indexOf(ch.toUpperCase());
    assert.ok(v >= 0, `base32 character ${ch}`);
    acc = (acc << 5) | v; bits += 5;
    if (bits >= 8) { out.push((acc >> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}

// RFC 6238 TOTP, HMAC-SHA-1, 30 s, 6 digits, for step `step`.
function totpAt(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32Decode(secret)).update(msg).digest();
  const off = mac[19] & 0xf;
  const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return String(bin % 1000000).padStart(6, '0');
}
const nowStep = () => Math.floor(Date.now() / 1000 / 30);

// Enrols and confirms TOTP for client c; returns {secret, recovery}.
async function enrol(c, name) {
  const e = expectStatus(await c.post('/auth/mfa/totp', {}), 201, 'enrol');
  const { secret, otpauth_uri: uri } = e.json;
  assert.match(secret, /^[A-Z2-7]{32}$/, 'a 160-bit base32 secret');
  assert.equal(uri, `otpauth://totp/bastion:${name}?secret=${secret}&issuer=bastion&algorithm=SHA1&digits=6&period=30`);
  h.secrets.add(secret, `TOTP secret of ${name}`);
  // Not active before confirmation: a sign-in still needs no code.
  const pre = h.client(`${name}-pre`);
  const r = await pre.post('/auth/login', { username: name, password: c.pw });
  assert.equal(r.status, 200, r.text);
  expectError(await c.post('/auth/mfa/totp/confirm', { code: '000000' }), 400, 'InvalidOtp');
  const conf = expectStatus(await c.post('/auth/mfa/totp/confirm', { code: totpAt(secret, nowStep()) }), 200, 'confirm');
  const recovery = conf.json.recovery_codes;
  assert.equal(recovery.length, 10);
  assert.equal(new Set(recovery).size, 10);
  for (const rc of recovery) {
    assert.match(rc, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
    h.secrets.add(rc, `recovery code of ${name}`);
  }
  expectError(await c.post('/auth/mfa/totp', {}), 409, 'MfaAlreadyEnrolled');
  expectError(await c.post('/auth/mfa/totp/confirm', { code: totpAt(secret, nowStep()) }), 409, 'MfaNotPending');
  const st = expectStatus(await c.get('/auth/mfa'), 200);
  assert.deepEqual(st.json.totp, { enrolled: true, confirmed: true });
  assert.equal(st.json.recovery_codes_left, 10);
  return { secret, recovery };
}

// POST /auth/login from a chosen loopback source address (the throttle
// counts per address), with any body; the answer is scanned for secrets.
function loginWith(localAddress, body) {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: h.daemon.port, method: 'POST', path: '/api/v1/auth/login', localAddress,
      headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length },
      rejectUnauthorized: false, agent: false, timeout: 30000,
    }, (res) => {
      const chunks = [];
      res.on('data', (ch) => chunks.push(ch));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        h.secrets.scan(text, `login from ${localAddress}`);
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('login: no answer')));
    req.on('error', reject);
    req.end(payload);
  });
}

async function newUser(name) {
  const u = await h.newUser(name);
  u.c.pw = u.pw;
  return u;
}

async function auditOf(action) {
  const r = expectStatus(await h.admin.get(`/audit?action=${encodeURIComponent(action)}&limit=100`), 200);
  return r.json.value;
}

describe('mfa', () => {
  before(() => h.up(), { timeout: 60000 });

  h.test('TOTP: enrol, confirm, then sign-in needs the code; wrong and replayed codes refused', async () => {
    const u = await newUser('totp-alice');
    const { secret } = await enrol(u.c, u.name);
    const c = h.client('alice-2');
    expectError(await c.post('/auth/login', { username: u.name, password: u.pw }), 401, 'MfaRequired');
    assert.equal(c.sessionCookie(), null, 'no cookie without the code');
    // A wrong password with a right code is still a wrong password.
    expectError(await c.post('/auth/login', { username: u.name, password: `${u.pw}x`, otp: totpAt(secret, nowStep() + 1) }), 401, 'Unauthenticated');
    expectError(await c.post('/auth/login', { username: u.name, password: u.pw, otp: '123456' === totpAt(secret, nowStep()) ? '654321' : '123456' }), 401, 'Unauthenticated');
    assert.equal(c.sessionCookie(), null, 'no cookie with a wrong code');
    // The next step's code (±1 step) works once, then is a replay.
    const code = totpAt(secret, nowStep() + 1);
    const ok = await c.post('/auth/login', { username: u.name, password: u.pw, otp: code });
    assert.equal(ok.status, 200, ok.text);
    assert.ok(c.sessionCookie(), 'signed in with the code');
    expectStatus(await c.get('/auth/session'), 200);
    const again = h.client('alice-replay');
    expectError(await again.post('/auth/login', { username: u.name, password: u.pw, otp: code }), 401, 'Unauthenticated');
    // An older step than the one used is refused as well.
    expectError(await again.post('/auth/login', { username: u.name, password: u.pw, otp: totpAt(secret, nowStep()) }), 401, 'Unauthenticated');
    const fails = (await auditOf('auth.login')).filter((a) => a.principal === `user:${u.name}`);
    assert.ok(fails.some((a) => a.result === 'mfa-required'), 'MfaRequired audited');
    assert.ok(fails.some((a) => a.result === 'failure'), 'wrong code audited');
  });

  h.test('the store holds no TOTP key and no recovery code in the clear', async () => {
    const u = await newUser('totp-store');
    const { secret, recovery } = await enrol(u.c, u.name);
    const raw = base32Decode(secret);
    let files = 0;
    for (const f of fs.readdirSync(h.daemon.dataDir)) {
      if (!f.startsWith('bastion.db')) continue;
      const bytes = fs.readFileSync(path.join(h.daemon.dataDir, f));
      files++;
      assert.equal(bytes.indexOf(raw), -1, `the raw TOTP key is not in ${f}`);
      assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `the base32 key is not in ${f}`);
      for (const rc of recovery) {
        assert.equal(bytes.indexOf(Buffer.from(rc)), -1, `a recovery code is not in ${f}`);
        assert.equal(bytes.indexOf(Buffer.from(rc.replaceAll('-', ''))), -1, `a recovery code is not in ${f}`);
      }
    }
    assert.ok(files >= 1, 'the store files were read');
  });

  h.test('recovery codes work once each', async () => {
    const u = await newUser('totp-bob');
    const { recovery } = await enrol(u.c, u.name);
    const c = h.client('bob-rc');
    const ok = await c.post('/auth/login', { username: u.name, password: u.pw, otp: recovery[0].toUpperCase() });
    assert.equal(ok.status, 200, ok.text);
    const d = h.client('bob-rc2');
    expectError(await d.post('/auth/login', { username: u.name, password: u.pw, otp: recovery[0] }), 401, 'Unauthenticated');
    const ok2 = await d.post('/auth/login', { username: u.name, password: u.pw, otp: recovery[1].replaceAll('-', '') });
    assert.equal(ok2.status, 200, ok2.text);
    const st = expectStatus(await d.get('/auth/mfa'), 200);
    assert.equal(st.json.recovery_codes_left, 8);
    assert.ok((await auditOf('auth.mfa.recovery-used')).some((a) => a.principal === `user:${u.name}`));
  });

  h.test('removal needs a current code or a recovery code; an Owner resets a user (audited)', async () => {
    const u = await newUser('totp-dave');
    const { secret, recovery } = await enrol(u.c, u.name);
    expectError(await u.c.request('DELETE', '/auth/mfa/totp', { body: {} }), 400, 'InvalidRequest');
    expectError(await u.c.request('DELETE', '/auth/mfa/totp', { body: { otp: '000001' } }), 403, 'InvalidOtp');
    expectStatus(await u.c.request('DELETE', '/auth/mfa/totp', { body: { otp: recovery[2] } }), 204);
    const st = expectStatus(await u.c.get('/auth/mfa'), 200);
    assert.deepEqual(st.json.totp, { enrolled: false, confirmed: false });
    assert.equal(st.json.recovery_codes_left, 0);
    const c = h.client('dave-after');
    assert.equal((await c.post('/auth/login', { username: u.name, password: u.pw })).status, 200);
    assert.ok(secret);

    // Enrol again, and the Owner resets it.
    await enrol(u.c, u.name);
    const other = await newUser('totp-erin');
    expectError(await other.c.del(`/users/${u.name}/mfa`), 403, 'AuthorizationFailed');
    expectStatus(await h.admin.del(`/users/${u.name}/mfa`), 204);
    expectError(await h.admin.del('/users/no-such-user-e2e/mfa'), 404, 'ResourceNotFound');
    const d = h.client('dave-reset');
    assert.equal((await d.post('/auth/login', { username: u.name, password: u.pw })).status, 200);
    const rec = (await auditOf('user.mfa-reset')).find((a) => a.target === `user:${u.name}`);
    assert.ok(rec, 'the reset is audited');
    assert.equal(rec.principal, 'user:admin');
  });
  h.test('CLI: bastion login --otp CODE; without it, MfaRequired is said; on a terminal the code is asked for', async (t) => {
    const u = await newUser('totp-cli');
    const { secret, recovery } = await enrol(u.c, u.name);
    fs.mkdirSync(path.join(h.dir, 'home'), { recursive: true, mode: 0o700 });
    const url = `https://127.0.0.1:${h.daemon.port}`;
    const ca = path.join(h.daemon.dataDir, 'tls-cert.pem');
    const base = ['login', url, '--username', u.name, '--password-stdin', '--ca-file', ca];
    const no = await runCli(h, base, { input: `${u.pw}\n`, xdg: 'xdg-mfa-1' });
    assert.notEqual(no.code, 0, 'no code: refused');
    assert.match(no.stderr, /second factor: give --otp CODE/);
    const ok = await runCli(h, [...base, '--otp', totpAt(secret, nowStep() + 1)], { input: `${u.pw}\n`, xdg: 'xdg-mfa-2' });
    expectCode(ok, 0, 'login --otp');
    assert.match(ok.stdout, /Logged in to/);
    const cfg = JSON.parse(fs.readFileSync(path.join(h.dir, 'xdg-mfa-2', 'bastion', 'config.json'), 'utf8'));
    h.secrets.add(cfg.token, 'CLI token (mfa)');
    const script = which('script');
    if (!script) { t.diagnostic('util-linux `script` missing: the terminal prompt is not tested'); return; }
    const env = {
      PATH: process.env.PATH, LANG: 'C.UTF-8', NO_PROXY: '*', TERM: 'dumb',
      HOME: path.join(h.dir, 'home'), XDG_CONFIG_HOME: path.join(h.dir, 'xdg-mfa-tty'),
    };
    for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
    const cmd = `${BASTION_BIN} login ${url} --ca-file ${ca} --username ${u.name}`;
    const child = spawn(script, ['-q', '-e', '-c', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    trackPid(child.pid);
    let out = '';
    const sent = new Set();
    const done = new Promise((resolve) => child.once('exit', (code) => { untrackPid(child.pid); resolve(code); }));
    child.stdout.on('data', (d) => {
      out += d.toString('utf8');
      if (out.includes('Password: ') && !sent.has('pw')) { sent.add('pw'); child.stdin.write(`${u.pw}\n`); }
      // The step now+1 was used above: a recovery code, typed unechoed.
      if (out.includes('Code (TOTP') && !sent.has('otp')) { sent.add('otp'); child.stdin.write(`${recovery[0]}\n`); }
    });
    child.stderr.on('data', (d) => { out += d.toString('utf8'); });
    let timer;
    const rc = await Promise.race([done, new Promise((r) => { timer = setTimeout(() => r('timeout'), 60000); })]);
    clearTimeout(timer);
    if (rc === 'timeout') { child.kill('SIGKILL'); await done; }
    child.stdin.end();
    h.secrets.scan(out, 'terminal of bastion login (mfa)');
    assert.equal(rc, 0, `login on a terminal: ${rc}\n${out}`);
    assert.ok(sent.has('pw') && sent.has('otp'), `both prompts seen: ${out}`);
    assert.ok(!out.includes(recovery[0]), 'the recovery code is not echoed');
    assert.match(out, /Logged in to/);
    const cfg2 = JSON.parse(fs.readFileSync(path.join(h.dir, 'xdg-mfa-tty', 'bastion', 'config.json'), 'utf8'));
    h.secrets.add(cfg2.token, 'CLI terminal token (mfa)');
  });

  h.test('wrong codes are counted by the sign-in throttle: the account locks with the right password', async () => {
    const u = await newUser('totp-carol');
    const { secret } = await enrol(u.c, u.name);
    // From an address the account never signed in from: the account's
    // lock applies there (docs/access-control.md).
    const from = '127.0.0.77';
    const wrong = totpAt(secret, nowStep() + 5);
    let locked = null; let n = 0;
    for (let i = 0; i < 10 && !locked; i++) {
      const r = await loginWith(from, { username: u.name, password: u.pw, otp: wrong });
      if (r.status === 429) locked = r;
      else { expectError(r, 401, 'Unauthenticated'); n++; }
    }
    assert.ok(locked, 'the account was locked by wrong codes');
    assert.equal(n, 5, 'locked after five wrong codes, as after five wrong passwords');
    assert.ok(Number(locked.headers['retry-after']) > 0, 'Retry-After');
    // Even the right code is held back while locked.
    const held = await loginWith(from, { username: u.name, password: u.pw, otp: totpAt(secret, nowStep() + 1) });
    expectError(held, 429, 'TooManyRequests');
  });

});

describe('mfa: auth.require_mfa', () => {
  let d; let dir;
  before(async () => {
    dir = makeTempDir('mfa-require');
    d = await startDaemon(dir, { env: { BASTION_REQUIRE_MFA: 'true' } });
    h.secrets.add(d.adminPassword, 'admin password (require_mfa)');
  }, { timeout: 60000 });
  after(async () => {
    if (!d) return;
    await d.stop(10000);
    assert.doesNotMatch(d.log(), /runtime error|Sanitizer/);
  }, { timeout: 30000 });

  h.test('a user without a factor may only enrol; once confirmed, everything is open', async () => {
    const admin = new Client(d, { secrets: h.secrets, label: 'req-admin' });
    const r = await admin.login('admin', d.adminPassword);
    assert.equal(r.json.mfa_enrollment_required, true, r.text);
    expectStatus(await admin.get('/auth/session'), 200);
    expectError(await admin.get('/users'), 403, 'MfaEnrollmentRequired');
    expectError(await admin.put('/groups/g1', {}), 403, 'MfaEnrollmentRequired');
    expectError(await admin.post('/tokens', { name: 't' }), 403, 'MfaEnrollmentRequired');
    const e = expectStatus(await admin.post('/auth/mfa/totp', {}), 201);
    h.secrets.add(e.json.secret, 'TOTP secret (require_mfa)');
    // Pending is not enough.
    expectError(await admin.get('/users'), 403, 'MfaEnrollmentRequired');
    const conf = expectStatus(await admin.post('/auth/mfa/totp/confirm', { code: totpAt(e.json.secret, nowStep()) }), 200);
    for (const rc of conf.json.recovery_codes) h.secrets.add(rc, 'recovery code (require_mfa)');
    expectStatus(await admin.get('/users'), 200);
    const again = new Client(d, { secrets: h.secrets, label: 'req-admin-2' });
    expectError(await again.post('/auth/login', { username: 'admin', password: d.adminPassword }), 401, 'MfaRequired');
    const ok = await again.post('/auth/login', { username: 'admin', password: d.adminPassword, otp: totpAt(e.json.secret, nowStep() + 1) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.mfa_enrollment_required, undefined);
    expectStatus(await again.get('/users'), 200);
    assert.ok(randomString(4));
  });
});

describe('mfa: portal in Chromium', () => {
  let browser = null;
  const contexts = [];
  before(async () => {
    if (!h.daemon) await h.up();
    browser = await launch();
  }, { timeout: 120000 });
  after(async () => {
    for (const c of contexts) { try { await c.context.close(); } catch { /* gone */ } }
    try { if (browser) await browser.close(); } catch { /* gone */ }
    await h.down();
  }, { timeout: 60000 });

  async function page() {
    const c = await newContext(browser, h);
    contexts.push(c);
    return { p: await c.context.newPage(), rec: c.rec };
  }

  h.test('account page: the QR code encodes the otpauth URI; confirm shows ten recovery codes; the sign-in asks for the code', { timeout: 120000 }, async () => {
    const u = await newUser('totp-web');
    const { p, rec } = await page();
    await signIn(p, h, u.name, u.pw);
    await p.goto(`${h.daemon.origin}/#/account`);
    await p.click('#mfa-enrol');
    await p.locator('#mfa-qr svg path').waitFor();
    const secret = (await p.textContent('#mfa-secret')).trim();
    h.secrets.add(secret, 'TOTP secret (browser)');
    assert.match(secret, /^[A-Z2-7]{32}$/);
    // The drawn modules are exactly those of a QR code of the URI,
    // computed here with the same library from the expected text.
    const uri = `otpauth://totp/bastion:${u.name}?secret=${secret}&issuer=bastion&algorithm=SHA1&digits=6&period=30`;
    const qr = qrcode(0, 'M');
    qr.addData(uri);
    qr.make();
    const want = [];
    for (let r = 0; r < qr.getModuleCount(); r++) for (let c = 0; c < qr.getModuleCount(); c++) if (qr.isDark(r, c)) want.push(`M${c + 4} ${r + 4}h1v1h-1z`);
    assert.equal(await p.getAttribute('#mfa-qr svg path', 'd'), want.join(''), 'the QR code is the otpauth URI');
    const box = await p.locator('#mfa-qr svg').boundingBox();
    assert.ok(box && box.width >= 150 && box.height >= 150, `QR visible: ${JSON.stringify(box)}`);
    await shot(p, 'mfa-enrol');
    await p.fill('#mfa-code', totpAt(secret, nowStep()));
    await p.click('#mfa-confirm');
    await p.locator('#mfa-recovery li').nth(9).waitFor();
    const codes = await p.locator('#mfa-recovery li').allTextContents();
    for (const c of codes) h.secrets.add(c.trim(), 'recovery code (browser)');
    assert.equal(codes.length, 10);

    // The second step of the sign-in, in a fresh browser.
    const { p: q, rec: rec2 } = await page();
    await q.goto(`${h.daemon.origin}/#/login`, { waitUntil: 'domcontentloaded' });
    await q.locator('#login-username').waitFor({ state: 'visible', timeout: 60000 });
    await q.fill('#login-username', u.name);
    await q.fill('#login-password', u.pw);
    await q.click('#login-submit');
    await q.locator('#login-otp').waitFor({ state: 'visible' });
    assert.equal(await q.getAttribute('#login-error', 'data-code'), 'MfaRequired');
    await shot(q, 'mfa-sign-in');
    await q.fill('#login-otp', '000000' === totpAt(secret, nowStep() + 1) ? '111111' : '000000');
    await q.click('#login-submit');
    await q.locator('#login-error', { hasText: 'not correct' }).waitFor();
    assert.equal(await q.getAttribute('#login-error', 'data-code'), 'Unauthenticated');
    await q.fill('#login-otp', totpAt(secret, nowStep() + 1));
    await q.click('#login-submit');
    await q.locator('#logout').waitFor({ state: 'visible' });
    for (const r of [rec, rec2]) {
      assert.deepEqual(r.errors, [], 'no page errors');
      assert.deepEqual(r.csp, [], 'no CSP violations');
      assert.deepEqual(r.foreign, [], 'no request leaves the bastion');
    }
  });
});

// Passkeys with Chromium's virtual authenticator (DevTools WebAuthn
// domain). WebAuthn needs a domain as RP ID, so this browser talks to the
// daemon as https://localhost:PORT.
describe('mfa: passkeys in Chromium', () => {
  let browser = null;
  let d = null; let dir = null;
  const contexts = [];
  before(async () => {
    dir = makeTempDir('mfa-passkeys');
    d = await startDaemon(dir);
    h.secrets.add(d.adminPassword, 'admin password (passkeys)');
    browser = await launch();
  }, { timeout: 120000 });
  after(async () => {
    for (const c of contexts) { try { await c.close(); } catch { /* gone */ } }
    try { if (browser) await browser.close(); } catch { /* gone */ }
    if (d) {
      await d.stop(10000);
      assert.doesNotMatch(d.log(), /runtime error|Sanitizer/);
    }
  }, { timeout: 60000 });

  const origin = () => `https://localhost:${d.port}`;

  async function pageWithAuthenticator() {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    contexts.push(context);
    const errors = [];
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.hostname === 'localhost' && u.port === String(d.port)) return route.continue();
      errors.push(`foreign request ${u.href}`);
      return route.abort();
    });
    const p = await context.newPage();
    p.setDefaultTimeout(30000);
    p.on('pageerror', (e) => errors.push(String(e)));
    p.on('response', async (r) => {
      if (!r.url().includes('/api/')) return;
      try { h.secrets.scan(await r.text(), `browser ${r.url()}`); } catch { /* no body */ }
    });
    const cdp = await context.newCDPSession(p);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    return { p, cdp, authenticatorId, errors };
  }

  async function formSignIn(p, name, pw) {
    await p.goto(`${origin()}/#/login`, { waitUntil: 'domcontentloaded' });
    await p.locator('#login-username').waitFor({ state: 'visible', timeout: 60000 });
    await p.fill('#login-username', name);
    await p.fill('#login-password', pw);
    await p.click('#login-submit');
  }

  h.test('register a passkey, sign in with it alone and as the second step; replayed assertion and a cloned authenticator refused', { timeout: 180000 }, async () => {
    const admin = new Client(d, { secrets: h.secrets, label: 'pk-admin' });
    await admin.login('admin', d.adminPassword);
    const name = 'pk-user';
    const pw = `Pw-${randomString(20)}`;
    h.secrets.add(pw, 'password of pk-user');
    expectStatus(await admin.put(`/users/${name}`, { password: pw }), 201);

    const { p, cdp, authenticatorId, errors } = await pageWithAuthenticator();
    await formSignIn(p, name, pw);
    await p.locator('#logout').waitFor({ state: 'visible' });
    await p.goto(`${origin()}/#/account`);
    await p.click('#mfa-passkey-add');
    await p.locator('#mfa-passkeys', { hasText: '1 passkey' }).waitFor();
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].rpId, 'localhost');
    assert.ok(credentials[0].isResidentCredential, 'a discoverable credential');
    const reg = expectStatus(await admin.get(`/audit?action=auth.mfa.passkey-register`), 200).json.value;
    assert.ok(reg.some((a) => a.principal === `user:${name}`), 'registration audited');

    // Sign out, then in with the passkey alone (discoverable: no name typed).
    await p.click('#logout');
    await p.locator('#login-passkey').waitFor();
    await p.click('#login-passkey');
    await p.locator('#logout').waitFor({ state: 'visible' });
    assert.equal((await p.textContent('#user-name')).trim(), name);

    // The password alone no longer signs in: the passkey is a factor.
    const api = new Client({ ...d, origin: origin() }, { secrets: h.secrets, label: 'pk-api' });
    expectError(await api.post('/auth/login', { username: name, password: pw }), 401, 'MfaRequired');

    // The second step in the portal: password, then the passkey.
    await p.click('#logout');
    await formSignIn(p, name, pw);
    await p.locator('#login-otp-passkey').waitFor({ state: 'visible' });
    await p.click('#login-otp-passkey');
    await p.locator('#logout').waitFor({ state: 'visible' });

    // A replayed assertion: the challenge is single use.
    const replay = await p.evaluate(async () => {
      const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      const unb64 = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4)), (c) => c.charCodeAt(0));
      const o = await (await fetch('/api/v1/auth/webauthn/login/options', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).json();
      const c = await navigator.credentials.get({ publicKey: { challenge: unb64(o.challenge), rpId: o.rpId, userVerification: 'preferred', allowCredentials: [] } });
      const body = JSON.stringify({ id: b64(c.rawId), clientDataJSON: b64(c.response.clientDataJSON), authenticatorData: b64(c.response.authenticatorData), signature: b64(c.response.signature) });
      const send = () => fetch('/api/v1/auth/webauthn/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      const first = await send();
      const second = await send();
      // A fresh assertion whose userHandle names another user.
      const o2 = await (await fetch('/api/v1/auth/webauthn/login/options', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).json();
      const c2 = await navigator.credentials.get({ publicKey: { challenge: unb64(o2.challenge), rpId: o2.rpId, userVerification: 'preferred', allowCredentials: [] } });
      const forged = await fetch('/api/v1/auth/webauthn/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ id: b64(c2.rawId), clientDataJSON: b64(c2.response.clientDataJSON), authenticatorData: b64(c2.response.authenticatorData), signature: b64(c2.response.signature), userHandle: b64(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1])) }),
      });
      return [first.status, second.status, (await second.json()).error.code, forged.status];
    });
    assert.deepEqual(replay, [200, 401, 'Unauthenticated', 401], 'the same assertion twice: the second is refused; another userHandle: refused');

    // A cloned authenticator: the same key with a counter that went back.
    const before = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0];
    assert.ok(before.signCount >= 3, `the counter grew: ${before.signCount}`);
    await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: before.credentialId });
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...before, signCount: 0 } });
    await p.click('#logout');
    await p.locator('#login-passkey').waitFor();
    await p.click('#login-passkey');
    await p.locator('#login-error', { hasText: /not correct|not accepted/ }).waitFor();
    assert.equal(await p.getAttribute('#login-error', 'data-code'), 'Unauthenticated');
    const clone = expectStatus(await admin.get('/audit?action=auth.passkey.clone-suspected'), 200).json.value;
    assert.equal(clone.length, 1, 'the clone is audited once');
    assert.equal(clone[0].principal, `user:${name}`);
    assert.equal(clone[0].result, 'refused');

    // An Owner's reset removes passkeys too: the password alone works again.
    expectStatus(await admin.del(`/users/${name}/mfa`), 204);
    const after = await api.post('/auth/login', { username: name, password: pw });
    assert.equal(after.status, 200, after.text);
    assert.deepEqual(errors, [], 'no page errors, no foreign requests');
  });
});
