// The terminal stream (docs/api.md "The terminal stream"): WebSocket subprotocol bastion.v1, binary
// frames both ways, resize, exit status, 10 MiB byte-exact, the VM dying
// mid-session, who may attach (Origin, owner) and the 30 s attach window,
// flow control from the page (pause / resume).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileHarness } from './lib/harness.mjs';
import { expectSession, expectStatus, createTopology, addVm, connect, keyAuth, ids } from './lib/api.mjs';
import { attach, SUBPROTOCOL } from './lib/term.mjs';
import { rawGet } from './lib/daemon.mjs';
import { sleep, randomString } from './lib/util.mjs';

const h = fileHarness({ label: 'terminal', block: 30, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }] });
const G = 'e2e';
const ATTACH_WINDOW_MS = 30000;
let main; let victim;
let late; // a session created early and never attached: gone after 30 s
let lateCreatedAt = 0;
const OTHER_USER = 'e2eother';
let otherPassword;

function connectBody(over = {}) {
  return {
    bastion: ids.bastion(G, 'b1'),
    username: h.user.name,
    auth: keyAuth(h.keys['ed25519-openssh'].private),
    cols: 120,
    rows: 40,
    ...over,
  };
}

async function newSession(vm = 'vm-main', over = {}) {
  return expectSession(await connect(h.admin, G, vm, connectBody(over)), `connect ${vm}`);
}

// Attach and wait until the shell runs a command.
async function openShell(vm = 'vm-main', over = {}) {
  const s = await newSession(vm, over);
  const a = await attach(h.daemon, h.admin, s.terminal);
  assert.ok(a.ok, `attach refused: ${a.status} ${a.body}`);
  const term = a.term;
  term.send('echo READY$((20+22))\r');
  await term.waitForOutput('READY42', { timeoutMs: 15000 });
  return { session: s, term };
}

// The exact bytes `seq 1 n` prints through a PTY (onlcr: "\n" -> "\r\n").
function seqBytes(n) {
  const parts = [];
  let size = 0;
  for (let i = 1; i <= n; i++) {
    const line = `${i}\r\n`;
    parts.push(line);
    size += line.length;
  }
  return { buf: Buffer.from(parts.join(''), 'latin1'), size };
}

