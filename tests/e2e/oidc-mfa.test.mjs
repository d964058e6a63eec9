// Single sign-on and second factors together (issue 18, docs/sign-in.md
// "OpenID Connect users and MFA"), against the real provider of
// lib/oidc.mjs: an OIDC user with bastion's own TOTP key must give its code
// after the provider's sign-in (the session the callback opens can do
// nothing but POST /auth/mfa/verify; a wrong code is counted), unless the
// provider's amr says it asked for a second factor itself (trust_amr); the
// CLI's exchange asks for the code the same way; in the portal, the code
// step after the callback. Then two instances on one PostgreSQL store: the
// flow starts on A and lands on B, with auth.require_mfa (an OIDC user
// without a factor gets the enrolment session), enrolment via A and the
// code step via B.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileHarness } from './lib/harness.mjs';
import { BASTION_BIN, startDaemon } from './lib/daemon.mjs';
import { Client, expectError, expectStatus } from './lib/api.mjs';
import { launch } from './lib/browser.mjs';
import { startProvider, providerSignIn } from './lib/oidc.mjs';
import { startPg } from './lib/pg.mjs';
import { freePort, makeTempDir, sleep, trackPid, untrackPid, which } from './lib/util.mjs';

const daemonOpts = {};
const h = fileHarness({ label: 'oidc-mfa', daemonOpts });
let op = null;
let opDir = null;
let oidcEnv = null;
let portA = 0;
let portB = 0;
let portD = 0;
const CLIENT_ID = 'bastion-mfa-test';
const CLIENT_SECRET = `cs-${crypto.randomBytes(16).toString('hex')}`;
const ACCOUNTS = {
  tina: {}, // bastion's TOTP; the provider sends no amr
  mia: { amr: ['pwd', 'mfa'] }, // the provider says it asked a second factor
  lock: {},
  cli: {},
  web: {},
  pat: {}, // the two-instance test's
  pk: {}, // the passkey test's
};

