// Operating an instance (issue 6): the config file and --check-config,
// SIGHUP (a new TLS certificate for new connections while a session goes on;
// live limits; what needs a restart; a broken file changes nothing) and
// SIGTERM (each session told why, exit 0).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import crypto from 'node:crypto';
import { fileHarness } from './lib/harness.mjs';
import {
  Client, expectSession, expectError, createTopology, addVm, connect, keyAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { BASTION_BIN, TEST_DESTINATIONS, rawGet } from './lib/daemon.mjs';
import {
  run, randomString, waitFor, freePort, trackPid, untrackPid, sleep, tailFile,
} from './lib/util.mjs';

const h = fileHarness({
  label: 'ops', block: 140, net: true, daemon: false, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
});
const G = 'e2e';
let conf; let certA; let certB; let port;
const adminPassword = `Adm-${randomString(20)}`;

function configText({ maxPerUser, listenPort = port, cert = 'tls-cert.pem' }) {
  return [
    '; written by ops.test.mjs',
    '[server]',
    `listen = 127.0.0.1:${listenPort}`,
    `data = ${path.join(h.dir, 'data')}`,
    'drain_timeout = 5s',
    '[tls]',
    `cert = ${path.join(h.dir, cert)}`,
    `key = ${path.join(h.dir, cert.replace('cert', 'key'))}`,
    '[sessions]',
    `max_per_user = ${maxPerUser}`,
    '',
  ].join('\n');
}

async function makeCert(name, cn) {
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', path.join(h.dir, `${name}-key.pem`), '-out', path.join(h.dir, `${name}-cert.pem`),
    '-days', '2', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { timeoutMs: 30000 });
  const pem = fs.readFileSync(path.join(h.dir, `${name}-cert.pem`));
  return new crypto.X509Certificate(pem).fingerprint256;
}

function peerFingerprint() {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: undefined }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.setTimeout(5000, () => s.destroy(new Error('TLS handshake timed out')));
    s.on('error', reject);
  });
}

// `bastion serve --config FILE`, like lib/daemon.mjs but with our flags.
async function serve(args) {
  const logFile = path.join(h.dir, 'bastion.stderr.log');
  const errFd = fs.openSync(logFile, 'a');
  const proc = spawn(BASTION_BIN, ['serve', ...args], {
    stdio: ['ignore', 'ignore', errFd], env: { BASTION_ALLOWED_DESTINATIONS: TEST_DESTINATIONS, ...process.env, BASTION_ADMIN_PASSWORD: adminPassword },
  });
  fs.closeSync(errFd);
  trackPid(proc.pid);
  let exit = null;
  const exited = new Promise((r) => proc.once('exit', (code, signal) => { exit = { code, signal }; untrackPid(proc.pid); r(exit); }));
  const d = {
    port, proc, pid: proc.pid, logFile, dataDir: path.join(h.dir, 'data'), outFile: path.join(h.dir, 'none'),
    origin: `https://127.0.0.1:${port}`, wsBase: `wss://127.0.0.1:${port}`, adminPassword,
    get exit() { return exit; },
    log() { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } },
    logTail(n = 40) { return tailFile(logFile, n); },
    async stop(timeoutMs = 10000) {
      if (exit) return { ...exit, ms: 0 };
      const t0 = Date.now();
      proc.kill('SIGTERM');
      const res = await Promise.race([exited, sleep(timeoutMs).then(() => null)]);
      if (!res) { proc.kill('SIGKILL'); await exited; return { timedOut: true }; }
      return { ...res, ms: Date.now() - t0 };
    },
  };
  await waitFor(async () => {
    if (exit) throw new Error(`bastion exited: ${JSON.stringify(exit)}\n${d.logTail()}`);
    return (await rawGet(port, '/api/v1/healthz', 1000)).status === 200;
  }, { timeoutMs: 15000, what: `bastion healthy on ${port}` });
  return d;
}

function body() {
  return { bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private) };
}

async function shell(client) {
  const s = expectSession(await connect(client, G, 'vm1', body()));
  const a = await attach(h.daemon, client, s.terminal);
  assert.ok(a.ok, `attach ${a.status}`);
  a.term.send('echo UP$((2+2))\r');
  await a.term.waitForOutput('UP4', { timeoutMs: 15000 });
  return { s, term: a.term };
}

async function checkConfig(file, env = {}) {
  return run(BASTION_BIN, ['serve', '--check-config', '--config', file], {
    allowFail: true, env: { ...process.env, ...env },
  });
}