describe('terminal', () => {
  before(async () => {
    await h.up();
    main = await h.sshd({ name: 'main', port: 22, addrs: [h.net.addr(2)] });
    victim = await h.sshd({ name: 'victim', port: 22, addrs: [h.net.addr(3)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm-main', ip: h.net.addr(2), port: main.port });
    await addVm(h.admin, { group: G, name: 'vm-victim', ip: h.net.addr(3), port: victim.port });
    late = await newSession();
    lateCreatedAt = Date.now();
    otherPassword = `Other-${randomString(16)}`;
    h.secrets.add(otherPassword, 'password of the second user');
    const u = await h.admin.put(`/users/${OTHER_USER}`, { password: otherPassword });
    expectStatus(u, [200, 201], 'create second user');
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('attach: subprotocol bastion.v1; echo round trip through binary frames', async () => {
    const { term } = await openShell();
    try {
      assert.equal(term.protocol, SUBPROTOCOL);
      const from = term.length;
      term.send('echo hello-$((6*7))\r');
      await term.waitForOutput('hello-42', { from, timeoutMs: 10000 });
      assert.deepEqual(term.textErrors, [], 'every text frame is JSON');
    } finally {
      term.close();
    }
  });

  h.test('PTY has the size of the connect request; resize changes it', async () => {
    const { term } = await openShell();
    try {
      let from = term.length;
      term.send('stty size\r');
      await term.waitForOutput('40 120', { from, timeoutMs: 10000 });
      term.resize(100, 31);
      from = term.length;
      term.send('stty size\r');
      await term.waitForOutput('31 100', { from, timeoutMs: 10000 });
    } finally {
      term.close();
    }
  });

  h.test('exit 7 -> {"type":"exit","exit_status":7}, then the socket closes', async () => {
    const { term } = await openShell();
    try {
      term.send('exit 7\r');
      const msg = await term.waitForControl('exit', { timeoutMs: 10000 });
      assert.equal(msg.exit_status, 7, JSON.stringify(msg));
      await term.waitClosed({ timeoutMs: 10000 });
    } finally {
      term.close();
    }
  });

  h.test('10 MiB of output arrives byte-exact', { timeout: 180000 }, async () => {
    const N = 1300000; // 10,588,896 bytes through the PTY
    const expected = seqBytes(N);
    assert.ok(expected.size >= 10 * 1024 * 1024);
    const { term } = await openShell();
    try {
      const from = term.length;
      // The markers are split in the command line, so only the output contains them whole.
      term.send("printf 'BST''START\\n'; seq 1 1300000; printf 'BST''END\\n'\r");
      const start = await term.waitForOutput('BSTSTART\r\n', { from, timeoutMs: 20000 });
      const end = await term.waitForOutput('BSTEND\r\n', { from: start.end, timeoutMs: 150000 });
      const got = term.output().subarray(start.end, end.index);
      if (!got.equals(expected.buf)) {
        let i = 0;
        while (i < got.length && i < expected.buf.length && got[i] === expected.buf[i]) i++;
        assert.fail(`stream differs: got ${got.length} bytes, expected ${expected.buf.length}; first difference at ${i}: `
          + `got ${JSON.stringify(got.subarray(i, i + 40).toString('latin1'))} `
          + `expected ${JSON.stringify(expected.buf.subarray(i, i + 40).toString('latin1'))}`);
      }
      // and the session is still interactive afterwards
      const after = term.length;
      term.send('echo after-$((1+1))\r');
      await term.waitForOutput('after-2', { from: after, timeoutMs: 15000 });
    } finally {
      term.close();
    }
  });

  h.test('back-pressure: a browser that stops reading stops the bastion reading the VM', { timeout: 180000 }, async () => {
    const rss = () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${h.daemon.pid}/status`, 'utf8'));
      return Number(m[1]) * 1024;
    };
    const { term } = await openShell();
    try {
      const from = term.length;
      // ~64 MiB of output: far more than every buffer on the way together.
      term.send("head -c 48000000 /dev/zero | base64 -w 100; printf 'BP''DONE\\n'\r");
      await term.waitForOutput('AAAA', { from, timeoutMs: 20000 });
      term.ws._socket.pause();
      await sleep(1500); // let the buffers on the way fill up
      const received = term.length;
      const before = rss();
      let peak = before;
      for (let i = 0; i < 10; i++) {
        await sleep(300);
        peak = Math.max(peak, rss());
      }
      // While nobody reads, nothing piles up in the bastion.
      assert.ok(peak - before < 4 * 1024 * 1024,
        `bastion RSS grew by ${peak - before} bytes while the browser was not reading`);
      term.ws._socket.resume();
      await term.waitForOutput('BPDONE\r\n', { from: received, timeoutMs: 150000 });
      // The VM had been held back: most of its output came after the pause.
      assert.ok(term.length - received > 32 * 1024 * 1024,
        `only ${term.length - received} bytes arrived after resuming: the bastion buffered them`);
      const after = term.length;
      term.send('echo still-$((2+2))\r');
      await term.waitForOutput('still-4', { from: after, timeoutMs: 15000 });
    } finally {
      term.close();
    }
  });

  h.test('flow control: pause stops the output at once, keystrokes still reach the VM, resume brings it back', { timeout: 90000 }, async () => {
    const { term } = await openShell();
    try {
      const from = term.length;
      term.send('yes flow-control-line\r');
      await term.waitForOutput('flow-control-line\r\nflow', { from, timeoutMs: 20000 });
      term.sendControl({ type: 'pause' });
      const atPause = term.length;
      await sleep(1500); // what was in flight when the pause arrived lands
      const settled = term.length;
      // In flight: the bastion's own queue and socket buffers, not the VM's output.
      assert.ok(settled - atPause < 4 * 1024 * 1024, `${settled - atPause} bytes arrived after the pause`);
      await sleep(2000);
      assert.equal(term.length, settled, `${term.length - settled} bytes arrived while paused`);
      assert.deepEqual(term.controls.filter((c) => c.type === 'error'), [], 'pause is a known control message');
      // Ctrl+C goes to the VM while its output is held; resume shows the prompt.
      term.send('\x03');
      await sleep(500);
      assert.equal(term.length, settled, 'still paused after a keystroke');
      term.sendControl({ type: 'resume' });
      term.send('echo after-$((3+4))\r');
      await term.waitForOutput('after-7', { from: settled, timeoutMs: 20000 });
      // pause twice, resume once: flow control is a state, not a counter
      term.sendControl({ type: 'pause' });
      term.sendControl({ type: 'pause' });
      await sleep(500);
      const held = term.length;
      term.send('echo held-$((4+4))\r');
      await sleep(1000);
      assert.equal(term.length, held, 'nothing arrives while paused (not even the echo)');
      term.sendControl({ type: 'resume' });
      await term.waitForOutput('held-8', { from: held, timeoutMs: 15000 });
    } finally {
      term.close();
    }
  });

  h.test('flow control: a window bounds what is sent ahead of the acks; an ack lets that much more through', { timeout: 90000 }, async () => {
    const { term } = await openShell();
    const W = 64 * 1024;
    const CHUNK = 16 * 1024; // one SSH read (SSHC_DATA_MAX) may overshoot the window
    try {
      term.sendControl({ type: 'window', bytes: W });
      await sleep(300);
      const base = term.length; // all unacknowledged so far, counted in the window
      term.send('yes window-line\r');
      await sleep(2000);
      const first = term.length;
      assert.ok(first - base > 0, 'output flowed up to the window');
      assert.ok(first <= W + CHUNK, `${first} bytes sent with none acknowledged (window ${W})`);
      await sleep(1500);
      assert.equal(term.length, first, 'nothing more without an ack');
      // An ack of everything so far lets one more window through, and no more.
      term.sendControl({ type: 'ack', bytes: first });
      await sleep(1500);
      const second = term.length;
      assert.ok(second - first > W / 2, `${second - first} bytes after the ack`);
      assert.ok(second - first <= W + CHUNK, `${second - first} bytes after one ack (window ${W})`);
      assert.deepEqual(term.controls.filter((c) => c.type === 'error'), [], 'window and ack are known control messages');
      // Ctrl+C still reaches the VM; acking as we go drains to the prompt.
      term.send('\x03');
      term.send('echo win-$((6+6))\r');
      let acked = first; // what the bastion has been told so far
      await term.until(() => {
        if (term.length > acked) {
          term.sendControl({ type: 'ack', bytes: term.length - acked });
          acked = term.length;
        }
        return term.output().indexOf('win-12', second) >= 0;
      }, 30000, 'the prompt after Ctrl+C');
      // A malformed window is refused and changes nothing.
      term.sendControl({ type: 'window', bytes: 10 });
      await term.waitForControl('error', { timeoutMs: 5000 });
    } finally {
      term.close();
    }
  });

  h.test('flush on interrupt: Ctrl+C and {"type":"flush"} drop the held output up to the VM\'s answer; the prompt follows', { timeout: 90000 }, async () => {
    const { term } = await openShell();
    const W = 64 * 1024;
    try {
      term.sendControl({ type: 'window', bytes: W });
      await sleep(300);
      term.send('yes flush-line\r');
      // Held back: the window is full and nothing is acknowledged, so the
      // bastion stops reading and libssh's channel window fills at the VM.
      await term.waitForOutput('flush-line\r\nflush', { timeoutMs: 20000 });
      await sleep(1500);
      const held = term.length;
      term.sendControl({ type: 'flush' }); // for the next binary frame: the ^C
      term.send('\x03');
      const flushed = await term.waitForControl('flushed', { timeoutMs: 10000 });
      assert.ok(Number.isInteger(flushed.bytes) && flushed.bytes > 256 * 1024,
        `flushed names what was dropped: ${JSON.stringify(flushed)} (the VM's channel window was full)`);
      assert.deepEqual(term.controls.filter((c) => c.type === 'error'), [], 'flush is a known control message');
      // Only frames after `flushed` count now: ack everything so the window
      // does not hold the rest back, and read up to the new prompt.
      let acked = 0;
      const ackAll = () => {
        if (term.length > acked) {
          term.sendControl({ type: 'ack', bytes: term.length - acked });
          acked = term.length;
        }
      };
      ackAll();
      const atFlushed = term.length;
      term.send('echo flushed-$((2+3))\r');
      await term.until(() => { ackAll(); return term.output().indexOf('flushed-5', atFlushed) >= 0; }, 20000, 'the prompt after the flush');
      const tail = term.output().subarray(atFlushed).toString('latin1');
      const stale = (tail.match(/flush-line/g) || []).length * 'flush-line\r\n'.length;
      console.log(`flush: ${held} bytes before Ctrl+C, ${flushed.bytes} dropped at the bastion, ${stale} bytes of stale lines after "flushed"`);
      // What still comes is what the PTY held when Ctrl+C arrived (the
      // kernel does not flush a pty's output queue: measured 4 KiB) and at
      // most what was read together with the answer, never the VM's window
      // (1,280,000 bytes; 300 KB of it when sshd was left holding some).
      assert.ok(stale < 64 * 1024, `${stale} bytes of the flood came after "flushed"`);
      // Not held back: a flush drops nothing that the VM sent after it, and
      // the prompt that Ctrl+C brings is there.
      const idle = term.length;
      term.sendControl({ type: 'flush' });
      term.send('\x03');
      await term.until(() => { ackAll(); return term.controls.filter((c) => c.type === 'flushed').length === 2; }, 10000, 'the second flushed');
      // sshd answers the mark before it writes the ^C into the pty: wait
      // for readline's new line before typing (INTR discards typeahead).
      await term.until(() => { ackAll(); return term.output().indexOf('^C', idle) >= 0; }, 10000, 'the echo of ^C');
      await sleep(300);
      term.send('echo again-$((3+4))\r');
      await term.until(() => { ackAll(); return term.output().indexOf('again-7', idle) >= 0; }, 20000, 'the prompt after an idle flush');
      assert.equal(term.controls.filter((c) => c.type === 'flushed')[1].bytes, 0, 'an idle shell had nothing to drop: not its ^C echo, not its prompt');
    } finally {
      term.close();
    }
  });

  h.test('the VM dies mid-session -> {"type":"closed","reason":...}; the daemon stays healthy', async () => {
    const { term } = await openShell('vm-victim');
    try {
      const killed = victim.killSessions();
      assert.ok(killed.length > 0, 'found the sshd processes serving the session');
      const msg = await term.waitForControl('closed', { timeoutMs: 20000 });
      assert.equal(typeof msg.reason, 'string', JSON.stringify(msg));
      assert.ok(msg.reason.length > 0, `non-empty reason: ${JSON.stringify(msg)}`);
      await term.waitClosed({ timeoutMs: 10000 });
    } finally {
      term.close();
    }
    const hz = await rawGet(h.daemon.port, '/api/v1/healthz');
    assert.equal(hz.status, 200);
    // and a new session to the same VM works again
    const { term: t2 } = await openShell('vm-victim');
    t2.close();
  });

  h.test('wrong or missing Origin: upgrade refused with 403; the owner can still attach', async () => {
    const s = await newSession();
    for (const origin of ['https://evil.example', `http://127.0.0.1:${h.daemon.port}`, 'null', null]) {
      const a = await attach(h.daemon, h.admin, s.terminal, { origin });
      if (a.ok) a.term.close();
      assert.equal(a.ok, false, `Origin ${origin}: upgrade must be refused`);
      assert.equal(a.status, 403, `Origin ${origin}: ${a.status} ${a.body}`);
    }
    const ok = await attach(h.daemon, h.admin, s.terminal);
    assert.ok(ok.ok, `owner attach after refusals: ${ok.status} ${ok.body}`);
    ok.term.send('echo still-$((2+3))\r');
    await ok.term.waitForOutput('still-5', { timeoutMs: 15000 });
    ok.term.close();
  });

  h.test("another user's session or no cookie: upgrade refused; the owner can still attach", async () => {
    const s = await newSession();
    const other = h.client(OTHER_USER);
    await other.login(OTHER_USER, otherPassword);
    const a = await attach(h.daemon, other, s.terminal);
    if (a.ok) a.term.close();
    assert.equal(a.ok, false, "another user's attach must be refused");
    assert.ok([403, 404].includes(a.status), `other user: ${a.status} ${a.body}`);
    const anon = h.client('anon');
    const b = await attach(h.daemon, anon, s.terminal);
    if (b.ok) b.term.close();
    assert.equal(b.ok, false, 'attach without a cookie must be refused');
    assert.ok([401, 403, 404].includes(b.status), `no cookie: ${b.status} ${b.body}`);
    const ok = await attach(h.daemon, h.admin, s.terminal);
    assert.ok(ok.ok, `owner attach: ${ok.status} ${ok.body}`);
    ok.term.close();
  });

  h.test('unknown session id: upgrade refused with 404', async () => {
    const a = await attach(h.daemon, h.admin, '/api/v1/sessions/e2e-no-such-session/terminal');
    if (a.ok) a.term.close();
    assert.equal(a.ok, false);
    assert.equal(a.status, 404, `${a.status} ${a.body}`);
  });

  h.test('a session not attached within 30 s is gone (attach -> 404)', { timeout: 90000 }, async () => {
    const wait = lateCreatedAt + ATTACH_WINDOW_MS + 3000 - Date.now();
    if (wait > 0) await sleep(wait);
    const a = await attach(h.daemon, h.admin, late.terminal);
    if (a.ok) a.term.close();
    assert.equal(a.ok, false, 'attach after the window must be refused');
    assert.equal(a.status, 404, `${a.status} ${a.body}`);
  });

  h.test('no password or key line in any response or log line', async () => {
    h.assertNoLeaks();
  });

  h.test('SIGTERM with an attached terminal: exits 0 within 10 s and the client sees the close', { timeout: 30000 }, async () => {
    const { term } = await openShell();
    const r = await h.stopDaemon();
    assert.ok(!r.timedOut, `did not exit within 10 s (killed): ${JSON.stringify(r)}`);
    assert.equal(r.code, 0, JSON.stringify(r));
    await term.waitClosed({ timeoutMs: 5000 });
  });
});
