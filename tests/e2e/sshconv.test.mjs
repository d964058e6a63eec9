// The SSH conversation with real fleets (issue 12 items 4, 11, 5, 3): the
// pre-login banner at the top of the terminal, LANG for the shell, the
// errors a handshake refusal or an odd username gives, and keyboard-
// interactive prompts.
//
// Topology (netns mode; loopback fallback uses 127.0.X.n and free ports):
//   .2 : sshd "banner" with Banner FILE and AcceptEnv LANG LC_*
//   .3 : sshd "plain" (stock test config: no Banner, no AcceptEnv)
//   .4 : sshd "legacy": KexAlgorithms diffie-hellman-group14-sha1 only
//   .5 : sshd "legacyhk": HostKeyAlgorithms ssh-rsa only (an RSA host key)
//   .6 : sshd "sha1sig": PubkeyAcceptedAlgorithms ssh-rsa (SHA-1 signatures only)
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
import { run } from './lib/util.mjs';

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
});
