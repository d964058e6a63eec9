// The SSH conversation with real fleets (issue 12 items 4, 11, 5, 3): the
// pre-login banner at the top of the terminal, LANG for the shell, the
// errors a handshake refusal or an odd username gives, and keyboard-
// interactive prompts.
//
// Topology (netns mode; loopback fallback uses 127.0.X.n and free ports):
//   .2 : sshd "banner" with Banner FILE and AcceptEnv LANG LC_*
//   .3 : sshd "plain" (stock test config: no Banner, no AcceptEnv)
//   .4 : sshd "legacykex": KexAlgorithms diffie-hellman-group14-sha1 only
//   .6 : sshd "legacyhk": HostKeyAlgorithms ssh-rsa only (an RSA host key)
//   .7 : sshd "longbanner": a 20 KiB Banner
//   .8 : sshd "sha1sig": PubkeyAcceptedAlgorithms ssh-rsa (SHA-1 signatures only)
// Keyboard-interactive (root only: PAM, users), each on its own port of .2:
//   sshd "totp"   : UsePAM, its own PAM service (a symlinked sshd named
//                   bastion-e2e-totp-PID): pam_unix, then pam_google_authenticator
//   sshd "expired": UsePAM with Debian's own sshd PAM stack, user
//                   bste2eexpPID whose password must change (chage -d 0)
//   sshd "twostep": AuthenticationMethods publickey,password
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import {
  expectError, expectSession, createTopology, addVm, connect, keyAuth, putOk, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { generateKey } from './lib/sshd.mjs';
import crypto from 'node:crypto';
import { run, isRoot, randomString } from './lib/util.mjs';
import { SSHD } from './lib/sshd.mjs';
import { launch, newContext, waitForShell, run as runInTerm, signIn } from './lib/browser.mjs';

const h = fileHarness({
  label: 'sshconv', block: 230, net: true,
  keys: [{ id: 'ed25519-openssh', type: 'ed25519', begin: 'BEGIN OPENSSH PRIVATE KEY' },
    { id: 'rsa-openssh', type: 'rsa', begin: 'BEGIN OPENSSH PRIVATE KEY' }],
});
const G = 'e2e';

// A banner as CIS benchmarks want it: several lines, LF line ends, UTF-8,
// and an escape sequence that must not reach the terminal.
const BANNER_LINES = [
  '*** AUTHORIZED USE ONLY — Zugriff nur für Befugte ***',
  'All activity on this system is monitored and recorded.',
  'Disconnect IMMEDIATELY if you are not an authorized user.',
];
const BANNER_TEXT = `${BANNER_LINES.join('\n')}\n\x1b[2J`;

function body(over = {}) {
  return {
    bastion: ids.bastion(G, 'b1'),
    username: h.user.name,
    auth: keyAuth(h.keys['ed25519-openssh'].private),
    cols: 100,
    rows: 30,
    ...over,
  };
}

async function openTerm(vm, over = {}) {
  const s = expectSession(await connect(h.admin, G, vm, body(over)), vm);
  const a = await attach(h.daemon, h.admin, s.terminal);
  assert.ok(a.ok, `attach refused: ${a.status} ${a.body}`);
  return a.term;
}

describe('sshconv', () => {
  before(async () => {
    await h.up();
    const net = h.net;
    const bannerFile = path.join(h.dir, 'banner.txt');
    fs.writeFileSync(bannerFile, BANNER_TEXT, { mode: 0o644 });
    await h.sshd({ name: 'banner', addrs: [net.addr(2)], extraConfig: [`Banner ${bannerFile}`, 'AcceptEnv LANG LC_*'] });
    await h.sshd({ name: 'plain', addrs: [net.addr(3)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: net.prefix, bastion: 'b1' });
    const port = (name) => h.sshds.find((s) => s.name === name).port;
    await addVm(h.admin, { group: G, name: 'vm-banner', ip: net.addr(2), port: port('banner') });
    await addVm(h.admin, { group: G, name: 'vm-plain', ip: net.addr(3), port: port('plain') });
    await h.sshd({ name: 'legacykex', addrs: [net.addr(4)], extraConfig: ['KexAlgorithms diffie-hellman-group14-sha1'] });
    const rsaHostKey = path.join(h.dir, 'legacyhk_host_rsa_key');
    await run('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', rsaHostKey]);
    await h.sshd({ name: 'legacyhk', addrs: [net.addr(6)], extraConfig: [`HostKey ${rsaHostKey}`, 'HostKeyAlgorithms ssh-rsa'] });
    await h.sshd({ name: 'sha1sig', addrs: [net.addr(8)], extraConfig: ['PubkeyAcceptedAlgorithms ssh-rsa'] });
    await addVm(h.admin, { group: G, name: 'vm-legacykex', ip: net.addr(4), port: port('legacykex') });
    await addVm(h.admin, { group: G, name: 'vm-legacyhk', ip: net.addr(6), port: port('legacyhk') });
    await addVm(h.admin, { group: G, name: 'vm-sha1sig', ip: net.addr(8), port: port('sha1sig') });
  }, { timeout: 180000 });
  after(() => h.down(), { timeout: 60000 });

  // ---- item 4: the banner ----------------------------------------------------
  h.test('banner: the VM\'s Banner is the first thing the terminal receives, CRLF, without escapes', async () => {
    const term = await openTerm('vm-banner');
    try {
      const expected = Buffer.from(`${BANNER_LINES.join('\r\n')}\r\n`);
      await term.until(() => term.length >= expected.length, 15000, 'the banner');
      assert.deepEqual(term.output().subarray(0, expected.length).toString('utf8'), expected.toString('utf8'),
        'the first bytes are the banner, each line ending CRLF');
      assert.ok(!term.output().includes(Buffer.from('\x1b[2J')), 'the banner\'s escape sequence was dropped');
      const from = term.length;
      term.send('echo AFTER$((40+2))\r');
      await term.waitForOutput('AFTER42', { from, timeoutMs: 15000 });
      // Once only: the banner is not repeated later in the stream.
      assert.equal(term.text().split(BANNER_LINES[1]).length - 1, 1, 'the banner appears once');
    } finally {
      term.close();
    }
  });

  h.test('banner: a VM without a Banner starts with the shell\'s own output', async () => {
    const term = await openTerm('vm-plain');
    try {
      term.send('echo PLAIN$((40+2))\r');
      await term.waitForOutput('PLAIN42', { timeoutMs: 15000 });
      assert.ok(!term.text().includes('AUTHORIZED USE ONLY'));
    } finally {
      term.close();
    }
  });

  h.test('banner: an 8 KiB cap, cut at a character boundary with a note', { timeout: 60000 }, async () => {
    // 20 KiB of multi-byte text: the cut lands inside the text, never inside a character.
    const file = path.join(h.dir, 'banner-long.txt');
    const line = 'ÄÖÜ long legal notice line äöü 漢字\n';
    fs.writeFileSync(file, line.repeat(Math.ceil(20480 / Buffer.byteLength(line))), { mode: 0o644 });
    const s = await h.sshd({ name: 'longbanner', addrs: [h.net.addr(7)], extraConfig: [`Banner ${file}`] });
    await addVm(h.admin, { group: G, name: 'vm-longbanner', ip: h.net.addr(7), port: s.port });
    const term = await openTerm('vm-longbanner');
    try {
      const note = await term.waitForOutput('banner was longer than 8 KiB', { timeoutMs: 15000 });
      const head = term.output().subarray(0, note.end);
      assert.ok(note.end <= 8192, `the banner took ${note.end} bytes`);
      assert.ok(!head.toString('utf8').includes('\ufffd'), 'no character was cut in two');
      assert.ok(head.toString('utf8').startsWith(line.trimEnd()));
    } finally {
      term.close();
    }
  });

  // ---- item 11: LANG -----------------------------------------------------------
  h.test('LANG: the shell gets LANG=C.UTF-8 and typed non-ASCII arrives intact', async () => {
    const term = await openTerm('vm-banner');
    try {
      let from = term.length;
      term.send('echo "L=[$LANG]"\r');
      await term.waitForOutput('L=[C.UTF-8]', { from, timeoutMs: 15000 });
      // Typed, not pasted: each character in its own frame, as keystrokes come.
      from = term.length;
      for (const ch of 'printf %s a漢字ü€b | od -An -tx1') term.send(ch);
      term.send('\r');
      await term.waitForOutput('61 e6 bc a2 e5 ad 97 c3 bc e2 82 ac 62', { from, timeoutMs: 15000 });
    } finally {
      term.close();
    }
  });

  h.test('LANG: a VM that refuses the env request still gives a shell', async () => {
    const term = await openTerm('vm-plain');
    try {
      term.send('echo "L=[$LANG]" OK$((1+1))\r');
      await term.waitForOutput('OK2', { timeoutMs: 15000 });
      assert.ok(!term.text().includes('L=[C.UTF-8]'), 'plain sshd has no AcceptEnv');
    } finally {
      term.close();
    }
  });

  // ---- item 5: handshake refusals, SHA-1 signatures, user names ---------------
  // Every name in a message is whole: each comma- or space-separated token that
  // looks like an algorithm is one that exists.
  const assertWholeNames = (msg, names) => {
    for (const n of names) assert.ok(msg.includes(n), `message names ${n}: ${msg}`);
    assert.doesNotMatch(msg, /(server|client) \[|kex-strict|ext-info/, `no raw libssh lists: ${msg}`);
  };

  const setLegacy = async (vm, ip, port, algos) => {
    const nic = ids.nic(G, `${vm}-nic`);
    const body = { nic, ssh_port: port };
    if (algos) body.ssh_legacy_algorithms = algos;
    return putOk(h.admin, ids.vm(G, vm), body);
  };
  const portOf = (name) => h.sshds.find((s) => s.name === name).port;

  h.test('handshake: a key-exchange mismatch -> 502 SshHandshakeFailed naming both sides; allowing it by name works', async () => {
    const res = await connect(h.admin, G, 'vm-legacykex', body());
    expectError(res, 502, 'SshHandshakeFailed');
    const msg = res.json.error.message;
    assertWholeNames(msg, ['key-exchange', 'diffie-hellman-group14-sha1', 'curve25519-sha256', 'ssh_legacy_algorithms']);
    await setLegacy('vm-legacykex', h.net.addr(4), portOf('legacykex'), ['diffie-hellman-group14-sha1']);
    const term = await openTerm('vm-legacykex');
    try {
      term.send('echo KEX$((40+2))\r');
      await term.waitForOutput('KEX42', { timeoutMs: 15000 });
    } finally {
      term.close();
    }
    await setLegacy('vm-legacykex', h.net.addr(4), portOf('legacykex'), null);
    expectError(await connect(h.admin, G, 'vm-legacykex', body()), 502, 'SshHandshakeFailed');
  });

  h.test('handshake: a host-key algorithm mismatch (ssh-rsa only) -> 502 SshHandshakeFailed; allowing ssh-rsa works', async () => {
    const res = await connect(h.admin, G, 'vm-legacyhk', body());
    expectError(res, 502, 'SshHandshakeFailed');
    assertWholeNames(res.json.error.message, ['host key algorithm', 'ssh-rsa', 'ssh-ed25519', '"ssh-rsa"']);
    await setLegacy('vm-legacyhk', h.net.addr(6), portOf('legacyhk'), ['ssh-rsa']);
    const term = await openTerm('vm-legacyhk');
    try {
      term.send('echo HK$((40+2))\r');
      await term.waitForOutput('HK42', { timeoutMs: 15000 });
    } finally {
      term.close();
    }
  });

  h.test('signatures: an RSA key at a VM that takes only ssh-rsa (SHA-1) says so; allowing ssh-rsa works', async () => {
    const rsa = keyAuth(h.keys['rsa-openssh'].private);
    const res = await connect(h.admin, G, 'vm-sha1sig', body({ auth: rsa }));
    expectError(res, 401, 'SshAuthenticationFailed');
    const msg = res.json.error.message;
    assert.doesNotMatch(msg, /offers: none/);
    assertWholeNames(msg, ['RSA key', 'SHA-1 ssh-rsa', 'ssh_legacy_algorithms']);
    await setLegacy('vm-sha1sig', h.net.addr(8), portOf('sha1sig'), ['ssh-rsa']);
    const term = await openTerm('vm-sha1sig', { auth: rsa });
    try {
      term.send('echo SIG$((40+2))\r');
      await term.waitForOutput('SIG42', { timeoutMs: 15000 });
    } finally {
      term.close();
    }
  });

  h.test('ssh_legacy_algorithms: validated against the allowlist, normalised, absent by default', async () => {
    const nic = ids.nic(G, 'vm-plain-nic');
    const put = (v) => h.admin.request('PUT', ids.vm(G, 'vm-val'), { body: { nic, ssh_port: 22, ssh_legacy_algorithms: v } });
    for (const bad of [['hmac-md5'], ['ssh-dss'], ['curve25519-sha256'], 'ssh-rsa', [42], ['ssh-rsa', 'ssh-rsa'], [''],
      [`ssh-rsa${'x'.repeat(100)}`]]) {
      expectError(await put(bad), 400, 'InvalidRequest', { messageIncludes: 'ssh_legacy_algorithms', what: JSON.stringify(bad) });
    }
    const ok = await put(['ssh-rsa', 'aes128-cbc', 'hmac-sha1', 'diffie-hellman-group1-sha1']);
    assert.ok([200, 201].includes(ok.status), ok.text);
    assert.deepEqual(ok.json.ssh_legacy_algorithms, ['ssh-rsa', 'aes128-cbc', 'hmac-sha1', 'diffie-hellman-group1-sha1']);
    const plain = await h.admin.request('GET', ids.vm(G, 'vm-plain'));
    assert.deepEqual(plain.json.ssh_legacy_algorithms, []);
  });

  h.test('usernames: names libssh refuses (CORP\\user, o\'brien, a,b) reach the VM\'s sshd as typed', async () => {
    const log = () => fs.readFileSync(h.sshds.find((s) => s.name === 'plain').logFile, 'utf8');
    for (const name of ['CORP\\user', "o'brien", 'first.last@corp.example', 'a,b$c']) {
      const res = await connect(h.admin, G, 'vm-plain', body({ username: name }));
      expectError(res, 401, 'SshAuthenticationFailed', { what: name });
      assert.ok(res.json.error.message.includes(name), `the message names ${name}: ${res.json.error.message}`);
      // sshd's log escapes a backslash as \\ (strnvis).
      assert.ok(log().includes(`Invalid user ${name.replaceAll('\\', '\\\\')} from`), `sshd saw ${name}: ${log().slice(-500)}`);
    }
  });

  h.test('usernames: what no sshd could take -> 400 InvalidRequest naming username', async () => {
    for (const name of ['', 'a b', 'tab\there', 'nl\nx', '-oProxyCommand', 'x'.repeat(65), 'del\x7f', 'a:b', 'a/b']) {
      expectError(await connect(h.admin, G, 'vm-plain', body({ username: name })), 400, 'InvalidRequest',
        { messageIncludes: 'username', what: JSON.stringify(name) });
    }
  });

  // ---- item 3: keyboard-interactive --------------------------------------------
  // RFC 6238 TOTP (HMAC-SHA1, 30 s, 6 digits), as pam_google_authenticator checks it.
  const base32 = (buf) => {
    const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = ''; let out = '';
    for (const b of buf) bits += b.toString(2).padStart(8, '0');
    for (let i = 0; i + 5 <= bits.length; i += 5) out += A[parseInt(bits.slice(i, i + 5), 2)];
    return out;
  };
  const totp = (key, t = Date.now()) => {
    const msg = Buffer.alloc(8);
    msg.writeBigUInt64BE(BigInt(Math.floor(t / 1000 / 30)));
    const mac = crypto.createHmac('sha1', key).update(msg).digest();
    const o = mac[mac.length - 1] & 0xf;
    return String((mac.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
  };

  const pam = { ready: false };
  // Per process: the plain and the sanitized passes run this file side by side.
  const EXP_USER = `bste2eexp${process.pid % 100000}`;
  const answer = (sessionId, answers) => h.admin.post(`/sessions/${sessionId}/answers`, { answers });
  const expectChallenge = (res, what) => {
    assert.equal(res.status, 202, `${what}: expected 202, got ${res.status} ${res.text.slice(0, 400)}`);
    const ch = res.json.challenge;
    assert.ok(ch && typeof ch.id === 'string' && Array.isArray(ch.prompts) && ch.prompts.length > 0, res.text);
    assert.equal(ch.answers, `/api/v1/sessions/${ch.id}/answers`);
    for (const p of ch.prompts) assert.equal(typeof p.echo, 'boolean');
    return ch;
  };
  const shellWorks = async (res, what) => {
    const s = expectSession(res, what);
    const a = await attach(h.daemon, h.admin, s.terminal);
    assert.ok(a.ok);
    try {
      a.term.send('echo KI$((40+2)) $(id -un)\r');
      return (await a.term.waitForOutput('KI42', { timeoutMs: 15000 }), a.term.text());
    } finally {
      a.term.close();
    }
  };

  // The PAM VMs share vm-banner's NIC (one NIC per address), each its own port.
  const addPortVm = (name, port) => putOk(h.admin, ids.vm(G, name), { nic: ids.nic(G, 'vm-banner-nic'), ssh_port: port });
  const pamSetup = () => {
    if (!isRoot) return Promise.resolve(false);
    if (!pam.setup) pam.setup = pamSetupOnce().then(() => true);
    return pam.setup;
  };
  const pamSetupOnce = async () => {
    const pamName = `bastion-e2e-totp-${process.pid}`;
    pam.service = `/etc/pam.d/${pamName}`;
    pam.key = crypto.randomBytes(20);
    h.secrets.add(base32(pam.key), 'TOTP secret');
    const gaDir = path.join(h.dir, 'ga');
    fs.mkdirSync(gaDir, { mode: 0o700 });
    fs.writeFileSync(path.join(gaDir, h.user.name), `${base32(pam.key)}\n" TOTP_AUTH\n`, { mode: 0o400 });
    fs.writeFileSync(pam.service, [
      '# bastion e2e (sshconv.test.mjs): removed by the test',
      'auth required pam_unix.so',
      `auth required pam_google_authenticator.so secret=${gaDir}/\${USER} user=root`,
      'account required pam_unix.so',
      'session required pam_unix.so',
      '',
    ].join('\n'), { mode: 0o644 });
    const bin = path.join(h.dir, pamName);
    fs.symlinkSync(SSHD, bin);
    const net = h.net;
    pam.totp = await h.sshd({ name: 'totp', port: 2201, addrs: [net.addr(2)], binary: bin,
      baseConfig: { usePAM: true, passwordAuthentication: false, kbdInteractive: true } });
    await addPortVm('vm-totp', pam.totp.port);

    // The expired-password user: a fresh password each run, to be changed at once.
    if ((await run('id', ['-u', EXP_USER], { allowFail: true })).code !== 0) {
      await run('useradd', ['-m', '-s', '/bin/bash', EXP_USER]);
    }
    pam.oldPassword = `Old-${randomString(16)}`;
    pam.newPassword = `New-${randomString(16)}`;
    h.secrets.add(pam.oldPassword, 'expired user old password');
    h.secrets.add(pam.newPassword, 'expired user new password');
    await run('chpasswd', [], { input: `${EXP_USER}:${pam.oldPassword}\n` });
    await run('usermod', ['-U', EXP_USER], { allowFail: true });
    await run('chage', ['-d', '0', EXP_USER]);
    pam.expired = await h.sshd({ name: 'expired', port: 2202, addrs: [net.addr(2)], user: EXP_USER,
      baseConfig: { usePAM: true, passwordAuthentication: false, kbdInteractive: true } });
    await addPortVm('vm-expired', pam.expired.port);

    pam.twostep = await h.sshd({ name: 'twostep', port: 2203, addrs: [net.addr(2)],
      extraConfig: ['AuthenticationMethods publickey,password'] });
    await addPortVm('vm-twostep', pam.twostep.port);
  };
  after(async () => {
    if (pam.service) fs.rmSync(pam.service, { force: true });
    if (pam.expired) await run('userdel', ['-r', EXP_USER], { allowFail: true });
  });

  h.test('kbdint: PAM password + TOTP: the password answers "Password:", the code prompt goes to the user', { timeout: 90000 }, async (t) => {
    if (!(await pamSetup())) { t.skip('needs root (PAM, a test user)'); return; }
    const res = await connect(h.admin, G, 'vm-totp', body({ auth: { type: 'password', password: h.user.password } }));
    const ch = expectChallenge(res, 'TOTP');
    assert.equal(ch.prompts.length, 1);
    assert.match(ch.prompts[0].prompt, /Verification code/);
    assert.equal(ch.prompts[0].echo, false);
    assert.equal(ch.round, 1);
    const code = totp(pam.key);
    h.secrets.add(code, 'TOTP code');
    const text = await shellWorks(await answer(ch.id, [code]), 'after the code');
    assert.match(text, new RegExp(`KI42 ${h.user.name}`));
    const log = fs.readFileSync(pam.totp.logFile, 'utf8');
    assert.match(log, /Accepted keyboard-interactive\/pam for bastione2e/);
  });

  h.test('kbdint: a wrong code -> 401 SshAuthenticationFailed; answers are checked and bounded', { timeout: 90000 }, async (t) => {
    if (!(await pamSetup())) { t.skip('needs root'); return; }
    const ch = expectChallenge(await connect(h.admin, G, 'vm-totp', body({ auth: { type: 'password', password: h.user.password } })), 'TOTP');
    // The wrong number of answers, or not strings: 400, and the sign-in still waits.
    expectError(await answer(ch.id, ['1', '2']), 400, 'InvalidRequest', { messageIncludes: 'answers' });
    expectError(await answer(ch.id, [42]), 400, 'InvalidRequest', { messageIncludes: 'answers' });
    expectError(await answer(ch.id, []), 400, 'InvalidRequest', { messageIncludes: 'answers' });
    expectError(await h.admin.post(`/sessions/${ch.id}/answers`, { answers: ['x'], extra: 1 }), 400, 'InvalidRequest');
    // Another user may not answer it.
    await putOk(h.admin, '/users/kbdother', { password: 'Other-password-1234' });
    const other = h.client('other');
    await other.login('kbdother', 'Other-password-1234');
    expectError(await other.post(`/sessions/${ch.id}/answers`, { answers: ['000000'] }), 404, 'ResourceNotFound');
    const wrong = String((Number(totp(pam.key)) + 500000) % 1000000).padStart(6, '0');
    const res = await answer(ch.id, [wrong]);
    // sshd may ask again (PAM retries) or refuse; a wrong code never opens a shell.
    if (res.status === 202) {
      const again = res.json.challenge;
      expectError(await answer(again.id, [wrong]), 401, 'SshAuthenticationFailed');
    } else {
      expectError(res, 401, 'SshAuthenticationFailed');
    }
    expectError(await answer(ch.id, [totp(pam.key)]), 404, 'ResourceNotFound');
    expectError(await answer('no-such-session', ['1']), 404, 'ResourceNotFound');
  });

  h.test('kbdint: an expired password is changed through the prompts, then works', { timeout: 90000 }, async (t) => {
    if (!(await pamSetup())) { t.skip('needs root'); return; }
    let res = await connect(h.admin, G, 'vm-expired', body({ username: EXP_USER, auth: { type: 'password', password: pam.oldPassword } }));
    const seen = [];
    for (let round = 0; round < 6 && res.status === 202; round++) {
      const ch = res.json.challenge;
      const answers = ch.prompts.map((p) => {
        seen.push(p.prompt);
        assert.equal(p.echo, false, `a password prompt hides what is typed: ${p.prompt}`);
        if (/current|old/i.test(p.prompt)) return pam.oldPassword;
        if (/new/i.test(p.prompt)) return pam.newPassword;
        throw new Error(`unexpected prompt ${JSON.stringify(p.prompt)}`);
      });
      res = await answer(ch.id, answers);
    }
    assert.ok(seen.some((p) => /new/i.test(p)), `the VM asked for a new password: ${JSON.stringify(seen)}`);
    await shellWorks(res, 'after the change');
    // The new password is the password now: no question asked.
    await shellWorks(await connect(h.admin, G, 'vm-expired', body({ username: EXP_USER, auth: { type: 'password', password: pam.newPassword } })), 'new password');
  });

  h.test('kbdint: AuthenticationMethods publickey,password: the key, then the password asked for', { timeout: 60000 }, async (t) => {
    if (!(await pamSetup())) { t.skip('needs root'); return; }
    const ch = expectChallenge(await connect(h.admin, G, 'vm-twostep', body()), 'two steps');
    assert.equal(ch.prompts.length, 1);
    assert.match(ch.prompts[0].prompt, /Password/);
    assert.equal(ch.prompts[0].echo, false);
    await shellWorks(await answer(ch.id, [h.user.password]), 'key + password');
    assert.match(fs.readFileSync(pam.twostep.logFile, 'utf8'), /Accepted password for bastione2e/);
    // A password alone cannot start it: the message says to use the key.
    const res = await connect(h.admin, G, 'vm-twostep', body({ auth: { type: 'password', password: h.user.password } }));
    expectError(res, 401, 'SshAuthenticationFailed');
  });

  h.test('portal: the code prompt is a password field in a dialog; the answer opens the terminal', { timeout: 120000 }, async (t) => {
    if (!(await pamSetup())) { t.skip('needs root'); return; }
    const browser = await launch();
    try {
      const { context, rec } = await newContext(browser, h);
      const p = await context.newPage();
      await signIn(p, h, 'admin', h.daemon.adminPassword);
      await p.goto(`${h.daemon.origin}/#/vms/${G}/vm-totp/connect`, { waitUntil: 'domcontentloaded' });
      await p.locator('#connect-username').waitFor();
      await p.fill('#connect-username', h.user.name);
      await p.selectOption('#connect-auth-type', 'password');
      await p.fill('#connect-password', h.user.password);
      await p.click('#connect-submit');
      const input = p.locator('#challenge-answer-0');
      await input.waitFor({ state: 'visible', timeout: 20000 });
      assert.equal(await input.getAttribute('type'), 'password', 'echo off: a password field');
      assert.match(await p.locator('#challenge-dialog label').first().innerText(), /Verification code/);
      const code = totp(pam.key);
      h.secrets.add(code, 'TOTP code');
      await input.fill(code);
      await p.click('#challenge-ok');
      await waitForShell(p);
      await runInTerm(p, 'echo portal-$((40+2))', 'portal-42');
      assert.equal(await p.locator('#challenge-dialog').count(), 0, 'the dialog is gone');
      assert.deepEqual(rec.errors, []);
      assert.deepEqual(rec.csp, []);
      await context.close();
    } finally {
      await browser.close();
    }
  });

  h.test('no password, code, answer or key in any response or log line', async () => {
    h.assertNoLeaks();
  });
});