function base32Decode(s) {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0; let acc = 0; const out = [];
  for (const ch of s) {
    const v = alpha.indexOf(ch);
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
// A code of the window no earlier call used: steps are taken once each.
let lastStep = 0;
function freshCode(secret) {
  const step = Math.max(nowStep() - 1, lastStep + 1);
  assert.ok(step <= nowStep() + 1, 'the test used up the ±1 window: too many codes at once');
  lastStep = step;
  return totpAt(secret, step);
}

/** A whole sign-in as login through the provider; resolves the callback's answer. */
async function signIn(c, login, query = '') {
  const r = await c.get(`/auth/oidc/login${query}`);
  assert.equal(r.status, 302, `login: ${r.status} ${r.text}`);
  const back = new URL(await providerSignIn(r.headers.location, login));
  return c.get(`${back.pathname}${back.search}`);
}

/** A sign-in that ends with a cookie; the client learns its CSRF token. */
async function signedIn(c, login) {
  const r = await signIn(c, login);
  assert.equal(r.status, 302, `callback: ${r.status} ${r.text}`);
  assert.ok(c.sessionCookie(), 'a session cookie');
  const s = expectStatus(await c.get('/auth/session'), 200, 'session');
  c.csrf = s.json.csrf_token;
  return s.json;
}

/** Enrols and confirms TOTP for the signed-in client c; returns the secret. */
async function enrol(c, name) {
  const e = expectStatus(await c.post('/auth/mfa/totp', {}), 201, `enrol ${name}`);
  h.secrets.add(e.json.secret, `TOTP secret of ${name}`);
  lastStep = 0;
  const conf = expectStatus(await c.post('/auth/mfa/totp/confirm', { code: freshCode(e.json.secret) }), 200, 'confirm');
  for (const rc of conf.json.recovery_codes) h.secrets.add(rc, `recovery code of ${name}`);
  return { secret: e.json.secret, recovery: conf.json.recovery_codes };
}

/** Sends every request of c from the loopback address addr. */
function fromAddress(c, addr) {
  const agent = new https.Agent({ localAddress: addr });
  const request = c.request.bind(c);
  c.request = (method, p, opts = {}) => request(method, p, { ...opts, agent });
  return c;
}

async function auditOf(admin, action, pred) {
  const r = expectStatus(await admin.get(`/audit?action=${action}&limit=200`), 200, 'audit');
  return r.json.value.filter(pred);
}

describe('oidc-mfa: one instance', () => {
  before(async () => {
    opDir = makeTempDir('oidc-mfa-op');
    const opPort = await freePort();
    const bPort = await freePort();
    portA = await freePort();
    portB = await freePort();
    portD = await freePort();
    const secretFile = path.join(opDir, 'client-secret');
    fs.writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
    h.secrets.add(CLIENT_SECRET, 'client secret');
    daemonOpts.port = bPort;
    oidcEnv = {
      BASTION_OIDC_ISSUER: `http://127.0.0.1:${opPort}`,
      BASTION_OIDC_CLIENT_ID: CLIENT_ID,
      BASTION_OIDC_CLIENT_SECRET_FILE: secretFile,
      BASTION_OIDC_DISPLAY_NAME: 'Test IdP',
      BASTION_OIDC_AUTO_CREATE: 'true',
      BASTION_OIDC_TRUST_AMR: 'true',
    };
    daemonOpts.env = { ...oidcEnv, BASTION_OIDC_REDIRECT_URL: `https://127.0.0.1:${bPort}/api/v1/auth/oidc/callback` };
    await h.up();
    op = await startProvider({
      dir: opDir, port: opPort, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
      redirectUri: daemonOpts.env.BASTION_OIDC_REDIRECT_URL, accounts: ACCOUNTS,
    });
    // The two-instance test's B, registered now (a restart of the provider
    // later would be one more moving part).
    await op.reconfigure({
      extraRedirectUris: [`https://127.0.0.1:${portB}/api/v1/auth/oidc/callback`, `https://localhost:${portD}/api/v1/auth/oidc/callback`],
    });
  }, { timeout: 120000 });

  h.test('a user with bastion\'s TOTP: the session waits for the code, nothing but the verify route works, the code completes it', async () => {
    const first = h.client('tina-1');
    const s1 = await signedIn(first, 'tina');
    assert.equal(s1.mfa_pending, false, 'no factor yet: complete');
    const { secret, recovery } = await enrol(first, 'tina');
    const verifyOnComplete = await first.post('/auth/mfa/verify', { otp: '123456' });
    expectError(verifyOnComplete, 409, 'MfaNotPending');

    const c = h.client('tina-2');
    const s = await signedIn(c, 'tina');
    assert.equal(s.user.name, 'tina');
    assert.equal(s.mfa_pending, true, JSON.stringify(s));
    const waiting = c.sessionCookie().value;
    // Everything else is closed, enrolment included (a new passkey would
    // be a way round the code).
    expectError(await c.get('/groups'), 401, 'MfaRequired');
    expectError(await c.get('/version'), 401, 'MfaRequired');
    expectError(await c.post('/tokens', { name: 'x' }), 401, 'MfaRequired');
    expectError(await c.post('/auth/mfa/totp', {}), 401, 'MfaRequired');
    expectError(await c.post('/auth/mfa/webauthn/register/options', {}), 401, 'MfaRequired');
    expectError(await c.request('DELETE', '/auth/mfa/totp', { body: { otp: recovery[0] } }), 401, 'MfaRequired');
    const mfa = expectStatus(await c.get('/auth/mfa'), 200, 'what tina has');
    assert.equal(mfa.json.totp.confirmed, true);
    expectError(await c.post('/auth/mfa/verify', {}), 400, 'InvalidRequest');
    // A wrong code: refused, audited, counted by the throttle.
    const good = freshCode(secret);
    const wrong = good === '000000' ? '000001' : '000000';
    expectError(await c.post('/auth/mfa/verify', { otp: wrong }), 401, 'Unauthenticated');
    const failed = await auditOf(h.admin, 'auth.login', (e) => e.principal === 'user:tina' && e.result === 'failure');
    assert.equal(failed.length, 1, JSON.stringify(failed));
    assert.equal(failed[0].detail.method, 'oidc');
    expectError(await c.get('/groups'), 401, 'MfaRequired', { what: 'still waiting after a wrong code' });
    // The right code: a new session id, complete.
    const ok = expectStatus(await c.post('/auth/mfa/verify', { otp: good }), 200, 'verify');
    assert.equal(ok.json.user.name, 'tina');
    c.csrf = ok.json.csrf_token;
    assert.notEqual(c.sessionCookie().value, waiting, 'a new session id');
    expectStatus(await c.get('/groups'), 200, 'complete');
    const after = expectStatus(await c.get('/auth/session'), 200);
    assert.equal(after.json.mfa_pending, false);
    const old = h.client('tina-old');
    old.cookies.set('__Host-bastion_session', { value: waiting, attrs: [] });
    expectError(await old.get('/auth/session'), 401, 'Unauthenticated', { what: 'the waiting session is gone' });
    const asked = await auditOf(h.admin, 'auth.login', (e) => e.principal === 'user:tina' && e.result === 'mfa-required');
    assert.equal(asked.length, 1, JSON.stringify(asked));
    assert.equal(asked[0].detail.mfa, 'required');
    const done = await auditOf(h.admin, 'auth.login', (e) => e.principal === 'user:tina' && e.result === 'success' && e.detail.second_factor === 'totp');
    assert.equal(done.length, 1, JSON.stringify(done));
    // The same code again (another sign-in): refused; a recovery code works.
    const again = h.client('tina-3');
    await signedIn(again, 'tina');
    expectError(await again.post('/auth/mfa/verify', { otp: good }), 401, 'Unauthenticated');
    expectStatus(await again.post('/auth/mfa/verify', { otp: recovery[1] }), 200, 'recovery code');
    const used = await auditOf(h.admin, 'auth.mfa.recovery-used', (e) => e.principal === 'user:tina');
    assert.equal(used.length, 1);
  });

  h.test('an Owner cannot give a user of single sign-on a password (a way in the provider would not decide)', async () => {
    await signedIn(h.client('pw-1'), 'web');
    const pw = `Pw-${crypto.randomBytes(12).toString('hex')}`;
    h.secrets.add(pw, 'password tried on an OIDC user');
    expectError(await h.admin.put('/users/web', { password: pw }), 409, 'Conflict', { messageIncludes: 'single sign-on' });
    expectError(await h.client('pw-2').post('/auth/login', { username: 'web', password: pw }), 401, 'Unauthenticated');
    // Other changes stay possible.
    expectStatus(await h.admin.put('/users/web', { disabled: false }), 200, 'PUT without a password');
  });

  h.test('wrong codes after single sign-on lock the account like wrong codes at POST /auth/login', async () => {
    const first = h.client('lock-1');
    await signedIn(first, 'lock');
    const { secret } = await enrol(first, 'lock');
    // From an address the account never completed a sign-in from: the
    // account's lock exempts its known addresses (identity/throttle.c).
    const c = fromAddress(h.client('lock-2'), '127.0.0.23');
    await signedIn(c, 'lock');
    const good = totpAt(secret, nowStep());
    const wrong = good === '000000' ? '000001' : '000000';
    let locked = null;
    for (let i = 0; i < 8 && !locked; i++) {
      const r = await c.post('/auth/mfa/verify', { otp: wrong });
      if (r.status === 429) locked = r;
      else expectError(r, 401, 'Unauthenticated');
    }
    assert.ok(locked, 'locked after at most 8 wrong codes');
    assert.ok(Number(locked.headers['retry-after']) > 0);
    // Locked: the right code waits too, and a new sign-in at the provider
    // does not clear the count.
    expectError(await c.post('/auth/mfa/verify', { otp: good }), 429, 'TooManyRequests');
    const other = fromAddress(h.client('lock-3'), '127.0.0.23');
    await signedIn(other, 'lock');
    expectError(await other.post('/auth/mfa/verify', { otp: good }), 429, 'TooManyRequests');
  });

  h.test('trust_amr: a provider that says "mfa" in amr is not asked again; without it the code is', async () => {
    const first = h.client('mia-1');
    const s1 = await signedIn(first, 'mia');
    assert.equal(s1.mfa_pending, false);
    await enrol(first, 'mia');
    const c = h.client('mia-2');
    const s = await signedIn(c, 'mia');
    assert.equal(s.mfa_pending, false, 'no code asked');
    expectStatus(await c.get('/groups'), 200);
    const by = await auditOf(h.admin, 'auth.login', (e) => e.principal === 'user:mia' && e.result === 'success' && e.detail.mfa === 'provider');
    assert.ok(by.length >= 2, JSON.stringify(by));
    // The same user, the provider saying only "pwd": bastion asks.
    op.setAccounts({ ...ACCOUNTS, mia: { amr: ['pwd'] } });
    try {
      const d = h.client('mia-3');
      const s3 = await signedIn(d, 'mia');
      assert.equal(s3.mfa_pending, true);
      expectError(await d.get('/groups'), 401, 'MfaRequired');
    } finally {
      op.setAccounts(ACCOUNTS);
    }
  });

  h.test('the CLI\'s exchange answers MfaRequired without spending its code, then takes the code', async (tc) => {
    const first = h.client('cli-1');
    await signedIn(first, 'cli');
    const { secret, recovery } = await enrol(first, 'cli');
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const codeOf = async () => {
      const r = await signIn(h.client('cli-b'), 'cli', `?cli_port=45679&cli_challenge=${challenge}`);
      assert.equal(r.status, 302, `${r.status} ${r.text}`);
      const code = new URL(r.headers.location).searchParams.get('code');
      h.secrets.add(code, 'cli one-time code');
      return code;
    };
    const code = await codeOf();
    const x = h.client('cli-x');
    expectError(await x.post('/auth/oidc/cli-token', { code, verifier }), 401, 'MfaRequired');
    expectError(await x.post('/auth/oidc/cli-token', { code, verifier }), 401, 'MfaRequired', { what: 'not spent' });
    const good = freshCode(secret);
    const wrong = good === '000000' ? '000001' : '000000';
    expectError(await x.post('/auth/oidc/cli-token', { code, verifier, otp: wrong }), 401, 'Unauthenticated');
    expectError(await x.post('/auth/oidc/cli-token', { code, verifier, otp: good }), 401, 'Unauthenticated',
      { what: 'a wrong code spends the one-time code' });
    const code2 = await codeOf();
    const t = expectStatus(await x.post('/auth/oidc/cli-token', { code: code2, verifier, otp: good }), 201, 'token');
    h.secrets.add(t.json.token, 'cli token');
    assert.equal(t.json.user.name, 'cli');
    const done = await auditOf(h.admin, 'auth.login', (e) => e.principal === 'user:cli' && e.result === 'success' && e.detail.method === 'oidc-cli');
    assert.equal(done.length, 1, JSON.stringify(done));
    assert.equal(done[0].detail.second_factor, 'totp');
    expectStatus(await h.client('cli-t').get('/groups', { bearer: t.json.token }), 200);

    // The command: bastion login --sso --otp CODE.
    const home = path.join(h.dir, 'sso-mfa-home');
    fs.mkdirSync(home, { recursive: true });
    // tty: run under util-linux `script` (a terminal), typing `tty` when
    // the CLI asks for the code.
    const run = async (extra, tty = null) => {
      const env = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg'), NO_PROXY: '*', TERM: 'dumb' };
      for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS']) if (process.env[k]) env[k] = process.env[k];
      const argv = ['login', h.daemon.origin, '--sso', '--no-browser', '--insecure', ...extra];
      const child = tty
        ? spawn(which('script'), ['-q', '-e', '-c', [BASTION_BIN, ...argv].join(' '), '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] })
        : spawn(BASTION_BIN, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      trackPid(child.pid);
      let out = ''; let err = ''; let typed = false;
      child.stdout.on('data', (d) => {
        out += d;
        if (tty && !typed && out.includes('Code (TOTP')) { typed = true; child.stdin.write(`${tty}\n`); }
      });
      child.stderr.on('data', (d) => { err += d; });
      const exited = new Promise((r) => child.once('exit', (c) => { untrackPid(child.pid); r(c); }));
      try {
        let start = null;
        for (let i = 0; i < 100 && !start; i++) {
          const m = out.match(/(https:\/\/\S+\/api\/v1\/auth\/oidc\/login\?\S+)/);
          if (m) start = new URL(m[1]);
          else await sleep(100);
        }
        assert.ok(start, `the CLI printed the URL: ${out} ${err}`);
        const r = await signIn(h.client('cli-browser'), 'cli', start.search);
        assert.equal(r.status, 302, `${r.status} ${r.text}`);
        const page = await fetch(new URL(r.headers.location));
        assert.equal(page.status, 200);
        const code3 = await Promise.race([exited, sleep(20000).then(() => 'timeout')]);
        h.secrets.scan(out + err, 'the CLI output');
        return { code: code3, out, err, typed };
      } finally {
        if (child.exitCode === null) child.kill('SIGTERM');
        if (tty) child.stdin.end();
      }
    };
    const without = await run([]);
    assert.equal(without.code, 3, `no code, no terminal: refused: ${without.out} ${without.err}`);
    assert.match(without.err, /needs its second factor: give --otp CODE/);
    const withOtp = await run(['--otp', freshCode(secret)]);
    assert.equal(withOtp.code, 0, `${withOtp.out} ${withOtp.err}`);
    assert.match(withOtp.out, /Logged in to .* as cli/);
    if (!which('script')) { tc.diagnostic('util-linux `script` missing: the terminal prompt is not tested'); return; }
    // The ±1 window's steps are used: a recovery code, typed unechoed.
    const onTty = await run([], recovery[0]);
    assert.equal(onTty.code, 0, `on a terminal: ${onTty.out} ${onTty.err}`);
    assert.ok(onTty.typed, `the code was asked for: ${onTty.out}`);
    assert.ok(!onTty.out.includes(recovery[0]), 'the code is not echoed');
    assert.match(onTty.out, /Logged in to .* as cli/);
  });

  h.test('in Chromium: after the provider, the portal asks for the code, then shows the machines', { timeout: 120000 }, async () => {
    const first = h.client('web-1');
    await signedIn(first, 'web');
    const { secret } = await enrol(first, 'web');
    const browser = await launch();
    try {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const opPort = new URL(op.issuer).port;
      const foreign = [];
      await context.route('**/*', (route) => {
        const u = new URL(route.request().url());
        if (u.hostname === '127.0.0.1' && (u.port === String(h.daemon.port) || u.port === opPort)) return route.continue();
        foreign.push(u.href);
        return route.abort();
      });
      const page = await context.newPage();
      page.setDefaultTimeout(30000);
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${h.daemon.origin}/#/login`, { waitUntil: 'domcontentloaded' });
      await page.locator('#login-sso').click();
      await page.locator('#login').waitFor({ state: 'visible' });
      await page.fill('#login', 'web');
      await page.fill('#password', 'anything');
      await page.click('#submit');
      // Back at bastion: the code step, and nothing of the portal yet.
      const otp = page.locator('#mfa-verify-otp');
      await otp.waitFor({ state: 'visible' });
      assert.equal(await page.locator('#logout').count(), 0, 'not signed in yet');
      await otp.fill(good(secret, true));
      await page.click('#mfa-verify-submit');
      await page.locator('#mfa-verify-error[data-code="Unauthenticated"]').waitFor();
      await otp.fill(freshCode(secret));
      await page.click('#mfa-verify-submit');
      await page.locator('#logout').waitFor({ state: 'visible' });
      const who = await page.evaluate(async () => (await fetch('/api/v1/auth/session')).json());
      assert.equal(who.user.name, 'web');
      assert.equal(who.mfa_pending, false);
      assert.deepEqual(errors, []);
      assert.deepEqual(foreign, []);
    } finally {
      await browser.close();
    }
    // A wrong code for the browser: one that is not the current one.
    function good(s, wrong) {
      const g = totpAt(s, nowStep());
      return wrong ? (g === '000000' ? '000001' : '000000') : g;
    }
  });
});

describe('oidc-mfa: a passkey as the step after single sign-on', () => {
  // Passkeys need a host name (an IP address is no RP ID): this instance
  // is https://localhost, its own redirect URL registered at the provider.
  let d = null;
  let browser = null;
  before(async () => {
    d = await startDaemon(h.dir, {
      port: portD, dataName: 'pk', logName: 'pk',
      env: { ...oidcEnv, BASTION_OIDC_REDIRECT_URL: `https://localhost:${portD}/api/v1/auth/oidc/callback` },
    });
    h.secrets.add(d.adminPassword, 'admin password (passkey)');
    browser = await launch();
  }, { timeout: 120000 });
  after(async () => {
    try { if (browser) await browser.close(); } catch { /* gone */ }
    if (d) {
      const st = await d.stop(10000);
      assert.equal(st.code, 0, JSON.stringify(st));
      assert.doesNotMatch(d.log(), /runtime error|Sanitizer/);
    }
  }, { timeout: 60000 });

  h.test('in Chromium: register a passkey, then the provider\'s sign-in asks for it, and it completes the session', { timeout: 180000 }, async () => {
    const origin = `https://localhost:${portD}`;
    const opPort = new URL(op.issuer).port;
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const foreign = [];
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if ((u.hostname === 'localhost' && u.port === String(portD)) || (u.hostname === '127.0.0.1' && u.port === opPort)) return route.continue();
      foreign.push(u.href);
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('response', async (r) => {
      if (!r.url().includes('/api/')) return;
      try { h.secrets.scan(await r.text(), `browser ${r.url()}`); } catch { /* no body */ }
    });
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    /** "Sign in with Test IdP"; the provider's form when it asks (its own session may skip it). */
    async function sso() {
      await page.goto(`${origin}/#/login`, { waitUntil: 'domcontentloaded' });
      await page.locator('#login-sso').click();
      const next = page.locator('#login, #logout, #mfa-verify-otp').first();
      await next.waitFor({ state: 'visible' });
      if (await page.locator('#login').count()) {
        await page.fill('#login', 'pk');
        await page.fill('#password', 'anything');
        await page.click('#submit');
      }
    }
    try {
      await sso();
      await page.locator('#logout').waitFor({ state: 'visible' });
      await page.goto(`${origin}/#/account`);
      await page.click('#mfa-passkey-add');
      await page.locator('#mfa-passkeys', { hasText: '1 passkey' }).waitFor();
      await page.click('#logout');
      await page.locator('#login-sso').waitFor();
      await sso();
      // The code step, with the passkey offered; nothing of the portal yet.
      await page.locator('#mfa-verify-otp').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#logout').count(), 0);
      const waiting = await page.evaluate(async () => (await fetch('/api/v1/auth/session')).json());
      assert.equal(waiting.mfa_pending, true);
      await page.locator('#mfa-verify-passkey').click();
      await page.locator('#logout').waitFor({ state: 'visible' });
      const who = await page.evaluate(async () => (await fetch('/api/v1/auth/session')).json());
      assert.equal(who.user.name, 'pk');
      assert.equal(who.mfa_pending, false);
      const admin = new Client({ ...d, origin }, { secrets: h.secrets, label: 'pk-admin' });
      await admin.login('admin', d.adminPassword);
      const done = expectStatus(await admin.get('/audit?action=auth.login&limit=100'), 200).json.value
        .filter((e) => e.principal === 'user:pk' && e.result === 'success' && e.detail.second_factor === 'passkey');
      assert.equal(done.length, 1, JSON.stringify(done));
      assert.deepEqual(errors, []);
      assert.deepEqual(foreign, []);
    } finally {
      await context.close();
    }
  });
});

describe('oidc-mfa: two instances on one PostgreSQL store', () => {
  let pg = null;
  let a = null;
  let b = null;
  before(async () => {
    pg = await startPg(h.dir);
    h.secrets.add(pg.password, 'postgres password');
    const env = {
      // A shared store waits drain_timeout before draining on SIGTERM (a
      // rolling upgrade); the stop below allows 10 s.
      BASTION_DRAIN_TIMEOUT: '1s',
      ...oidcEnv,
      // One redirect URL, naming B: the sign-in starts on A, lands on B.
      BASTION_OIDC_REDIRECT_URL: `https://127.0.0.1:${portB}/api/v1/auth/oidc/callback`,
      BASTION_REQUIRE_MFA: 'true',
    };
    a = await startDaemon(h.dir, { store: pg.url, port: portA, dataName: 'pg-a', logName: 'pg-a', env });
    h.secrets.add(a.adminPassword, 'admin password (pg)');
    // The instances share the vault's master key, as operators do.
    const bData = path.join(h.dir, 'pg-b');
    fs.mkdirSync(bData, { recursive: true, mode: 0o700 });
    fs.copyFileSync(path.join(h.dir, 'pg-a', 'master.key'), path.join(bData, 'master.key'));
    fs.chmodSync(path.join(bData, 'master.key'), 0o600);
    b = await startDaemon(h.dir, { store: pg.url, port: portB, dataName: 'pg-b', logName: 'pg-b', env });
  }, { timeout: 120000 });
  after(async () => {
    for (const d of [a, b]) {
      if (!d) continue;
      const st = await d.stop(10000);
      assert.equal(st.code, 0, JSON.stringify(st));
      assert.doesNotMatch(d.log(), /runtime error|Sanitizer/);
    }
    if (pg) await pg.stop();
    if (op) await op.stop();
    if (opDir) fs.rmSync(opDir, { recursive: true, force: true });
    await h.down();
  }, { timeout: 60000 });

  /** Begins at A, the provider sends the browser to B; the cookie is B's. */
  async function acrossSignIn(login) {
    const onA = new Client(a, { secrets: h.secrets, label: `${login}-A` });
    const r = await onA.get('/auth/oidc/login');
    assert.equal(r.status, 302, `login at A: ${r.status} ${r.text}`);
    const back = new URL(await providerSignIn(r.headers.location, login));
    assert.equal(back.port, String(portB), 'the provider sends the browser to B');
    const onB = new Client(b, { secrets: h.secrets, label: `${login}-B` });
    const cb = await onB.get(`${back.pathname}${back.search}`);
    assert.equal(cb.status, 302, `callback at B: ${cb.status} ${cb.text}`);
    assert.ok(onB.sessionCookie(), 'B set the cookie');
    // The same cookie on A: sessions live in the store.
    onA.cookies = new Map(onB.cookies);
    return { onA, onB };
  }

  h.test('started on A, finished on B: require_mfa\'s enrolment via A, then the code step via B', async () => {
    const { onA, onB } = await acrossSignIn('pat');
    const sa = expectStatus(await onA.get('/auth/session'), 200, 'the cookie of B on A');
    assert.equal(sa.json.user.name, 'pat');
    assert.equal(sa.json.mfa_enrollment_required, true, 'no factor and require_mfa: enrol first');
    assert.equal(sa.json.mfa_pending, false);
    onA.csrf = sa.json.csrf_token;
    onB.csrf = sa.json.csrf_token;
    expectError(await onB.get('/groups'), 403, 'MfaEnrollmentRequired');
    expectError(await onA.get('/groups'), 403, 'MfaEnrollmentRequired');
    // Enrolled on A ...
    const { secret } = await enrol(onA, 'pat');
    expectStatus(await onB.get('/groups'), 200, 'open on B once enrolled');
    // ... asked on the next sign-in, which starts on A and ends on B.
    const next = await acrossSignIn('pat');
    const s = expectStatus(await next.onA.get('/auth/session'), 200);
    assert.equal(s.json.mfa_pending, true, 'the waiting state is in the store');
    next.onA.csrf = s.json.csrf_token;
    next.onB.csrf = s.json.csrf_token;
    expectError(await next.onA.get('/groups'), 401, 'MfaRequired');
    const good = freshCode(secret);
    const wrong = good === '000000' ? '000001' : '000000';
    expectError(await next.onA.post('/auth/mfa/verify', { otp: wrong }), 401, 'Unauthenticated');
    const ok = expectStatus(await next.onB.post('/auth/mfa/verify', { otp: good }), 200, 'verify on B');
    next.onA.cookies = new Map(next.onB.cookies);
    next.onA.csrf = ok.json.csrf_token;
    expectStatus(await next.onA.get('/groups'), 200, 'the completed session on A');
    // The code was taken on B: A refuses it too.
    const third = await acrossSignIn('pat');
    const s3 = expectStatus(await third.onA.get('/auth/session'), 200);
    third.onA.csrf = s3.json.csrf_token;
    expectError(await third.onA.post('/auth/mfa/verify', { otp: good }), 401, 'Unauthenticated');
    // The state made at A was spent at B: the same callback again fails.
    const r = await new Client(a, { secrets: h.secrets, label: 'replay' }).get('/auth/oidc/login');
    const back = new URL(await providerSignIn(r.headers.location, 'pat'));
    const once = new Client(b, { secrets: h.secrets, label: 'replay-b' });
    assert.equal((await once.get(`${back.pathname}${back.search}`)).status, 302);
    assert.equal((await new Client(a, { secrets: h.secrets, label: 'replay-a' }).get(`${back.pathname}${back.search}`)).status, 403,
      'a state taken on B is gone on A');
  });
  h.testCleanExit();
});
