// Sign-in with OpenID Connect (SPEC §9, docs/sign-in.md) against a real
// provider (`oidc-provider` from npm, lib/oidc.mjs) on loopback: the flow
// end to end, the user and its mapped roles, every refusal the ID token's
// checks make, a replayed state, a rotated signing key, and the CLI's
// one-time code.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileHarness } from './lib/harness.mjs';
import { BASTION_BIN, startDaemon } from './lib/daemon.mjs';
import { Client } from './lib/api.mjs';
import { launch } from './lib/browser.mjs';
import { runCli } from './lib/cli.mjs';
import { expectStatus } from './lib/api.mjs';
import { startProvider, providerSignIn } from './lib/oidc.mjs';
import { freePort, makeTempDir, sleep, trackPid, untrackPid } from './lib/util.mjs';

const daemonOpts = {};
const h = fileHarness({ label: 'oidc', daemonOpts });
let op = null;
let opDir = null;
const CLIENT_ID = 'bastion-test';
const CLIENT_SECRET = `cs-${crypto.randomBytes(16).toString('hex')}`;

/** Starts a sign-in at bastion; returns the provider URL it redirects to. */
async function begin(c, query = '') {
  const r = await c.get(`/auth/oidc/login${query}`);
  assert.equal(r.status, 302, `login: ${r.status} ${r.text}`);
  assert.ok(r.headers.location.startsWith(`${op.issuer}/`), r.headers.location);
  return r.headers.location;
}

/** The provider's redirect back, as a path for the bastion client. */
function callbackPath(url) {
  const u = new URL(url);
  assert.equal(u.pathname, '/api/v1/auth/oidc/callback', url);
  return `${u.pathname}${u.search}`;
}

/** A whole sign-in as login; resolves the callback's answer. */
async function signIn(c, login, query = '') {
  const back = await providerSignIn(await begin(c, query), login);
  return c.get(callbackPath(back));
}

async function auditOf(action, pred) {
  const r = await h.admin.get(`/audit?action=${action}`);
  expectStatus(r, 200, 'audit');
  return r.json.value.filter(pred);
}

