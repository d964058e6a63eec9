// The native client (docs/native-client.md, docs/api.md "The native
// client's stream"): the stock OpenSSH client through `bastion ssh` and
// `bastion proxy` (ssh, scp, sftp, -L), `bastion tunnel` with many
// connections at once, the stream's checks (rows 3-6 as connect answers
// them, PortNotAllowed), tunnels as sessions (GET and DELETE /sessions, the
// audit), back-pressure against a client that stops reading, and the time
// to open a stream (printed for the report, not asserted).
//
// Topology: sshd "main" on .2 port 22 (the VM vm-main), python's
// http.server on .2 port HTTP_PORT (listed in b1's tunnel_ports), serving
// a shared directory that also holds the 100 MiB file.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import nodeNet from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileHarness } from './lib/harness.mjs';
import { expectError, expectStatus, ids, putOk, createTopology, addVm, connect, keyAuth } from './lib/api.mjs';
import { runCli, expectCode } from './lib/cli.mjs';
import { BASTION_BIN } from './lib/daemon.mjs';
import { waitFor, sleep, freePort, trackPid, untrackPid, isAlive } from './lib/util.mjs';
import { launch, newContext, signIn } from './lib/browser.mjs';

const h = fileHarness({ label: 'native', block: 30, net: true, keys: [{ id: 'ed25519', type: 'ed25519' }] });
const G = 'e2e';
const VM = () => ids.vm(G, 'vm-main');
const BIG = 100 * 1024 * 1024;
let main; let share; let httpPort; let deafPort; let kh; let keyFile;
const children = new Set();

function cliEnv() {
  return {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: path.join(h.dir, 'home'),
    XDG_CONFIG_HOME: path.join(h.dir, 'xdg'),
    NO_PROXY: '*',
  };
}

// A process of ours: resolves {code, signal, stdout, stderr}; killed by PID
// at the end if still running.
function spawnP(cmd, args, { input, env = cliEnv(), timeoutMs = 120000 } = {}) {
  const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  trackPid(child.pid);
  children.add(child);
  const out = []; const err = [];
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => err.push(d));
  child.stdin.on('error', () => {});
  if (input !== undefined) child.stdin.end(input);
  const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
  child.done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      untrackPid(child.pid);
      children.delete(child);
      const res = { code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      h.secrets.scan(res.stdout, `stdout of ${cmd}`);
      h.secrets.scan(res.stderr, `stderr of ${cmd}`);
      resolve(res);
    });
  });
  return child;
}