describe('ops', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    port = await freePort('127.0.0.1');
    certA = await makeCert('a', 'ops-A');
    certB = await makeCert('b', 'ops-B');
    fs.copyFileSync(path.join(h.dir, 'a-cert.pem'), path.join(h.dir, 'tls-cert.pem'));
    fs.copyFileSync(path.join(h.dir, 'a-key.pem'), path.join(h.dir, 'tls-key.pem'));
    conf = path.join(h.dir, 'bastion.conf');
    fs.writeFileSync(conf, configText({ maxPerUser: 1 }));
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('--check-config: 0 and OK for a good file; 1 naming FILE:LINE, the variable or the flag', async () => {
    const ok = await checkConfig(conf);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /configuration OK/);
    const bad = path.join(h.dir, 'bad.conf');
    fs.writeFileSync(bad, '[sessions]\nmax_per_user = 2\nidle_timout = 5m\n');
    let r = await checkConfig(bad);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${bad}:3: unknown key 'idle_timout' in section [sessions]`), r.stderr);
    fs.writeFileSync(bad, '[sessions]\nidle_timeout = forever\n');
    r = await checkConfig(bad);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${bad}:2: [sessions] idle_timeout must be a duration`), r.stderr);
    r = await checkConfig(conf, { BASTION_MAX_SESSIONS: 'many' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /BASTION_MAX_SESSIONS/);
    r = await run(BASTION_BIN, ['serve', '--check-config', '--config', conf, '--max-sessions-per-user', '0'], { allowFail: true });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--max-sessions-per-user/);
    // a certificate that does not load is caught too
    const badCert = path.join(h.dir, 'badcert.conf');
    fs.writeFileSync(badCert, configText({ maxPerUser: 1, cert: 'missing-cert.pem' }));
    r = await checkConfig(badCert);
    assert.equal(r.code, 1, r.stdout);
  });

  h.test('the file configures the instance: its certificate and max_per_user', { timeout: 60000 }, async () => {
    h.daemon = await serve(['--config', conf]);
    h.admin = new Client(h.daemon, { secrets: h.secrets, label: 'admin' });
    await h.admin.login('admin', adminPassword);
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm1', ip: h.net.addr(2) });
    assert.equal(await peerFingerprint(), certA);
    const first = await shell(h.admin);
    expectError(await connect(h.admin, G, 'vm1', body()), 429, 'TooManySessions');
    h.first = first;
  });

  h.test('SIGHUP: new certificate for new connections, open session goes on, limits live, listen needs a restart',
    { timeout: 60000 }, async () => {
      const { term } = h.first;
      fs.copyFileSync(path.join(h.dir, 'b-cert.pem'), path.join(h.dir, 'tls-cert.pem'));
      fs.copyFileSync(path.join(h.dir, 'b-key.pem'), path.join(h.dir, 'tls-key.pem'));
      fs.writeFileSync(conf, configText({ maxPerUser: 5, listenPort: port + 1 }));
      const mark = h.daemon.log().length;
      process.kill(h.daemon.pid, 'SIGHUP');
      await waitFor(() => h.daemon.log().slice(mark).includes('reload: done'), { timeoutMs: 10000, what: 'reload done' });
      const log = h.daemon.log().slice(mark);
      assert.match(log, /reload: sessions\.max_per_user: 1 -> 5/);
      assert.match(log, /reload: server\.listen: .* needs a restart/);
      assert.equal(await peerFingerprint(), certB, 'a new connection gets the new certificate');
      const from = term.length;
      term.send('echo still-$((6+1))\r');
      await term.waitForOutput('still-7', { from, timeoutMs: 10000 });
      assert.equal(term.closed, null);
      const second = expectSession(await connect(h.admin, G, 'vm1', body()), 'the new limit applies');
      await h.admin.del(`/sessions/${second.id}`);
    });

  h.test('SIGHUP with a broken file: an error in the log, everything stays as it was', { timeout: 30000 }, async () => {
    fs.writeFileSync(conf, '[sessions]\nmax_per_user = lots\n');
    const mark = h.daemon.log().length;
    process.kill(h.daemon.pid, 'SIGHUP');
    await waitFor(() => h.daemon.log().slice(mark).includes('the running configuration stays'),
      { timeoutMs: 10000, what: 'reload refused' });
    assert.ok(h.daemon.log().slice(mark).includes(`${conf}:2:`), h.daemon.log().slice(mark));
    assert.equal(await peerFingerprint(), certB);
    assert.equal((await rawGet(port, '/api/v1/healthz')).status, 200);
  });

  h.test('SIGTERM: the session is told why, the process exits 0', { timeout: 30000 }, async () => {
    const { term } = h.first;
    const r = await h.daemon.stop(10000);
    assert.ok(!r.timedOut, 'exited within 10 s');
    assert.equal(r.code, 0, JSON.stringify(r));
    const msg = term.controls.find((c) => c.type === 'closed');
    assert.deepEqual(msg, { type: 'closed', reason: 'the bastion is shutting down' }, JSON.stringify(term.controls));
    await term.waitClosed({ timeoutMs: 5000 });
    assert.equal(term.closed.code, 1000);
    term.close();
    assert.match(h.daemon.log(), /received SIGTERM: draining/);
    assert.match(h.daemon.log(), /\{"audit":.*"reason":"the bastion is shutting down"/);
  });

  h.test('no password or key in any response or log line', async () => {
    h.assertNoLeaks();
  });
});
