// The test's OpenID provider (lib/oidc-provider-main.mjs, `oidc-provider`
// from npm) as a child process on loopback, and a browserless walk
// through its sign-in for the API-level tests.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, trackPid, untrackPid } from './util.mjs';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'oidc-provider-main.mjs');

/** A fresh signing key (RS256 or ES256) as a private JWK with a random kid. */
export function newKey(alg = 'RS256') {
  const { privateKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomBytes(8).toString('hex'), alg, use: 'sig' };
}

/**
 * Start the provider. opts: {dir, port, clientId, clientSecret, redirectUri,
 * accounts}. Returns {issuer, setAccounts, setMode, rotateKey, stop}.
 */
export async function startProvider(opts) {
  const keyFile = path.join(opts.dir, 'op-key.json');
  const stateFile = path.join(opts.dir, 'op-state.json');
  const cfgFile = path.join(opts.dir, 'op-config.json');
  const st = { accounts: opts.accounts || {}, mode: null };
  fs.writeFileSync(keyFile, JSON.stringify(newKey()), { mode: 0o600 });
  fs.writeFileSync(stateFile, JSON.stringify(st));
  const conf = { port: opts.port, clientId: opts.clientId, clientSecret: opts.clientSecret, redirectUri: opts.redirectUri, keyFile, stateFile };
  fs.writeFileSync(cfgFile, JSON.stringify(conf));
  let proc = null;
  const logFile = path.join(opts.dir, 'op.log');

  async function start() {
    const fd = fs.openSync(logFile, 'a');
    proc = spawn(process.execPath, [MAIN, cfgFile], { stdio: ['ignore', fd, fd], cwd: path.dirname(MAIN) });
    fs.closeSync(fd);
    trackPid(proc.pid);
    const p = proc;
    p.once('exit', () => untrackPid(p.pid));
    for (let i = 0; i < 100; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${opts.port}/.well-known/openid-configuration`);
        if (r.ok) return;
      } catch { /* not yet */ }
      await sleep(100);
    }
    throw new Error(`the OpenID provider did not start:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
  }
  async function stop() {
    if (!proc || proc.exitCode !== null) return;
    const p = proc;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([gone, sleep(5000)]);
    if (p.exitCode === null) p.kill('SIGKILL');
  }
  await start();
  const save = () => fs.writeFileSync(stateFile, JSON.stringify(st));
  return {
    issuer: `http://127.0.0.1:${opts.port}`,
    log: () => fs.readFileSync(logFile, 'utf8'),
    setAccounts(a) { st.accounts = a; save(); },
    setMode(m) { st.mode = m; save(); },
    /** Restart with other client settings ({authMethod, extraRedirectUris}). */
    async reconfigure(more) {
      await stop();
      fs.writeFileSync(cfgFile, JSON.stringify({ ...conf, ...more }));
      await start();
    },
    async rotateKey(alg = 'RS256') {
      await stop();
      fs.writeFileSync(keyFile, JSON.stringify(newKey(alg)), { mode: 0o600 });
      await start();
    },
    stop,
  };
}

/**
 * Walk the provider's side of a sign-in without a browser: from the
 * provider URL bastion redirected to, sign in as login and return the URL
 * the provider sends the browser back to (bastion's callback).
 */
export async function providerSignIn(authUrl, login) {
  const jar = new Map();
  const keep = (r) => {
    for (const c of r.headers.getSetCookie()) {
      const [nv] = c.split(';');
      const i = nv.indexOf('=');
      jar.set(nv.slice(0, i), nv.slice(i + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  let url = authUrl;
  const origin = new URL(authUrl).origin;
  for (let hop = 0; hop < 10; hop++) {
    const u = new URL(url, origin);
    if (u.origin !== origin) return u.toString();
    let r;
    if (u.pathname.startsWith('/interaction/') && !u.pathname.endsWith('/login')) {
      r = await fetch(u, { redirect: 'manual', headers: { cookie: cookie() } });
      keep(r);
      const html = await r.text();
      const action = html.match(/action="([^"]+)"/);
      if (!action) throw new Error(`no sign-in form at ${u}: ${r.status} ${html.slice(0, 300)}`);
      r = await fetch(new URL(action[1], origin), {
        method: 'POST', redirect: 'manual', body: new URLSearchParams({ login, password: 'any' }),
        headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
      });
    } else {
      r = await fetch(u, { redirect: 'manual', headers: { cookie: cookie() } });
    }
    keep(r);
    const loc = r.headers.get('location');
    if (!loc) throw new Error(`the provider stopped at ${u} with ${r.status}: ${(await r.text()).slice(0, 300)}`);
    url = new URL(loc, u).toString();
  }
  throw new Error('too many redirects at the provider');
}