function sshOpts() {
  return ['-F', '/dev/null', '-i', keyFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=accept-new', '-o', `UserKnownHostsFile=${kh}`, '-o', 'LogLevel=ERROR',
    '-l', h.user.name];
}
// What `bastion ssh` puts on ssh's command line, for scp and sftp.
function proxyOpts(vm = VM()) {
  return ['-o', `ProxyCommand=${BASTION_BIN} proxy ${vm}`, '-o', `HostKeyAlias=bastion${vm}`];
}

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// A stream opened by hand on a fresh TLS connection: resolves
// {status, head, socket, rest, ms} (ms: from the request's first byte to
// the answer's head, on an already-open TLS connection).
function rawStream(pathAndQuery, { token, protocol = 'bastion.stream.v1', hh = h } = {}) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: hh.daemon.port, rejectUnauthorized: false }, () => {
      const key = crypto.randomBytes(16).toString('base64');
      const req = `GET /api/v1${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${hh.daemon.port}\r\n`
        + 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
        + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Protocol: ${protocol}\r\n`
        + `Authorization: Bearer ${token}\r\n\r\n`;
      let buf = Buffer.alloc(0);
      const t0 = process.hrtime.bigint();
      const onData = (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        socket.removeListener('data', onData);
        const head = buf.subarray(0, end).toString('latin1');
        const status = Number(head.split(' ')[1]);
        resolve({ status, head, socket, rest: buf.subarray(end + 4), ms });
      };
      socket.on('data', onData);
      socket.write(req);
    });
    socket.on('error', reject);
  });
}

// The JSON error body after a non-101 head.
async function errorBody(s) {
  let buf = s.rest;
  const len = Number(/content-length: (\d+)/i.exec(s.head)?.[1] || 0);
  while (buf.length < len) buf = Buffer.concat([buf, await new Promise((r) => s.socket.once('data', r))]);
  s.socket.destroy();
  return JSON.parse(buf.subarray(0, len).toString('utf8'));
}

// A masked client frame (RFC 6455), opcode 2 (binary) or 1 (text).
function frame(payload, opcode = 2) {
  const mask = crypto.randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len])
    : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4];
  return Buffer.concat([head, mask, body]);
}

// The server's frames on a stream (unmasked), until it closes: resolves
// {texts: [parsed JSON], binary: bytes, closeCode}.
function readFrames(s, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    let buf = s.rest;
    const out = { texts: [], binary: 0, closeCode: null };
    const timer = setTimeout(() => reject(new Error(`no close within ${timeoutMs} ms: ${JSON.stringify(out)}`)), timeoutMs);
    const parse = () => {
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f; let off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
        if (buf.length < off + len) return;
        const op = buf[0] & 0x0f; const body = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (op === 1) out.texts.push(JSON.parse(body.toString('utf8')));
        else if (op === 2) out.binary += body.length;
        else if (op === 8) { out.closeCode = body.length >= 2 ? body.readUInt16BE(0) : 1005; clearTimeout(timer); s.socket.destroy(); resolve(out); return; }
      }
    };
    s.socket.on('data', (d) => { buf = Buffer.concat([buf, d]); parse(); });
    s.socket.on('close', () => { clearTimeout(timer); resolve(out); });
    parse();
  });
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

function httpGet(port, urlPath = '/hello.txt') {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 30000 }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

let adminToken;

describe('native client', () => {
  before(async () => {
    await h.up();
    const net = h.net;
    main = await h.sshd({ name: 'main', port: 22, addrs: [net.addr(2)], extraConfig: ['Subsystem sftp internal-sftp'] });
    keyFile = h.keys.ed25519.file;
    kh = path.join(h.dir, 'known_hosts');
    // A directory the VM's user writes to (the "VM" shares our file system).
    share = fs.mkdtempSync(path.join(os.tmpdir(), 'bst-native-'));
    fs.chmodSync(share, 0o777);
    fs.writeFileSync(path.join(share, 'hello.txt'), 'hello through the bastion\n', { mode: 0o644 });
    fs.writeFileSync(path.join(share, 'big.bin'), crypto.randomBytes(BIG), { mode: 0o644 });
    httpPort = net.mode === 'netns' ? 8000 : await freePort(net.addr(2));
    const [cmd, args] = net.wrap('python3', ['-m', 'http.server', String(httpPort), '--bind', net.addr(2), '--directory', share]);
    const srv = spawn(cmd, args, { stdio: 'ignore' });
    trackPid(srv.pid);
    children.add(srv);
    srv.on('close', () => { untrackPid(srv.pid); children.delete(srv); });
    // a server that accepts and never reads: the VM side of a slow writer
    deafPort = net.mode === 'netns' ? 8001 : await freePort(net.addr(2));
    const [dcmd, dargs] = net.wrap('python3', ['-c', 'import socket,time,sys\n'
      + 's=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
      + `s.bind(("${net.addr(2)}", ${deafPort})); s.listen(16); held=[]\n`
      + 'while True:\n  c,_=s.accept(); held.append(c)\n']);
    const deaf = spawn(dcmd, dargs, { stdio: 'ignore' });
    trackPid(deaf.pid);
    children.add(deaf);
    deaf.on('close', () => { untrackPid(deaf.pid); children.delete(deaf); });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: net.prefix, bastion: 'b1' });
    await putOk(h.admin, ids.bastion(G, 'b1'), { networks: [ids.network(G, 'n1')], tunnel_ports: [httpPort, deafPort] });
    await addVm(h.admin, { group: G, name: 'vm-main', ip: net.addr(2), port: main.port });
    const login = await runCli(h, ['login', `https://127.0.0.1:${h.daemon.port}`, '--username', 'admin', '--password-stdin',
      '--ca-file', path.join(h.daemon.dataDir, 'tls-cert.pem')], { input: `${h.daemon.adminPassword}\n` });
    expectCode(login, 0, 'login');
    adminToken = JSON.parse(fs.readFileSync(path.join(h.dir, 'xdg', 'bastion', 'config.json'), 'utf8')).token;
    h.secrets.add(adminToken, 'admin API token');
    // python's server takes a moment to listen
    await waitFor(async () => {
      const s = await rawStream(`/groups/${G}/vms/vm-main/stream?port=${httpPort}`, { token: adminToken });
      s.socket.destroy();
      return s.status === 101;
    }, { timeoutMs: 20000, intervalMs: 200, what: 'the VM\'s HTTP server listens' });
  }, { timeout: 180000 });
  after(async () => {
    for (const c of [...children]) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    if (share) fs.rmSync(share, { recursive: true, force: true });
    await h.down();
  }, { timeout: 60000 });

  h.test('bastion ssh: a remote command through the stock ssh, host key under the VM-ID alias', async () => {
    const p = spawnP(BASTION_BIN, ['ssh', VM(), '--', ...sshOpts(), 'echo', 'native-ok']);
    const r = await p.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'native-ok');
    const known = fs.readFileSync(kh, 'utf8');
    assert.match(known, new RegExp(`^bastion/groups/${G}/vms/vm-main `, 'm'), known);
    assert.doesNotMatch(known, new RegExp(`^${h.net.addr(2).replace(/\./g, '\\.')}[ ,]`, 'm'));
    // not signed in: said by bastion, before ssh runs
    const none = await runCli(h, ['ssh', VM()], { xdg: 'xdg-none' });
    expectCode(none, 3, 'ssh when not logged in');
    assert.match(none.stderr, /not logged in/);
    expectCode(await runCli(h, ['ssh', 'web1']), 2, 'ssh with no VM ID');
  });

  h.test('scp of 100 MiB through the bastion, both ways byte-exact (sha256)', { timeout: 300000 }, async () => {
    const src = path.join(share, 'big.bin');
    const up = path.join(share, 'up.bin');
    const back = path.join(h.dir, 'back.bin');
    const t0 = Date.now();
    let r = await spawnP('scp', ['-q', ...sshOpts().filter((a) => a !== '-l' && a !== h.user.name), ...proxyOpts(),
      src, `${h.user.name}@vm-main:${up}`], { timeoutMs: 240000 }).done;
    assert.equal(r.code, 0, r.stderr);
    const upMs = Date.now() - t0;
    r = await spawnP('scp', ['-q', ...sshOpts().filter((a) => a !== '-l' && a !== h.user.name), ...proxyOpts(),
      `${h.user.name}@vm-main:${up}`, back], { timeoutMs: 240000 }).done;
    assert.equal(r.code, 0, r.stderr);
    const want = sha256(src);
    assert.equal(sha256(up), want, 'the VM received the same bytes');
    assert.equal(sha256(back), want, 'and sent them back unchanged');
    process.stderr.write(`[native] scp 100 MiB up: ${upMs} ms (${(100 / (upMs / 1000)).toFixed(1)} MiB/s)\n`);
    fs.rmSync(back, { force: true });
    fs.rmSync(up, { force: true });
  });

  h.test('sftp put and get through bastion proxy', async () => {
    const local = path.join(h.dir, 'sftp-src.bin');
    const got = path.join(h.dir, 'sftp-got.bin');
    fs.writeFileSync(local, crypto.randomBytes(3 * 1024 * 1024 + 17));
    const remote = path.join(share, 'sftp.bin');
    const batch = `put ${local} ${remote}\nget ${remote} ${got}\n`;
    const r = await spawnP('sftp', ['-q', '-b', '-', ...sshOpts().filter((a) => a !== '-l' && a !== h.user.name),
      ...proxyOpts(), `${h.user.name}@vm-main`], { input: batch }).done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(sha256(remote), sha256(local));
    assert.equal(sha256(got), sha256(local));
  });

  h.test('ssh -L through bastion ssh carries HTTP to a server on the VM', async () => {
    const lport = await freePort();
    const p = spawnP(BASTION_BIN, ['ssh', VM(), '--', ...sshOpts(), '-N', '-o', 'ExitOnForwardFailure=yes',
      '-L', `127.0.0.1:${lport}:${h.net.addr(2)}:${httpPort}`]);
    try {
      const res = await waitFor(async () => {
        try { return await httpGet(lport); } catch { return null; }
      }, { timeoutMs: 20000, what: 'the forward answers' });
      assert.equal(res.status, 200);
      assert.equal(res.body, 'hello through the bastion\n');
    } finally {
      process.kill(p.pid, 'SIGTERM');
      await p.done;
    }
  });

  h.test('bastion tunnel: 20 connections at once, each its own stream; listed as tunnels; Ctrl-C closes', async () => {
    const lport = await freePort();
    const p = spawnP(BASTION_BIN, ['tunnel', VM(), '--port', String(httpPort), '--local-port', String(lport)]);
    try {
      await waitFor(async () => {
        try { return (await httpGet(lport)).status === 200; } catch { return false; }
      }, { timeoutMs: 20000, what: 'the tunnel answers' });
      const all = await Promise.all(Array.from({ length: 20 }, () => httpGet(lport)));
      for (const res of all) {
        assert.equal(res.status, 200);
        assert.equal(res.body, 'hello through the bastion\n');
      }
      // Connections held open show up as sessions of kind tunnel.
      const held = await Promise.all(Array.from({ length: 3 }, () => new Promise((resolve, reject) => {
        const s = nodeNet.connect({ host: '127.0.0.1', port: lport }, () => resolve(s));
        s.on('error', reject);
      })));
      const list = await waitFor(async () => {
        const r = await h.admin.get('/sessions');
        const tunnels = (r.json.value || []).filter((x) => x.kind === 'tunnel');
        return tunnels.length >= 3 ? tunnels : null;
      }, { timeoutMs: 10000, what: 'three tunnels listed' });
      for (const t of list) {
        assert.equal(t.vm, VM());
        assert.equal(t.target, `${h.net.addr(2)}:${httpPort}`);
        assert.equal(t.user, 'admin');
      }
      const metrics = await h.admin.get('/metrics');
      assert.match(metrics.text, /^bastion_tunnels_active [1-9]/m);
      assert.match(metrics.text, /^bastion_tunnel_bytes_total\{direction="from_vm"\} [1-9]/m);
      for (const s of held) s.destroy();
    } finally {
      process.kill(p.pid, 'SIGINT');
    }
    const r = await p.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /tunnel closed/);
    // every stream ended with the tunnel: none listed, the gauge back to 0
    await waitFor(async () => {
      const list = await h.admin.get('/sessions');
      const m = await h.admin.get('/metrics');
      return !(list.json.value || []).some((x) => x.kind === 'tunnel') && /^bastion_tunnels_active 0$/m.test(m.text);
    }, { timeoutMs: 10000, what: 'no tunnel left after Ctrl-C' });
  });

  h.test('rows 3-6 answer as connect does: Reader on the VM but not its NIC -> the same 403', async () => {
    const u = await h.newUser('native-reader');
    expectStatus(await h.admin.put('/role-assignments/native-r1', { principal: 'user:native-reader', role: 'Reader', scope: VM() }), 201);
    const tok = await u.c.post('/tokens', {});
    expectStatus(tok, 201);
    h.secrets.add(tok.json.token, 'reader token');
    const viaConnect = await connect(u.c, G, 'vm-main', { bastion: ids.bastion(G, 'b1'), username: 'x', auth: keyAuth(h.keys.ed25519.private) });
    expectError(viaConnect, 403, 'AuthorizationFailed');
    const s = await rawStream(`/groups/${G}/vms/vm-main/stream`, { token: tok.json.token });
    assert.equal(s.status, 403);
    const body = await errorBody(s);
    assert.deepEqual(body, viaConnect.json, 'the same code and message as connect');
    assert.match(body.error.message, /Reader on \/groups\/e2e\/nics\/vm-main-nic is required/);
    // through the CLI: the same message, exit code 1
    const r = await runCli(h, ['proxy', VM()], { env: { BASTION_URL: `https://127.0.0.1:${h.daemon.port}`, BASTION_TOKEN: tok.json.token, BASTION_INSECURE: '1' }, xdg: 'xdg-none' });
    expectCode(r, 1, 'proxy as a Reader of the VM only');
    assert.ok(r.stderr.includes(viaConnect.json.error.message), r.stderr);
  });

  h.test('a port neither ssh_port nor in tunnel_ports -> 403 PortNotAllowed; a bad port -> 400', async () => {
    const r = await runCli(h, ['proxy', VM(), '--port', '5432']);
    expectCode(r, 1, 'proxy to port 5432');
    assert.match(r.stderr, /PortNotAllowed: port 5432/);
    const s = await rawStream(`/groups/${G}/vms/vm-main/stream?port=0`, { token: adminToken });
    assert.equal(s.status, 400);
    assert.equal((await errorBody(s)).error.code, 'InvalidRequest');
    const noWs = await h.admin.get(`/groups/${G}/vms/vm-main/stream`, { bearer: adminToken, cookies: false });
    expectError(noWs, 400, 'InvalidRequest', { messageIncludes: 'bastion.stream.v1' });
    // the refusal is audited like a refused connect
    const audit = await h.admin.get('/audit?action=connect&result=PortNotAllowed');
    assert.ok(audit.json.value.length >= 1, JSON.stringify(audit.json));
  });

  h.test('an admin DELETE /sessions/{id} ends a running scp with a clear message; audited with bytes', { timeout: 120000 }, async () => {
    const p = spawnP('scp', ['-q', '-l', '8000', ...sshOpts().filter((a) => a !== '-l' && a !== h.user.name), ...proxyOpts(),
      path.join(share, 'big.bin'), `${h.user.name}@vm-main:${path.join(share, 'slow.bin')}`]);
    const sess = await waitFor(async () => {
      const r = await h.admin.get('/sessions');
      return (r.json.value || []).find((x) => x.kind === 'tunnel' && x.bytes_to_vm > 100000) || null;
    }, { timeoutMs: 30000, what: 'the scp tunnel is listed and carrying' });
    expectStatus(await h.admin.request('DELETE', `/sessions/${sess.id}`), 204);
    const r = await p.done;
    assert.notEqual(r.code, 0, 'scp failed');
    assert.match(r.stderr, /the session ended: disconnected by admin|SessionEnded: disconnected by admin/, r.stderr);
    const audit = await waitFor(async () => {
      const a = await h.admin.get('/audit?action=session.end');
      return (a.json.value || []).find((x) => JSON.stringify(x.detail || '').includes(sess.id)) || null;
    }, { timeoutMs: 10000, what: 'the end audited' });
    const d = typeof audit.detail === 'string' ? JSON.parse(audit.detail) : audit.detail;
    assert.equal(d.kind, 'tunnel');
    assert.equal(d.reason, 'disconnected by admin');
    assert.ok(d.bytes_to_vm > 100000, JSON.stringify(d));
    fs.rmSync(path.join(share, 'slow.bin'), { force: true });
  });

  h.test('a client that stops reading does not grow the bastion\'s memory (back-pressure)', { timeout: 120000 }, async () => {
    const pid = h.daemon.pid;
    const s = await rawStream(`/groups/${G}/vms/vm-main/stream?port=${httpPort}`, { token: adminToken });
    assert.equal(s.status, 101, s.head);
    const before = rssKiB(pid);
    s.socket.pause(); // read nothing from now on
    s.socket.write(frame(Buffer.from('GET /big.bin HTTP/1.0\r\n\r\n')));
    await sleep(4000);
    const mid = rssKiB(pid);
    await sleep(4000);
    const after2 = rssKiB(pid);
    const grew = after2 - before;
    process.stderr.write(`[native] slow reader: RSS ${before} -> ${mid} -> ${after2} KiB (+${grew} KiB while 100 MiB wait on the VM)\n`);
    assert.ok(grew < 24 * 1024, `RSS grew by ${grew} KiB`);
    // reading again, the bytes still flow: the stream was paused, not broken
    let got = s.rest.length;
    s.socket.on('data', (d) => { got += d.length; });
    s.socket.resume();
    await waitFor(() => got > 8 * 1024 * 1024, { timeoutMs: 30000, what: 'the stream resumes' });
    s.socket.destroy();
  });

  h.test('a VM that stops reading does not grow the bastion\'s memory either (the client is held back)', { timeout: 120000 }, async () => {
    const pid = h.daemon.pid;
    const s = await rawStream(`/groups/${G}/vms/vm-main/stream?port=${deafPort}`, { token: adminToken });
    assert.equal(s.status, 101, s.head);
    const before = rssKiB(pid);
    const chunk = crypto.randomBytes(60000);
    let sent = 0;
    // Offer 64 MiB; node buffers what the socket does not take.
    for (let i = 0; i < 1100; i++) { s.socket.write(frame(chunk)); sent += chunk.length; }
    await sleep(6000);
    const after2 = rssKiB(pid);
    const grew = after2 - before;
    process.stderr.write(`[native] deaf VM: RSS ${before} -> ${after2} KiB (+${grew} KiB with ${sent >> 20} MiB offered)\n`);
    assert.ok(grew < 24 * 1024, `RSS grew by ${grew} KiB`);
    assert.ok(s.socket.writableLength > 16 * 1024 * 1024, `the client was held back (${s.socket.writableLength} bytes still queued)`);
    s.socket.destroy();
    // While its input is paused the bastion does not read the client's
    // socket, so it learns of the close only once the VM reads again, or at
    // the idle timeout: end the tunnel here rather than wait for either.
    const mine = ((await h.admin.get('/sessions')).json.value || [])
      .filter((x) => x.kind === 'tunnel' && x.target.endsWith(`:${deafPort}`));
    for (const x of mine) expectStatus(await h.admin.request('DELETE', `/sessions/${x.id}`), [204, 404]);
  });

  h.test('the portal\'s Sessions page shows a tunnel as such, and its Disconnect ends it', { timeout: 120000 }, async () => {
    const listed = async () => ((await h.admin.get('/sessions')).json.value || []).filter((x) => x.kind === 'tunnel');
    const before = new Set((await listed()).map((x) => x.id));
    const s = await rawStream(`/groups/${G}/vms/vm-main/stream?port=${httpPort}`, { token: adminToken });
    assert.equal(s.status, 101, s.head);
    const id = (await waitFor(async () => (await listed()).find((x) => !before.has(x.id)),
      { what: 'the new tunnel listed' })).id;
    const frames = readFrames(s, 60000);
    const browser = await launch();
    try {
      const { context, rec } = await newContext(browser, h);
      const page = await context.newPage();
      await signIn(page, h, 'admin', h.daemon.adminPassword);
      await page.goto(`${h.daemon.origin}/#/sessions`, { waitUntil: 'domcontentloaded' });
      const btn = page.locator(`#sessions-table button[data-session="${id}"]`);
      await btn.waitFor({ state: 'visible' });
      const row = page.locator('#sessions-table tr', { has: page.locator(`button[data-session="${id}"]`) });
      assert.match(await row.innerText(), /\btunnel\b/);
      await btn.click();
      await page.click('#confirm-ok');
      const f = await frames;
      const closed = f.texts.find((x) => x.type === 'closed');
      assert.match(closed && closed.reason, /^disconnected by admin$/, JSON.stringify(f.texts));
      assert.deepEqual(rec.errors, []);
      assert.deepEqual(rec.csp, []);
    } finally {
      await browser.close();
    }
  });

  h.test('stream open time over 50 opens on open TLS connections (printed, not asserted)', async () => {
    const times = [];
    for (let i = 0; i < 50; i++) {
      const s = await rawStream(`/groups/${G}/vms/vm-main/stream`, { token: adminToken });
      assert.equal(s.status, 101, s.head);
      times.push(s.ms);
      s.socket.destroy();
    }
    times.sort((a, b) => a - b);
    const p50 = times[24]; const p99 = times[49];
    process.stderr.write(`[native] stream open: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (n=50)\n`);
    assert.ok(isAlive(h.daemon.pid));
  });

  h.test('no secret leaked', () => h.assertNoLeaks());
  h.testCleanExit();
});

