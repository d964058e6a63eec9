// Operating an instance (issue 6): the config file and --check-config,
// SIGHUP (a new TLS certificate for new connections while a session goes on;
// live limits; what needs a restart; a broken file changes nothing) and
// SIGTERM (each session told why, exit 0).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import crypto from 'node:crypto';
import { fileHarness } from './lib/harness.mjs';
import {
  Client, expectSession, expectError, createTopology, addVm, connect, keyAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { BASTION_BIN, TEST_DESTINATIONS, rawGet, startDaemon } from './lib/daemon.mjs';
import {
  run, randomString, waitFor, freePort, trackPid, untrackPid, sleep, tailFile, isRoot, which,
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
    // As lib/daemon.mjs does: as root, keep root (a `bastion` account on
    // the machine would take the daemon, and the files the test writes as
    // root would be unreadable to it).
    stdio: ['ignore', 'ignore', errFd],
    env: {
      BASTION_ALLOWED_DESTINATIONS: TEST_DESTINATIONS, ...(isRoot ? { BASTION_USER: 'root' } : {}), ...process.env, BASTION_ADMIN_PASSWORD: adminPassword,
    },
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

  h.test('--check-config refuses what serve would refuse, and serve does refuse it', { timeout: 120000 }, async () => {
    const base = path.join(h.dir, 'check');
    fs.mkdirSync(base, { recursive: true });
    const badKey = path.join(base, 'short.key');
    fs.writeFileSync(badKey, crypto.randomBytes(31), { mode: 0o600 });
    const looseKey = path.join(base, 'loose.key');
    fs.writeFileSync(looseKey, crypto.randomBytes(32));
    fs.chmodSync(looseKey, 0o644);
    const store = (name, setup) => {
      const dir = path.join(base, name);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      setup(path.join(dir, 'bastion.db'));
      return dir;
    };
    const newer = store('newer', (db) => execFileSync('python3', ['-c',
      'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version=9999"); c.commit()', db]));
    const garbage = store('garbage', (db) => fs.writeFileSync(db, 'this is not a database\n'.repeat(100)));
    const cases = [
      { what: 'a host name as listen address', args: ['--listen', `localhost:${await freePort()}`],
        msg: /server\.listen 'localhost:\d+' is not a numeric/ },
      { what: 'a user that does not exist', args: ['--user', 'nosuchuser-e2e'], msg: /there is no user 'nosuchuser-e2e'/ },
      { what: 'a key that is not the certificate\'s',
        args: ['--cert', path.join(h.dir, 'a-cert.pem'), '--key', path.join(h.dir, 'b-key.pem')],
        msg: /tls: key .*b-key\.pem .*(not the certificate's|does not belong)/ },
      { what: 'a certificate that is not there',
        args: ['--cert', path.join(base, 'none.pem'), '--key', path.join(h.dir, 'a-key.pem')],
        msg: /tls: certificate .*none\.pem: No such file/ },
      { what: 'a master key of the wrong size', args: ['--master-key-file', badKey], msg: /exactly 32 bytes/ },
      { what: 'a master key others may read', args: ['--master-key-file', looseKey], msg: /chmod 600/ },
      { what: 'a store of a newer schema', data: newer, msg: /schema version 9999, newer than this binary knows/ },
      { what: 'a store that is not a database', data: garbage, msg: /the store .* cannot be/ },
      { what: 'a data directory that cannot be created', data: path.join(base, 'no', 'such', 'dir'),
        msg: /server\.data .* cannot be created/ },
    ];
    for (const [i, c] of cases.entries()) {
      const data = c.data ?? path.join(base, `d${i}`);
      const args = ['--data', data, '--listen', `127.0.0.1:${await freePort()}`, ...(c.args ?? [])];
      const chk = await run(BASTION_BIN, ['serve', '--check-config', ...args], { allowFail: true });
      assert.equal(chk.code, 1, `${c.what}: --check-config exit ${chk.code}\n${chk.stdout}${chk.stderr}`);
      assert.match(chk.stderr, c.msg, c.what);
      assert.doesNotMatch(chk.stdout, /configuration OK/, c.what);
      // serve itself refuses the same (bounded: a serve that started would be killed and fail here)
      const srv = await run(BASTION_BIN, ['serve', ...args], {
        allowFail: true, timeoutMs: 20000, env: { ...process.env, BASTION_ADMIN_PASSWORD: adminPassword },
      });
      assert.ok(srv.code > 0, `${c.what}: serve exit ${srv.code}, expected a refusal\n${srv.stderr}`);
    }
    // a privileged port, for a user without CAP_NET_BIND_SERVICE (nobody)
    if (isRoot && which('setpriv')) {
      const open = path.join(base, 'nobody');
      fs.mkdirSync(open, { mode: 0o777 });
      fs.chmodSync(open, 0o777);
      const asNobody = (args) => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', BASTION_BIN, 'serve', ...args],
        { allowFail: true, timeoutMs: 20000, env: { ...process.env, BASTION_ADMIN_PASSWORD: adminPassword } });
      let r = await asNobody(['--check-config', '--listen', '127.0.0.1:443', '--data', path.join(open, 'a')]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /server\.listen port 443 is below \d+: binding it needs root or CAP_NET_BIND_SERVICE/);
      r = await asNobody(['--listen', '127.0.0.1:443', '--data', path.join(open, 'b')]);
      assert.ok(r.code > 0, `serve as nobody on 443: exit ${r.code}`);
      r = await asNobody(['--check-config', '--listen', `127.0.0.1:${await freePort()}`, '--data', path.join(open, 'c')]);
      assert.equal(r.code, 0, r.stderr);
    }
    // and what is fine stays fine: a good pair, an existing data dir, a 0600 key
    const goodKey = path.join(base, 'good.key');
    fs.writeFileSync(goodKey, crypto.randomBytes(32), { mode: 0o600 });
    const ok = await run(BASTION_BIN, ['serve', '--check-config', '--data', path.join(base, 'fresh'),
      '--listen', '[::1]:9', '--cert', path.join(h.dir, 'a-cert.pem'), '--key', path.join(h.dir, 'a-key.pem'),
      '--master-key-file', goodKey], { allowFail: true });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fs.existsSync(path.join(base, 'fresh')), false, 'the check creates nothing');
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

  h.test('GET /healthz answers at the root as under /api/v1, without credentials', async () => {
    for (const p of ['/healthz', '/api/v1/healthz']) {
      const r = await rawGet(port, p, 5000);
      assert.equal(r.status, 200, p);
      assert.deepEqual(JSON.parse(r.text), { status: 'ok' }, p);
    }
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

  h.test('bastion session list shows a live session with a UTC start; session end closes its terminal', { timeout: 60000 }, async () => {
    const tok = await h.admin.post('/tokens', { name: 'ops-cli' });
    assert.equal(tok.status, 201, tok.text);
    h.secrets.add(tok.json.token, 'the ops CLI token');
    const env = { ...process.env, BASTION_URL: `https://127.0.0.1:${port}`, BASTION_TOKEN: tok.json.token, BASTION_INSECURE: '1' };
    const cli = (args) => run(BASTION_BIN, args, { allowFail: true, env });
    const { s, term } = await shell(h.admin);
    let r = await cli(['session', 'list', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const mine = JSON.parse(r.stdout).find((x) => x.id === s.id);
    assert.ok(mine, `session ${s.id} listed: ${r.stdout}`);
    assert.equal(typeof mine.started_at, 'number', 'seconds in json');
    r = await cli(['session', 'list']);
    assert.equal(r.code, 0, r.stderr);
    const row = r.stdout.split('\n').find((l) => l.startsWith(s.id));
    assert.ok(row, r.stdout);
    const started = `${new Date(mine.started_at * 1000).toISOString().slice(0, 19).replace('T', ' ')}Z`;
    assert.ok(row.includes(`  ${started}  `), `the start in UTC (${started}) in ${row}`);
    r = await cli(['session', 'end', s.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `Ended session ${s.id}\n`);
    await term.waitClosed({ timeoutMs: 10000 });
    const msg = term.controls.find((c) => c.type === 'closed');
    assert.deepEqual(msg, { type: 'closed', reason: 'disconnected by admin' });
    r = await cli(['session', 'list', '-o', 'json']);
    assert.ok(!JSON.parse(r.stdout).some((x) => x.id === s.id), 'gone from the list');
    r = await cli(['session', 'end', s.id]);
    assert.equal(r.code, 4, 'ended already');
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

  h.test('log_format = json: every stderr line one object with time, level, type; audit records typed "audit"', { timeout: 60000 }, async () => {
    const dir = path.join(h.dir, 'jsonlog');
    fs.mkdirSync(dir, { recursive: true });
    const d = await startDaemon(dir, { adminPassword, env: { BASTION_LOG_FORMAT: 'json' } });
    try {
      const c = new Client(d, { secrets: h.secrets, label: 'jsonlog' });
      await c.login('admin', adminPassword);
      const bad = new Client(d, { secrets: h.secrets, label: 'jsonlog-bad' });
      assert.equal((await bad.post('/auth/login', { username: 'admin', password: `wrong-${randomString(12)}` })).status, 401);
    } finally {
      const r = await d.stop(10000);
      assert.equal(r.code, 0, JSON.stringify(r));
    }
    const lines = d.log().split('\n').filter(Boolean);
    assert.ok(lines.length >= 4, d.log());
    const objs = lines.map((l) => {
      try { return JSON.parse(l); } catch { assert.fail(`not a JSON line: ${l}`); }
      return null;
    });
    for (const o of objs) {
      assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, JSON.stringify(o));
      assert.ok(['debug', 'info', 'warn', 'error'].includes(o.level), JSON.stringify(o));
      assert.ok(['log', 'audit'].includes(o.type), JSON.stringify(o));
      assert.equal(typeof o.message, 'string');
    }
    assert.ok(objs.some((o) => o.type === 'log' && /^listening on https:/.test(o.message)), 'the diagnostics');
    assert.ok(objs.some((o) => o.type === 'log' && o.message === 'stopped'));
    const audits = objs.filter((o) => o.type === 'audit');
    const login = audits.find((o) => o.audit.action === 'auth.login' && o.audit.result === 'success');
    assert.ok(login, 'the sign-in is an audit object');
    assert.equal(login.message, 'auth.login success');
    assert.equal(login.audit.principal, 'user:admin');
    assert.ok(audits.some((o) => o.audit.action === 'auth.login' && o.audit.result === 'failure'), 'and the failure');
    // check-config knows the key
    const r = await run(BASTION_BIN, ['serve', '--check-config', '--data', path.join(dir, 'x'), '--log-format', 'yaml'], { allowFail: true });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--log-format must be text or json/);
  });

  h.test('no password or key in any response or log line', async () => {
    h.assertNoLeaks();
  });
});