describe('oidc', () => {
  before(async () => {
    opDir = makeTempDir('oidc-op');
    const opPort = await freePort();
    const bPort = await freePort();
    const secretFile = path.join(opDir, 'client-secret');
    fs.writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
    h.secrets.add(CLIENT_SECRET, 'client secret');
    daemonOpts.port = bPort;
    daemonOpts.env = {
      BASTION_OIDC_ISSUER: `http://127.0.0.1:${opPort}`,
      BASTION_OIDC_CLIENT_ID: CLIENT_ID,
      BASTION_OIDC_CLIENT_SECRET_FILE: secretFile,
      BASTION_OIDC_REDIRECT_URL: `https://127.0.0.1:${bPort}/api/v1/auth/oidc/callback`,
      BASTION_OIDC_DISPLAY_NAME: 'Test IdP',
      BASTION_OIDC_GROUPS_CLAIM: 'groups',
      BASTION_OIDC_AUTO_CREATE: 'true',
      BASTION_OIDC_MAP: 'ops Reader /,admins Owner /,ops Contributor /groups/ops',
    };
    await h.up();
    op = await startProvider({
      dir: opDir, port: opPort, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
      redirectUri: daemonOpts.env.BASTION_OIDC_REDIRECT_URL,
      accounts: {
        alice: { groups: ['ops'] },
        bob: { groups: [] },
        admin: { groups: ['admins'] },
        'bad name': { groups: [] },
      },
    });
    expectStatus(await h.admin.put('/groups/ops', {}), 201, 'group ops');
  }, { timeout: 120000 });
  after(async () => {
    if (op) await op.stop();
    if (opDir) fs.rmSync(opDir, { recursive: true, force: true });
    await h.down();
  }, { timeout: 60000 });

  h.test('the sign-in page learns the provider from GET /auth/providers (anonymous)', async () => {
    const r = await h.client().get('/auth/providers');
    expectStatus(r, 200, 'providers');
    assert.deepEqual(r.json, { oidc: { display_name: 'Test IdP', login_url: '/api/v1/auth/oidc/login' } });
  });

  h.test('login redirects with PKCE S256, state and nonce; return_to must stay on this origin', async () => {
    const c = h.client();
    const u = new URL(await begin(c));
    const q = u.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), CLIENT_ID);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.equal(q.get('scope'), 'openid profile email groups', 'groups asked for: the provider lists that scope');
    assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    assert.ok(q.get('state').length >= 43 && q.get('nonce').length >= 43);
    assert.notEqual(q.get('state'), q.get('nonce'));
    for (const bad of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'relative']) {
      const r = await c.get(`/auth/oidc/login?return_to=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, `return_to ${bad}: ${r.status}`);
    }
  });

  h.test('a sign-in creates user:alice, maps its group to roles, and gives a session cookie', async () => {
    const c = h.client();
    const r = await signIn(c, 'alice', `?return_to=${encodeURIComponent('/#/sessions')}`);
    assert.equal(r.status, 302, `callback: ${r.status} ${r.text}`);
    assert.equal(r.headers.location, '/#/sessions');
    const cookie = r.headers['set-cookie'].find((s) => s.startsWith('__Host-bastion_session='));
    assert.ok(cookie && /HttpOnly/.test(cookie) && /Secure/.test(cookie) && /SameSite=Strict/.test(cookie), cookie);
    const s = await c.get('/auth/session');
    expectStatus(s, 200, 'session');
    assert.equal(s.json.user.name, 'alice');
    const roles = s.json.roles.map((x) => `${x.role} ${x.scope}`).sort();
    assert.deepEqual(roles, ['Contributor /groups/ops', 'Reader /']);
    const ok = await auditOf('auth.login', (e) => e.principal === 'user:alice' && e.result === 'success');
    assert.ok(ok.length >= 1);
    assert.equal(ok[0].detail.method, 'oidc');
    const created = await auditOf('user.create', (e) => e.target === 'user:alice');
    assert.equal(created.length, 1);
    const made = await auditOf('role.put', (e) => e.principal === 'user:alice');
    assert.equal(made.length, 2, JSON.stringify(made));
    // An OIDC user has no password: a password sign-in is refused.
    const p = await h.client().post('/auth/login', { username: 'alice', password: '!oidc' });
    assert.equal(p.status, 401);
  });

  h.test('mapped roles follow the groups: removed when the group goes, hand-made ones stay', async () => {
    expectStatus(await h.admin.put('/role-assignments/alice-by-hand',
      { principal: 'user:alice', role: 'Reader', scope: '/groups/ops' }), 201, 'by hand');
    op.setAccounts({ alice: { groups: [] }, bob: { groups: [] }, admin: { groups: ['admins'] }, 'bad name': { groups: [] } });
    const c = h.client();
    assert.equal((await signIn(c, 'alice')).status, 302);
    const s = await c.get('/auth/session');
    assert.deepEqual(s.json.roles.map((x) => `${x.role} ${x.scope}`), ['Reader /groups/ops']);
    const gone = await auditOf('role.delete', (e) => e.principal === 'user:alice');
    assert.equal(gone.length, 2, JSON.stringify(gone));
    op.setAccounts({ alice: { groups: ['ops'] }, bob: { groups: [] }, admin: { groups: ['admins'] }, 'bad name': { groups: [] } });
    assert.equal((await signIn(c, 'alice')).status, 302);
    const again = await c.get('/auth/session');
    assert.equal(again.json.roles.length, 3);
  });

  /** A failed callback: a plain page, no cookie, audited with its reason. */
  async function expectRefused(r, reasonPart) {
    assert.equal(r.status, 403, `${r.status} ${r.text}`);
    assert.match(r.headers['content-type'], /^text\/html/);
    assert.ok(!r.headers['set-cookie'], 'no cookie on a failure');
    assert.ok(r.text.includes(reasonPart), `reason "${reasonPart}" in ${r.text}`);
    assert.ok(!/eyJ/.test(r.text), 'no token in the page');
    const f = await auditOf('auth.login', (e) => e.result === 'failure' && String(JSON.stringify(e.detail)).includes(reasonPart));
    assert.ok(f.length >= 1, `audited: ${reasonPart}`);
  }

  h.test('a replayed state is refused', async () => {
    const c = h.client();
    const back = await providerSignIn(await begin(c), 'bob');
    assert.equal((await c.get(callbackPath(back))).status, 302);
    await expectRefused(await h.client().get(callbackPath(back)), 'unknown, used or expired state');
    // The provider's error answer spends the state too.
    const state = new URL(await begin(c)).searchParams.get('state');
    await expectRefused(await c.get(`/api/v1/auth/oidc/callback?error=access_denied&state=${state}`), 'did not sign the user in');
    await expectRefused(await c.get(`/api/v1/auth/oidc/callback?code=x&state=${state}`), 'unknown, used or expired state');
  });

  h.test('a tampered ID token, a wrong aud and an expired token are refused', async () => {
    try {
      op.setMode('tamper');
      await expectRefused(await signIn(h.client(), 'bob'), 'signature does not verify');
      op.setMode('wrong-aud');
      await expectRefused(await signIn(h.client(), 'bob'), 'audience (aud)');
      op.setMode('expired');
      await expectRefused(await signIn(h.client(), 'bob'), 'has expired (exp)');
    } finally {
      op.setMode(null);
    }
    assert.equal((await signIn(h.client(), 'bob')).status, 302, 'fine again without the attacker');
  });

  h.test('a local user of the same name is not taken over; an invalid name is refused', async () => {
    // "admin" is the local first account, not made by single sign-on.
    await expectRefused(await signIn(h.client(), 'admin'), 'was not created by single sign-on');
    await expectRefused(await signIn(h.client(), 'bad name'), 'not a valid bastion user name');
    // A disabled user stays out, whatever the provider says.
    assert.equal((await signIn(h.client(), 'bob')).status, 302);
    expectStatus(await h.admin.put('/users/bob', { disabled: true }), 200, 'disable bob');
    await expectRefused(await signIn(h.client(), 'bob'), 'the account is disabled');
    expectStatus(await h.admin.put('/users/bob', { disabled: false }), 200, 'enable bob');
    assert.equal((await signIn(h.client(), 'bob')).status, 302);
  });

  h.test('a rotated signing key is picked up (RS256, then ES256, then RS256 again)', async () => {
    assert.equal((await signIn(h.client(), 'bob')).status, 302);
    for (const alg of ['ES256', 'RS256']) {
      await op.rotateKey(alg);
      await sleep(5500); // the JWKS refetch is rate-limited (OIDC_JWKS_REFETCH)
      const r = await signIn(h.client(), 'bob');
      assert.equal(r.status, 302, `after rotation to ${alg}: ${r.status} ${r.text}`);
    }
  });

  h.test('the CLI gets an API token through its one-time code, bound to its challenge', async () => {
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const c = h.client();
    const r = await signIn(c, 'alice', `?cli_port=45678&cli_challenge=${challenge}`);
    assert.equal(r.status, 302, `${r.status} ${r.text}`);
    const loc = new URL(r.headers.location);
    assert.equal(loc.origin, 'http://127.0.0.1:45678');
    const code = loc.searchParams.get('code');
    h.secrets.add(code, 'cli one-time code');
    const wrong = await h.client().post('/auth/oidc/cli-token', { code, verifier: crypto.randomBytes(32).toString('base64url') });
    assert.equal(wrong.status, 401, 'a wrong verifier spends the code');
    const r2 = await signIn(c, 'alice', `?cli_port=45678&cli_challenge=${challenge}`);
    const code2 = new URL(r2.headers.location).searchParams.get('code');
    h.secrets.add(code2, 'cli one-time code');
    const t = await h.client().post('/auth/oidc/cli-token', { code: code2, verifier });
    expectStatus(t, 201, 'cli token');
    assert.equal(t.json.user.name, 'alice');
    h.secrets.add(t.json.token, 'alice token');
    const who = await h.client().get('/auth/session', { bearer: t.json.token });
    assert.equal(who.json.user.name, 'alice');
    const again = await h.client().post('/auth/oidc/cli-token', { code: code2, verifier });
    assert.equal(again.status, 401, 'a code works once');
  });
  h.test('bastion login --sso --no-browser finishes through its local callback', async () => {
    const home = path.join(h.dir, 'sso-home');
    fs.mkdirSync(home, { recursive: true });
    const child = spawn(BASTION_BIN, ['login', h.daemon.origin, '--sso', '--no-browser', '--insecure'], {
      env: { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, 'xdg'), NO_PROXY: '*' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackPid(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const exited = new Promise((r) => child.once('exit', (code) => { untrackPid(child.pid); r(code); }));
    try {
      let start = null;
      for (let i = 0; i < 100 && !start; i++) {
        const m = out.match(/(https:\/\/\S+\/api\/v1\/auth\/oidc\/login\?\S+)/);
        if (m) start = new URL(m[1]);
        else await sleep(100);
      }
      assert.ok(start, `the CLI printed the URL to open: ${out} ${err}`);
      assert.match(start.searchParams.get('cli_challenge'), /^[A-Za-z0-9_-]{43}$/);
      // The browser's part: bastion → provider → bastion → the CLI.
      const c = h.client();
      const r = await signIn(c, 'alice', start.search);
      assert.equal(r.status, 302, `${r.status} ${r.text}`);
      const cli = new URL(r.headers.location);
      assert.equal(cli.hostname, '127.0.0.1');
      const page = await fetch(cli);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /Signed in/);
      const code = await Promise.race([exited, sleep(20000).then(() => 'timeout')]);
      assert.equal(code, 0, `exit ${code}: ${out} ${err}`);
      assert.match(out, /Logged in to .* as alice/);
      const saved = JSON.parse(fs.readFileSync(path.join(home, 'xdg', 'bastion', 'config.json'), 'utf8'));
      h.secrets.add(saved.token, 'sso cli token');
      const who = await h.client().get('/auth/session', { bearer: saved.token });
      assert.equal(who.json.user.name, 'alice');
      h.secrets.scan(out + err, 'the CLI output');
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
  });
  h.test('in Chromium: "Sign in with Test IdP", the provider\'s form, back in the portal signed in', { timeout: 120000 }, async () => {
    const browser = await launch();
    try {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const foreign = [];
      const opPort = new URL(op.issuer).port;
      // Only the daemon and the provider, both on loopback.
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
      const sso = page.locator('#login-sso');
      await sso.waitFor({ state: 'visible', timeout: 60000 });
      assert.equal((await sso.textContent()).trim(), 'Sign in with Test IdP');
      await sso.click();
      await page.locator('#login').waitFor({ state: 'visible' });
      assert.equal(new URL(page.url()).port, opPort, 'on the provider\'s page');
      await page.fill('#login', 'bob');
      await page.fill('#password', 'anything');
      await page.click('#submit');
      await page.locator('#logout').waitFor({ state: 'visible' });
      assert.equal(new URL(page.url()).origin, h.daemon.origin);
      const who = await page.evaluate(async () => (await fetch('/api/v1/auth/session')).json());
      assert.equal(who.user.name, 'bob');
      assert.deepEqual(errors, []);
      assert.deepEqual(foreign, []);
    } finally {
      await browser.close();
    }
  });
  h.test('serve refuses (and --check-config reports) a bad [oidc]: unknown role, bad scope, a secret file others may read', async () => {
    const data = path.join(h.dir, 'check-data');
    const loose = path.join(h.dir, 'loose-secret');
    fs.writeFileSync(loose, 'x\n', { mode: 0o644 });
    fs.chmodSync(loose, 0o644);
    const base = { ...daemonOpts.env, BASTION_DATA: data };
    const cases = [
      [{ BASTION_OIDC_MAP: 'ops Admin /' }, /oidc\.map: 'ops Admin \/'/],
      [{ BASTION_OIDC_MAP: 'ops Reader /nowhere/x' }, /oidc\.map/],
      [{ BASTION_OIDC_CLIENT_SECRET_FILE: loose }, /must not be readable by group or others/],
      [{ BASTION_OIDC_ISSUER: 'http://op.example' }, /http:\/\/ only on a loopback address/],
    ];
    for (const [env, want] of cases) {
      const r = await runCli(h, ['serve', '--check-config'], { env: { ...base, ...env } });
      assert.equal(r.code, 1, `${JSON.stringify(env)}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stdout + r.stderr, want);
    }
    const ok = await runCli(h, ['serve', '--check-config'], { env: base });
    assert.equal(ok.code, 0, `${ok.stdout} ${ok.stderr}`);
  });
  h.test('a provider that takes the client secret only in the form (client_secret_post) works too', async () => {
    // A second instance, so that it reads the changed discovery document.
    const port = await freePort();
    const redirect = `https://127.0.0.1:${port}/api/v1/auth/oidc/callback`;
    await op.reconfigure({ authMethod: 'client_secret_post', extraRedirectUris: [redirect] });
    const dir = path.join(h.dir, 'post');
    fs.mkdirSync(dir);
    const d = await startDaemon(dir, { port, env: { ...daemonOpts.env, BASTION_OIDC_REDIRECT_URL: redirect } });
    try {
      const disc = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
      assert.deepEqual(disc.token_endpoint_auth_methods_supported, ['client_secret_post']);
      const c = new Client(d, { secrets: h.secrets, label: 'post' });
      const r = await signIn(c, 'bob');
      assert.equal(r.status, 302, `${r.status} ${r.text}`);
      assert.equal((await c.get('/auth/session')).json.user.name, 'bob');
    } finally {
      const st = await d.stop();
      assert.equal(st.code, 0, JSON.stringify(st));
      await op.reconfigure({});
    }
    assert.equal((await signIn(h.client(), 'bob')).status, 302, 'client_secret_basic again');
  });
  h.testCleanExit();
});