// Tunnels under the session limits, with a daemon of their own.
const h2 = fileHarness({
  label: 'native-limits', block: 36, net: true,
  daemonOpts: { env: { BASTION_IDLE_TIMEOUT: '3s', BASTION_IDLE_WARNING: '1s', BASTION_MAX_SESSIONS_PER_USER: '2' } },
});

describe('native client: tunnels under the session limits', () => {
  let token;
  before(async () => {
    await h2.up();
    const sshd = await h2.sshd({ name: 'lim', port: 22, addrs: [h2.net.addr(2)] });
    await createTopology(h2.admin, { group: G, network: 'n1', prefix: h2.net.prefix, bastion: 'b1' });
    await addVm(h2.admin, { group: G, name: 'vm-main', ip: h2.net.addr(2), port: sshd.port });
    const t = await h2.admin.post('/tokens', {});
    expectStatus(t, 201);
    token = t.json.token;
    h2.secrets.add(token, 'admin token');
  }, { timeout: 120000 });
  after(() => h2.down(), { timeout: 60000 });

  h2.test('the idle timeout ends a silent tunnel: a warning, then closed with the reason', { timeout: 30000 }, async () => {
    const s = await rawStream(`/groups/${G}/vms/vm-main/stream`, { token, hh: h2 });
    assert.equal(s.status, 101, s.head);
    const t0 = Date.now();
    const f = await readFrames(s);
    const ms = Date.now() - t0;
    assert.ok(f.binary > 0, 'the VM\'s SSH banner came through');
    const warning = f.texts.find((x) => x.type === 'warning');
    assert.ok(warning && warning.closes_in_s >= 1, JSON.stringify(f.texts));
    const closed = f.texts.find((x) => x.type === 'closed');
    assert.match(closed.reason, /^idle timeout: no input for 3 s$/, JSON.stringify(f.texts));
    assert.equal(f.closeCode, 1000);
    assert.ok(ms >= 2500 && ms < 15000, `closed after ${ms} ms`);
  });

  h2.test('tunnels count in the per-user limit: the third at once -> 429 TooManySessions', { timeout: 30000 }, async () => {
    const a = await rawStream(`/groups/${G}/vms/vm-main/stream`, { token, hh: h2 });
    const b = await rawStream(`/groups/${G}/vms/vm-main/stream`, { token, hh: h2 });
    assert.equal(a.status, 101);
    assert.equal(b.status, 101);
    const c = await rawStream(`/groups/${G}/vms/vm-main/stream`, { token, hh: h2 });
    assert.equal(c.status, 429);
    assert.equal((await errorBody(c)).error.code, 'TooManySessions');
    a.socket.destroy();
    b.socket.destroy();
    // once they are gone, a new one opens
    await waitFor(async () => {
      const d = await rawStream(`/groups/${G}/vms/vm-main/stream`, { token, hh: h2 });
      d.socket.destroy();
      return d.status === 101;
    }, { timeoutMs: 10000, what: 'a stream opens again' });
  });

  h2.test('no secret leaked', () => h2.assertNoLeaks());
  h2.testCleanExit();
});
