// Self-check of the test harness itself (no daemon needed): the test
// network, the stock sshd "VMs", the test user and every key format, checked
// with OpenSSH's own client. When a daemon test fails, this file tells
// whether the harness or the daemon is at fault.
//   node --test harness.test.mjs
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileHarness } from './lib/harness.mjs';
import { run, probeTcp, waitFor } from './lib/util.mjs';
import net from 'node:net';

const h = fileHarness({ label: 'harness', block: 10, net: true, daemon: false, keys: true });
let main; let noTty; let askpass;

function sshArgs(sshd, { key, knownHosts, strict = 'no', batch = true, tty = false, prefer }) {
  const args = ['-F', '/dev/null', '-o', `UserKnownHostsFile=${knownHosts || '/dev/null'}`,
    '-o', `StrictHostKeyChecking=${strict}`, '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR',
    '-o', 'NumberOfPasswordPrompts=1', '-p', String(sshd.port)];
  if (key) args.push('-i', key.file, '-o', 'IdentitiesOnly=yes');
  if (batch) args.push('-o', 'BatchMode=yes');
  if (prefer) args.push('-o', `PreferredAuthentications=${prefer}`);
  args.push(tty ? '-tt' : '-T');
  args.push(`${h.user.name}@${sshd.addr}`);
  return args;
}

function ssh(args, { secret } = {}) {
  const env = { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', E2E_ASKPASS_SECRET: secret || '' };
  return run('ssh', args, { allowFail: true, timeoutMs: 20000, env });
}

describe('harness self-check (netns + sshd + keys, no daemon)', () => {
  before(async () => {
    await h.up();
    askpass = path.join(h.dir, 'askpass.sh');
    fs.writeFileSync(askpass, '#!/bin/sh\nprintf \'%s\\n\' "$E2E_ASKPASS_SECRET"\n', { mode: 0o700 });
    main = await h.sshd({ port: 22, name: 'main', addrs: [h.net.addr(2), h.net.addr(6)] });
    noTty = await h.sshd({ port: 2222, name: 'notty', addrs: [h.net.addr(3)], permitTTY: false });
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('network layout', async () => {
    if (h.net.mode === 'netns') {
      assert.match(h.net.vmAddr, /^198\.18\.\d+\.2$/);
      assert.equal(h.net.prefix, `198.18.${h.net.x}.0/24`);
    } else {
      assert.equal(h.net.prefix, '127.0.0.0/8');
    }
    assert.ok(await probeTcp(main.addr, main.port, { banner: 'SSH-2.0-' }), 'main sshd answers');
    assert.ok(await probeTcp(h.net.addr(6), main.port, { banner: 'SSH-2.0-' }), 'main sshd answers on its second address');
    assert.ok(await probeTcp(noTty.addr, noTty.port, { banner: 'SSH-2.0-' }), 'no-tty sshd answers');
  });

  for (const spec of ['ed25519-openssh', 'ed25519-openssh-pass', 'ecdsa-openssh', 'ecdsa-openssh-pass', 'rsa-openssh',
    'rsa-openssh-pass', 'rsa-pem', 'rsa-pem-pass', 'rsa-pkcs8', 'rsa-pkcs8-pass', 'ecdsa-pkcs8']) {
    h.test(`key ${spec} logs in with the OpenSSH client`, async () => {
      const key = h.keys[spec];
      const r = await ssh([...sshArgs(main, { key, batch: !key.passphrase, prefer: 'publickey' }), 'echo ok-$((40+2))'],
        { secret: key.passphrase });
      assert.equal(r.code, 0, `ssh failed: ${r.stderr}`);
      assert.equal(r.stdout.trim(), 'ok-42');
    });
  }

  h.test('password authentication of the test user', async (t) => {
    if (!h.user.password) { t.skip('not root: no password for the current user'); return; }
    const r = await ssh([...sshArgs(main, { batch: false, prefer: 'password' }), 'id -un'], { secret: h.user.password });
    assert.equal(r.code, 0, `ssh failed: ${r.stderr}`);
    assert.equal(r.stdout.trim(), h.user.name);
    const bad = await ssh([...sshArgs(main, { batch: false, prefer: 'password' }), 'true'], { secret: 'wrong-password-123' });
    assert.notEqual(bad.code, 0);
  });

  h.test('known_hosts line of the host key verifies (and a new host key does not)', async () => {
    const kh = path.join(h.dir, 'known_hosts');
    fs.writeFileSync(kh, `${main.knownHostsLine()}\n`);
    const key = h.keys['ed25519-openssh'];
    const ok = await ssh([...sshArgs(main, { key, knownHosts: kh, strict: 'yes' }), 'true']);
    assert.equal(ok.code, 0, `strict host key check failed: ${ok.stderr}`);
    const oldLine = main.knownHostsLine();
    await main.restart({ newHostKey: true });
    assert.notEqual(main.knownHostsLine(), oldLine, 'host key changed');
    const bad = await ssh([...sshArgs(main, { key, knownHosts: kh, strict: 'yes' }), 'true']);
    assert.notEqual(bad.code, 0, 'old known_hosts must no longer match');
    assert.match(bad.stderr, /host key|HOST IDENTIFICATION/i);
  });

  h.test('PermitTTY no: PTY request is refused', async () => {
    const key = h.keys['ed25519-openssh'];
    const r = await ssh([...sshArgs(noTty, { key, tty: true }), 'true']);
    assert.match(r.stderr, /PTY allocation request failed/i);
  });

  h.test('closed port refuses at once; the silent address does not answer', async (t) => {
    const closed = await h.net.closedTarget();
    const t0 = Date.now();
    assert.equal(await probeTcp(closed.ip, closed.port, { timeoutMs: 3000 }), false);
    assert.ok(Date.now() - t0 < 1000, 'refused quickly');
    if (!h.net.silentAddr) { t.skip('loopback fallback: no silent address'); return; }
    const err = await new Promise((resolve) => {
      const s = net.connect({ host: h.net.silentAddr, port: 22 });
      const timer = setTimeout(() => { s.destroy(); resolve('timeout'); }, 4000);
      s.on('connect', () => { clearTimeout(timer); s.destroy(); resolve('connected'); });
      s.on('error', (e) => { clearTimeout(timer); resolve(e.code); });
    });
    assert.notEqual(err, 'connected');
  });

  h.test('killing the sshd children ends a live connection', async () => {
    const key = h.keys['ed25519-openssh'];
    const child = spawn('ssh', [...sshArgs(main, { key }), 'echo started; sleep 30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(() => out.includes('started'), { timeoutMs: 10000, what: 'remote command started' });
      const killed = main.killSessions();
      assert.ok(killed.length > 0, 'found sshd session processes');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 8000))]);
      assert.notEqual(code, 'timeout', 'ssh client noticed the dead VM');
      assert.notEqual(code, 0);
      assert.ok(main.pid && (await probeTcp(main.addr, main.port, { banner: 'SSH-2.0-' })), 'sshd itself still serves');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
