// Session recording and live watching (issue 17, SPEC §8): a session through a recording
// bastion yields a valid asciicast v2 whose replayed text holds what the VM
// printed; a password typed at a prompt with echo off (read -s) is absent
// from an "output" recording; keystrokes only in "input_output"; the cap
// (recording.max_bytes, made small here) stops the recording, not the
// session; search finds a printed word with its time; who may read: Owner
// and Auditor of the bastion, nobody else learns a recording exists; an
// Auditor cannot connect. A paste larger than one message is recorded
// whole; after a crash and a restart the recording left open is
// "interrupted" and says it ends early. Watching: an Owner or Auditor sees the output
// live and types nothing; the watched terminal is told; a watcher that
// does not read is dropped and the session does not wait for it.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import {
  expectSession, expectStatus, createTopology, addVm, connect, keyAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { randomString, waitFor } from './lib/util.mjs';
import { startDaemon } from './lib/daemon.mjs';
import { launch, newContext, signIn, waitTermText, waitForShell, run, failShot, shot } from './lib/browser.mjs';

const MAX_BYTES = 65536;
const BIG_MAX_BYTES = 16 * 1024 * 1024;
const h = fileHarness({
  label: 'recording',
  block: 250,
  net: true,
  keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
  daemonOpts: { env: { BASTION_RECORDING_MAX_BYTES: String(MAX_BYTES) } },
});
const G = 'rec';
const users = {};
const passwords = {};

function body(bastion) {
  return { bastion: ids.bastion(G, bastion), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private) };
}

async function openShell(client, bastion) {
  const s = expectSession(await connect(client, G, 'vm1', body(bastion)), `connect via ${bastion}`);
  const a = await attach(h.daemon, client, s.terminal);
  assert.ok(a.ok, `attach: ${a.status} ${a.body}`);
  a.term.send('echo READY$((40+2))\r');
  await a.term.waitForOutput('READY42', { timeoutMs: 15000 });
  return { session: s, term: a.term };
}

/** The session's recording ID from GET /sessions (as its user). */
async function recordingOf(client, sessionId) {
  const r = expectStatus(await client.get('/sessions'), 200);
  const s = r.json.value.find((x) => x.id === sessionId);
  assert.ok(s, `session ${sessionId} in ${r.text}`);
  return s.recording;
}

async function ended(id) {
  return waitFor(async () => {
    const r = await h.admin.get(`/recordings/${id}`);
    return r.status === 200 && r.json.ended_at ? r.json : null;
  }, { timeoutMs: 20000, what: `recording ${id} ends` });
}

/** Parses every line of a cast: the header and the events. */
function parseCast(text) {
  assert.ok(text.endsWith('\n'), 'a cast ends with a newline');
  const lines = text.slice(0, -1).split('\n');
  const header = JSON.parse(lines[0]);
  const events = lines.slice(1).map((l, i) => {
    const e = JSON.parse(l);
    assert.ok(Array.isArray(e) && e.length === 3, `line ${i + 2}: ${l}`);
    assert.equal(typeof e[0], 'number');
    assert.ok(['o', 'i', 'r', 'm'].includes(e[1]), `line ${i + 2}: type ${e[1]}`);
    assert.equal(typeof e[2], 'string');
    return e;
  });
  for (let i = 1; i < events.length; i++) assert.ok(events[i][0] >= events[i - 1][0], 'times never go back');
  return { header, events };
}

const shown = (events) => events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');

describe('recording', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'plain' });
    const net = ids.network(G, 'n1');
    expectStatus(await h.admin.put(`/groups/${G}/bastions/out`, { networks: [net], recording: 'output' }), [200, 201]);
    expectStatus(await h.admin.put(`/groups/${G}/bastions/io`, { networks: [net], recording: 'input_output' }), [200, 201]);
    await addVm(h.admin, { group: G, name: 'vm1', ip: h.net.addr(2) });
    // owner: Owner of the group; auditor: Auditor of the group; reader:
    // Reader of the group (connects); stranger: Auditor of another group.
    const roles = { owner: ['Owner', ids.group(G)], auditor: ['Auditor', ids.group(G)], reader: ['Reader', ids.group(G)], stranger: ['Auditor', ids.group('other')] };
    expectStatus(await h.admin.put(ids.group('other'), {}), [200, 201]);
    for (const [name, [role, scope]] of Object.entries(roles)) {
      const pw = `Rec-${randomString(16)}`;
      h.secrets.add(pw, `${name} password`);
      expectStatus(await h.admin.put(`/users/rec${name}`, { password: pw }), [200, 201]);
      expectStatus(await h.admin.put(`/role-assignments/rec-${name}`, { principal: `user:rec${name}`, role, scope }), [200, 201]);
      passwords[name] = pw;
      users[name] = h.client(`rec${name}`);
      await users[name].login(`rec${name}`, pw);
    }
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('the property: off by default, three values, anything else refused', async () => {
    const r = expectStatus(await h.admin.get(`/groups/${G}/bastions/plain`), 200);
    assert.equal(r.json.recording, undefined, r.text);
    const bad = await h.admin.put(`/groups/${G}/bastions/bad`, { networks: [ids.network(G, 'n1')], recording: 'on' });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.json.error.message, /recording/);
    const { session, term } = await openShell(users.reader, 'plain');
    try {
      assert.equal(await recordingOf(users.reader, session.id), undefined, 'a bastion that does not record');
    } finally { term.close(); }
  });

  let outRec; // the "output" recording, read by later tests
  const word = `Zebra${randomString(8)}`;
  h.test('output: a valid asciicast v2 of what the VM printed; a password typed at read -s is absent', async () => {
    const secret = `Pw-${randomString(20)}`;
    h.secrets.add(secret, 'typed password'); // never in any response of the API either
    const { session, term } = await openShell(users.reader, 'out');
    const id = await recordingOf(users.reader, session.id);
    assert.match(id, /^rec-[0-9a-f]{32}$/);
    try {
      term.send(`echo ${word.slice(0, 5)}""${word.slice(5)}\r`);
      await term.waitForOutput(`${word}\r\n`, { timeoutMs: 10000 });
      // The prompt is spelt apart in the command, so that its echo does
      // not match before read has switched echo off.
      const from = term.length;
      term.send("read -s -p 'Pass''word: ' PW; echo; echo LEN=${#PW}\r");
      await term.waitForOutput('Password: ', { timeoutMs: 10000, from });
      term.send(`${secret}\r`);
      await term.waitForOutput(`LEN=${secret.length}`, { timeoutMs: 10000 });
      term.ws.send(JSON.stringify({ type: 'resize', cols: 100, rows: 30 }));
      term.send('printf "S%sE\\n" "$(stty size)"\r');
      await term.waitForOutput('S30 100E', { timeoutMs: 10000 });
    } finally { term.close(); }
    const meta = await ended(id);
    assert.equal(meta.id, id);
    assert.equal(meta.session, session.id);
    assert.equal(meta.user, 'recreader');
    assert.equal(meta.vm, ids.vm(G, 'vm1'));
    assert.equal(meta.bastion, ids.bastion(G, 'out'));
    assert.equal(meta.mode, 'output');
    assert.equal(meta.state, 'complete', JSON.stringify(meta));
    assert.equal(typeof meta.instance, 'string');
    assert.ok(meta.duration_s > 0 && meta.bytes > 0, JSON.stringify(meta));
    const r = expectStatus(await h.admin.get(`/recordings/${id}/cast`), 200);
    assert.match(r.headers['content-type'], /^application\/x-asciicast/);
    // bytes: what was recorded (the bytes as they came, a few per event),
    // less than the cast rendered from it (JSON framing and escaping)
    const castBytes = Buffer.byteLength(r.text);
    assert.ok(meta.bytes < castBytes, `bytes ${meta.bytes}, the cast ${castBytes}`);
    const { header, events } = parseCast(r.text);
    assert.equal(header.version, 2);
    assert.ok(header.width > 0 && header.height > 0, r.text.slice(0, 200));
    assert.ok(Number.isInteger(header.timestamp));
    assert.ok(header.env && header.env.TERM);
    assert.ok(shown(events).includes(`${word}\r\n`), 'what the VM printed is in the cast');
    assert.ok(events.some((e) => e[1] === 'r' && e[2] === '100x30'), 'the resize');
    assert.ok(!events.some((e) => e[1] === 'i'), 'no keystrokes in output mode');
    assert.ok(!r.text.includes(secret), 'the password typed at read -s is not in the recording');
    // stored compressed: less than the cast
    assert.ok(meta.stored_bytes > 0 && meta.stored_bytes < castBytes, JSON.stringify(meta));
    outRec = meta;
  });

  h.test('search finds a printed word with its time and line; input is not searched', async () => {
    assert.ok(outRec, 'the output test ran');
    const r = expectStatus(await h.admin.get(`/recordings/${outRec.id}/search?q=${word.toLowerCase()}`), 200);
    assert.ok(r.json.value.length >= 1, r.text);
    const hit = r.json.value.find((x) => x.line === word);
    assert.ok(hit, `the output line itself in ${r.text}`);
    assert.ok(typeof hit.time === 'number' && hit.time > 0 && hit.time <= outRec.duration_s + 1, r.text);
    const none = expectStatus(await h.admin.get(`/recordings/${outRec.id}/search?q=no-such-text-${randomString(6)}`), 200);
    assert.deepEqual(none.json.value, []);
    expectStatus(await h.admin.get(`/recordings/${outRec.id}/search`), 400);
    expectStatus(await h.admin.get(`/recordings/${outRec.id}/search?q=${'x'.repeat(201)}`), 400);
  });

  h.test('input_output: keystrokes too', async () => {
    const { session, term } = await openShell(users.reader, 'io');
    const id = await recordingOf(users.reader, session.id);
    const typed = `typed${randomString(8)}`;
    try {
      term.send(`: ${typed}\r`);
      await term.waitForOutput(typed, { timeoutMs: 10000 });
    } finally { term.close(); }
    const meta = await ended(id);
    assert.equal(meta.mode, 'input_output');
    const { events } = parseCast(expectStatus(await h.admin.get(`/recordings/${id}/cast`), 200).text);
    const input = events.filter((e) => e[1] === 'i').map((e) => e[2]).join('');
    assert.ok(input.includes(`: ${typed}\r`), `keystrokes in ${JSON.stringify(input.slice(0, 300))}`);
  });

  h.test('who reads: Owner and Auditor of the bastion; Reader, another scope and nobody get 404', async () => {
    assert.ok(outRec, 'the output test ran');
    const id = outRec.id;
    for (const name of ['owner', 'auditor']) {
      const c = users[name];
      expectStatus(await c.get(`/recordings/${id}`), 200, `${name} reads the metadata`);
      expectStatus(await c.get(`/recordings/${id}/cast`), 200, `${name} reads the cast`);
      expectStatus(await c.get(`/recordings/${id}/search?q=x`), 200, `${name} searches`);
      const l = expectStatus(await c.get(`/recordings?bastion=${encodeURIComponent(ids.bastion(G, 'out'))}`), 200);
      assert.ok(l.json.value.some((x) => x.id === id), `${name} lists it: ${l.text}`);
    }
    for (const name of ['reader', 'stranger']) {
      const c = users[name];
      for (const p of [`/recordings/${id}`, `/recordings/${id}/cast`, `/recordings/${id}/search?q=x`]) {
        const r = await c.get(p);
        assert.equal(r.status, 404, `${name} ${p}: ${r.text}`);
        assert.equal(r.json.error.code, 'ResourceNotFound');
      }
      // the same answer as for an ID that does not exist
      const missing = await c.get('/recordings/rec-00000000000000000000000000000000');
      assert.equal(missing.status, 404);
      assert.equal(missing.json.error.message.replace(/rec-\w+/, 'X'),
        (await c.get(`/recordings/${id}`)).json.error.message.replace(/rec-\w+/, 'X'));
      const l = expectStatus(await c.get('/recordings'), 200);
      assert.deepEqual(l.json.value, [], `${name} lists nothing: ${l.text}`);
    }
    // the list's filters and paging
    const all = expectStatus(await h.admin.get('/recordings'), 200).json.value;
    assert.ok(all.length >= 2, JSON.stringify(all));
    const one = expectStatus(await h.admin.get('/recordings?limit=1'), 200);
    assert.equal(one.json.value.length, 1);
    assert.ok(one.json.next, one.text);
    const two = expectStatus(await h.admin.get(`/recordings?limit=1&cursor=${one.json.next}`), 200);
    assert.equal(two.json.value[0].id, all[1].id);
    const byUser = expectStatus(await h.admin.get('/recordings?user=nobody'), 200);
    assert.deepEqual(byUser.json.value, []);
    const future = expectStatus(await h.admin.get(`/recordings?since=${Math.floor(Date.now() / 1000) + 3600}`), 200);
    assert.deepEqual(future.json.value, []);
    expectStatus(await h.admin.get('/recordings?color=red'), 400);
  });

  h.test('an Auditor reads resources and the audit trail but cannot connect nor change anything', async () => {
    const a = users.auditor;
    expectStatus(await a.get(`/groups/${G}/vms/vm1`), 200);
    const r = await connect(a, G, 'vm1', body('out'));
    assert.equal(r.status, 403, r.text);
    assert.match(r.json.error.message, /Reader on \/groups\/rec\/vms\/vm1 is required/);
    const w = await a.put(`/groups/${G}/bastions/out`, { networks: [ids.network(G, 'n1')], recording: 'off' });
    assert.equal(w.status, 403, w.text);
    // audit/read at "/" only: at a group it is not enough
    expectStatus(await a.get('/audit'), 403);
    expectStatus(await h.admin.put('/role-assignments/rec-auditor-root', { principal: 'user:recauditor', role: 'Auditor', scope: '/' }), [200, 201]);
    const audit = expectStatus(await a.get('/audit?action=session.end'), 200);
    assert.ok(audit.json.value.length > 0, audit.text);
    expectStatus(await h.admin.del('/role-assignments/rec-auditor-root'), [200, 204]);
  });

  h.test('the cap: past recording.max_bytes the cast says so and stops; the session goes on', async () => {
    const { session, term } = await openShell(users.reader, 'out');
    const id = await recordingOf(users.reader, session.id);
    try {
      term.send(`head -c ${MAX_BYTES * 3} /dev/zero | tr '\\0' x; echo; echo AFTER$((6*7))\r`);
      await term.waitForOutput('AFTER42', { timeoutMs: 20000 });
      term.send('echo STILL$((1+1))\r');
      await term.waitForOutput('STILL2', { timeoutMs: 10000 });
    } finally { term.close(); }
    const meta = await ended(id);
    assert.equal(meta.state, 'truncated', JSON.stringify(meta));
    assert.match(meta.error, /recording\.max_bytes/);
    const r = expectStatus(await h.admin.get(`/recordings/${id}/cast`), 200);
    const { events } = parseCast(r.text);
    assert.ok(meta.bytes <= MAX_BYTES + 512, `at most the cap: ${JSON.stringify(meta)}`);
    assert.ok(Buffer.byteLength(r.text) <= 2 * MAX_BYTES, `the cast rendered from it: ${r.text.length}`);
    const last = events[events.length - 1];
    assert.equal(last[1], 'm');
    assert.match(last[2], /recording stopped/);
    assert.ok(!shown(events).includes('STILL2'), 'nothing after the cap');
    const audit = expectStatus(await h.admin.get('/audit?action=recording.truncated'), 200);
    assert.ok(audit.json.value.some((x) => JSON.stringify(x).includes(id)), audit.text);
  });

  const watchPath = (id) => `/api/v1/sessions/${id}/watch`;
  const notices = (term) => term.controls.filter((c) => c.type === 'notice').map((c) => c.message);

  h.test('watch: an Auditor sees the output live, types nothing; the watched terminal is told', async () => {
    const { session, term } = await openShell(users.reader, 'plain');
    try {
      const w = await attach(h.daemon, users.auditor, watchPath(session.id));
      assert.ok(w.ok, `watch: ${w.status} ${w.body}`);
      await term.until(() => notices(term).includes('recauditor is watching'), 10000, 'the notice');
      const live = `Live${randomString(8)}`;
      term.send(`echo ${live.slice(0, 4)}""${live.slice(4)}\r`);
      await w.term.waitForOutput(`${live}\r\n`, { timeoutMs: 10000 });
      // what the watcher sends goes nowhere
      const from = term.length;
      w.term.send('echo WATCHER$((5*5))\r');
      term.send('echo MARK$((3*3))\r');
      await term.waitForOutput('MARK9', { timeoutMs: 10000, from });
      assert.ok(!term.text().slice(from).includes('WATCHER25'), 'the watcher typed nothing into the session');
      w.term.close();
      await term.until(() => notices(term).includes('recauditor stopped watching'), 10000, 'the stop notice');
      const audit = expectStatus(await h.admin.get('/audit?action=session.watch'), 200);
      assert.ok(audit.json.value.some((x) => x.principal === 'user:recauditor' && x.result === 'started'
        && x.detail.session === session.id), audit.text);
    } finally { term.close(); }
  });

  h.test('watch: an Owner may; Reader, an Auditor elsewhere and the session user get 404', async () => {
    const { session, term } = await openShell(users.reader, 'plain');
    try {
      const o = await attach(h.daemon, users.owner, watchPath(session.id));
      assert.ok(o.ok, `owner watch: ${o.status} ${o.body}`);
      o.term.close();
      for (const name of ['reader', 'stranger']) {
        const r = await attach(h.daemon, users[name], watchPath(session.id));
        assert.equal(r.ok, false, name);
        assert.equal(r.status, 404, `${name}: ${r.body}`);
      }
      const missing = await attach(h.daemon, users.auditor, watchPath('no-such-session'));
      assert.equal(missing.status, 404);
      const foreign = await attach(h.daemon, users.auditor, watchPath(session.id), { origin: 'https://evil.example' });
      assert.equal(foreign.status, 403);
    } finally { term.close(); }
  });

  h.test('watch: a watcher that does not read is dropped; the session does not wait for it', { timeout: 180000 }, async () => {
    const N = 24 * 1024 * 1024;
    const run = async (withWatcher) => {
      const { session, term } = await openShell(users.reader, 'plain');
      let w = null;
      try {
        if (withWatcher) {
          w = await attach(h.daemon, users.auditor, watchPath(session.id));
          assert.ok(w.ok, `watch: ${w.status} ${w.body}`);
          await term.until(() => notices(term).includes('recauditor is watching'), 10000, 'the notice');
          w.term.ws._socket.pause(); // reads nothing from now on
        }
        const from = term.length;
        const t0 = Date.now();
        term.send(`head -c ${N} /dev/zero | tr '\\0' y; echo; echo END$((6*7))\r`);
        await term.waitForOutput('END42', { timeoutMs: 60000, from });
        const ms = Date.now() - t0;
        if (withWatcher) {
          await term.until(() => notices(term).includes('recauditor stopped watching'), 10000, 'dropped');
          w.term.ws._socket.resume();
          await w.term.until(() => w.term.closed, 20000, 'the watcher closed');
          assert.ok(w.term.length < N, `the slow watcher got ${w.term.length} of ${N}`);
        }
        return ms;
      } finally { term.close(); if (w && w.ok) w.term.close(); }
    };
    const alone = await run(false);
    const watched = await run(true);
    // Loose on purpose (a shared machine): a session that waited for its
    // watcher would never finish at all.
    assert.ok(watched < alone * 3 + 3000, `with a stuck watcher ${watched} ms, alone ${alone} ms`);
  });

  h.test('portal: the Recordings page lists it; the player plays, seeks to a search hit; Watch shows a live session', { timeout: 120000 }, async () => {
    // A recording that lasts long enough to measure its speed: two words
    // printed 1.5 s apart.
    const { session, term } = await openShell(users.reader, 'out');
    const recId = await recordingOf(users.reader, session.id);
    const early = `Early${randomString(6)}`;
    const late = `Late${randomString(6)}`;
    try {
      term.send(`echo ${early.slice(0, 5)}""${early.slice(5)}; sleep 1.5; echo ${late.slice(0, 4)}""${late.slice(4)}\r`);
      await term.waitForOutput(`${late}\r\n`, { timeoutMs: 10000 });
    } finally { term.close(); }
    const meta = await ended(recId);
    const browser = await launch();
    try {
      const { context, rec } = await newContext(browser, h);
      // In every frame, before its scripts: the CSP violations it reports
      // (the player's page compiles WebAssembly, which the portal's policy
      // would refuse).
      await context.addInitScript(() => {
        window.cspViolations = [];
        document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
      });
      const p = await context.newPage();
      try {
        await signIn(p, h, 'recauditor', passwords.auditor);
        await p.goto(`${h.daemon.origin}/#/recordings`);
        const link = p.locator(`#recordings-table a[data-recording="${recId}"]`);
        await link.waitFor({ state: 'visible' });
        await link.click();
        const f = await (await p.locator('#player-frame').elementHandle()).contentFrame();
        assert.equal(new URL(f.url()).pathname, '/player.html');
        // ready, or refused by its policy (then the assertion says how)
        await f.waitForFunction(() => window.cspViolations.length > 0 || (!!window.bastionPlayer && window.bastionPlayer.duration() > 0), null, { timeout: 20000 });
        assert.deepEqual(await f.evaluate(() => window.cspViolations), [], 'no CSP violation in the player page');
        const duration = await f.evaluate(() => window.bastionPlayer.duration());
        assert.ok(duration >= 1.5 && Math.abs(duration - meta.duration_s) < 1, `player ${duration} s, recording ${meta.duration_s} s`);
        // The player's text, as it drew it, one entry per row.
        const screen = () => f.evaluate(() => {
          const el = document.querySelector('.ap-term-text');
          return el ? el.innerText.split('\n').map((l) => l.trimEnd()) : [];
        });
        const waitScreen = async (pred, what) => {
          let last = [];
          try {
            return await waitFor(async () => (last = await screen()).find(pred), { timeoutMs: 20000, intervalMs: 100, what });
          } catch (e) {
            e.message += `\nthe player shows:\n${last.filter((l) => l).slice(-20).join('\n')}`;
            throw e;
          }
        };
        // play from the keyboard (Space on the player's screen, which is in
        // the Tab order); its button is labelled: the shell's output appears
        await f.getByRole('button', { name: 'Play' }).waitFor();
        await f.locator('.ap-term-text').focus();
        await p.keyboard.press('Space');
        await waitScreen((l) => l === early, 'the replayed output');
        await f.waitForFunction(() => window.bastionPlayer.time() > 0, null, { timeout: 10000 });
        // speed: the player's clock runs at the chosen rate, measured in
        // the page itself from 0 s over a third of what the recording
        // lasts at that speed
        const rate = (speed) => f.evaluate(async (s) => {
          const bp = window.bastionPlayer;
          await bp.seek(0);
          await bp.play();
          await new Promise((resolve) => { requestAnimationFrame(resolve); });
          const t0 = bp.time();
          const w0 = performance.now();
          await new Promise((resolve) => { setTimeout(resolve, Math.min(200, (bp.duration() * 1000) / s / 3)); });
          const t1 = bp.time();
          const w1 = performance.now();
          return { rate: (t1 - t0) / ((w1 - w0) / 1000), playing: bp.playing(), t0, t1, duration: bp.duration() };
        }, speed);
        for (const speed of [0.5, 4]) {
          await p.selectOption('#player-speed', String(speed));
          await f.waitForFunction((s) => window.bastionPlayer.speed() === s, speed);
          const r = await rate(speed);
          assert.ok(r.playing && Math.abs(r.rate - speed) < speed * 0.25, `at ${speed}×: ${JSON.stringify(r)}`);
        }
        // search, then a hit seeks there: the word is on screen, paused
        await p.fill('#player-q', late);
        await p.click('#player-search-go');
        const hit = p.locator('#player-hits button.hit').first();
        await hit.waitFor({ state: 'visible' });
        const t = Number(await hit.getAttribute('data-time'));
        await hit.click();
        await waitScreen((l) => l === late, 'the searched word after the seek');
        const at = await f.evaluate(() => ({ time: window.bastionPlayer.time(), playing: window.bastionPlayer.playing() }));
        assert.ok(Math.abs(at.time - t) < 0.01 && !at.playing, JSON.stringify(at));
        await p.evaluate(() => window.scrollTo(0, 0));
        await shot(p, 'recording-player');
        // a new speed while paused: the player is made again at that moment
        await p.selectOption('#player-speed', '0.5');
        await f.waitForFunction(() => window.bastionPlayer.speed() === 0.5);
        await waitScreen((l) => l === late, 'the searched word at the new speed');
        const again = await f.evaluate(() => ({ time: window.bastionPlayer.time(), playing: window.bastionPlayer.playing() }));
        assert.ok(Math.abs(again.time - t) < 0.01 && !again.playing, JSON.stringify(again));
        // and while playing: it plays on from where it was
        const before = await f.evaluate(async (s) => { await window.bastionPlayer.seek(s); await window.bastionPlayer.play(); return window.bastionPlayer.time(); }, t - 1);
        await p.selectOption('#player-speed', '1');
        await f.waitForFunction(() => window.bastionPlayer.speed() === 1 && window.bastionPlayer.playing(), null, { timeout: 5000 });
        const on = await f.evaluate(() => window.bastionPlayer.time());
        assert.ok(on >= before && on < t, `playing on at ${on} s from ${before} s`);
        // seek back to before it: the early word only
        await f.evaluate((s) => window.bastionPlayer.seek(s), t - 0.5);
        await waitFor(async () => { const l = await screen(); return l.includes(early) && !l.includes(late); }, { timeoutMs: 10000, what: 'only the early word 0.5 s before' });
        assert.equal(await p.getAttribute('#player-download', 'href'), `/api/v1/recordings/${recId}/cast`);
        // a phone: the player fits; nothing scrolls sideways
        await p.setViewportSize({ width: 390, height: 780 });
        await f.waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth
          && document.querySelector('.ap-term').getBoundingClientRect().right <= window.innerWidth, null, { timeout: 5000 });
        await p.waitForFunction(() => document.documentElement.scrollWidth <= 390);
        await p.setViewportSize({ width: 1280, height: 800 });
        assert.deepEqual(await f.evaluate(() => window.cspViolations), [], 'no CSP violation in the player page');
        assert.deepEqual(await p.evaluate(() => window.cspViolations), [], 'no CSP violation in the portal page');
        // Watch: the reader's portal terminal, the auditor's watch view;
        // the watched terminal says who is watching
        const r = await newContext(browser, h);
        const rp = await r.context.newPage();
        await signIn(rp, h, 'recreader', passwords.reader);
        await rp.goto(`${h.daemon.origin}/#/vms/${G}/vm1/connect`, { waitUntil: 'domcontentloaded' });
        await rp.locator('#connect-form').waitFor();
        await waitFor(async () => !/Loading/.test(await rp.locator('#connect-bastion').innerText()), { what: 'the bastion list', timeoutMs: 15000 });
        await rp.selectOption('#connect-bastion', ids.bastion(G, 'plain'));
        await rp.fill('#connect-username', h.user.name);
        await rp.selectOption('#connect-auth-type', 'ssh-key');
        await rp.fill('#connect-key', h.keys['ed25519-openssh'].private);
        await rp.click('#connect-submit');
        await waitForShell(rp);
        const sid = (await users.reader.get('/sessions')).json.value[0].id;
        // through a bastion that does not record: the address is the way in
        await p.goto(`${h.daemon.origin}/#/sessions/${sid}/watch`);
        await p.locator('#watch-term').waitFor({ state: 'visible' });
        await rp.locator('#terminal-notice').filter({ hasText: 'recauditor is watching' }).waitFor({ timeout: 15000 });
        const live = `Shown${randomString(6)}`;
        await run(rp, `echo ${live.slice(0, 5)}""${live.slice(5)}`, (l) => l === live);
        await waitTermText(p, (l) => l === live, 'the live output in the watch view');
        await p.goto(`${h.daemon.origin}/#/recordings`); // leaving the view stops watching
        await rp.locator('#terminal-notice').filter({ hasText: 'recauditor stopped watching' }).waitFor({ timeout: 15000 });
        assert.deepEqual(r.rec.errors, [], 'no page errors (reader)');
        assert.deepEqual(r.rec.csp, [], 'no CSP violations (reader)');
        await r.context.close();
        assert.deepEqual(rec.errors, [], 'no page errors');
        assert.deepEqual(rec.csp, [], 'no CSP violations');
      } catch (e) {
        throw await failShot(p, h, 'recording-player', e);
      }
    } finally {
      await browser.close();
    }
  });

  h.test('no secret (typed password, user passwords) in any response or the log', () => {
    h.assertNoLeaks();
  });
  /** Clients of the daemon started again (another port, or the same). */
  async function signInAgain(adminPassword) {
    h.admin = h.client('admin');
    await h.admin.login('admin', adminPassword);
    users.reader = h.client('recreader');
    await users.reader.login('recreader', passwords.reader);
  }
  let liveTerm = null;
  let liveRec = null;
  h.test('a recorded session still printing when the daemon is told to stop', async () => {
    const { session, term } = await openShell(users.reader, 'out');
    liveRec = await recordingOf(users.reader, session.id);
    liveTerm = term;
    term.send('while :; do echo tick; sleep 0.01; done\r');
    await term.waitForOutput('tick\r\ntick', { timeoutMs: 10000 });
  });
  h.testCleanExit('SIGTERM with a session being recorded: exit 0 (under ASan: no leak, no report)');
  h.test('after the restart, that recording is complete and verifies', async () => {
    const pw = h.daemon.adminPassword;
    h.stopResult = null; // the next clean-exit check stops this daemon
    // From here on the cap is large: the paste below must fit whole.
    h.daemon = await startDaemon(h.dir, { adminPassword: pw, env: { BASTION_RECORDING_MAX_BYTES: String(BIG_MAX_BYTES) } });
    await signInAgain(pw);
    const meta = expectStatus(await h.admin.get(`/recordings/${liveRec}`), 200).json;
    assert.ok(meta.ended_at, JSON.stringify(meta));
    assert.ok(['complete', 'truncated'].includes(meta.state), JSON.stringify(meta));
    const { events } = parseCast(expectStatus(await h.admin.get(`/recordings/${liveRec}/cast`), 200).text);
    assert.ok(shown(events).includes('tick'), 'the output before the stop is there');
  });
  h.test('input_output: a paste larger than one message (1 MiB and more) is recorded whole', async () => {
    const { session, term } = await openShell(users.reader, 'io');
    const id = await recordingOf(users.reader, session.id);
    // Lines of 63 characters and a CR (what a terminal sends for a
    // newline), quotes and backslashes in them (they grow once escaped).
    const line = 'paste "quoted" \\back\\ ' + randomString(12);
    const lines = [];
    for (let n = 0; n < 1.3 * 1024 * 1024;) { const l = `${line}${String(n).padStart(63 - line.length, '.')}\r`; lines.push(l); n += l.length; }
    const paste = lines.join('');
    const first = Buffer.from(paste).subarray(0, 1024 * 1024); // one message: the most a message may be
    try {
      term.send('stty -echo; echo CAT$((1+1)); cat >/dev/null; stty echo; echo PASTED$((6*7))\r');
      await term.waitForOutput('CAT2', { timeoutMs: 10000 });
      term.send(first);
      term.send(Buffer.from(paste).subarray(first.length));
      term.send('\x04');
      await term.waitForOutput('PASTED42', { timeoutMs: 30000 });
    } finally { term.close(); }
    const meta = await ended(id);
    assert.equal(meta.state, 'complete', JSON.stringify(meta));
    assert.equal(meta.error, undefined, JSON.stringify(meta));
    const { events } = parseCast(expectStatus(await h.admin.get(`/recordings/${id}/cast`), 200).text);
    const input = events.filter((e) => e[1] === 'i').map((e) => e[2]).join('');
    assert.ok(input.includes(paste), `the paste (${paste.length} bytes) in the keystrokes (${input.length})`);
    assert.deepEqual(events.filter((e) => e[1] === 'm'), []);
  });

  h.test('a crash: restarted, the recording it left is interrupted, verifies, and says it ends early', async () => {
    const { session, term } = await openShell(users.reader, 'out');
    const id = await recordingOf(users.reader, session.id);
    term.send('echo CRASH$((2*3))\r');
    await term.waitForOutput('CRASH6', { timeoutMs: 10000 });
    // Stored (at most a second after it was printed): the cast has it.
    await waitFor(async () => {
      const r = await h.admin.get(`/recordings/${id}/cast`);
      return r.status === 200 && r.text.includes('CRASH6');
    }, { timeoutMs: 10000, what: 'the output stored' });
    const pw = h.daemon.adminPassword;
    h.daemon.proc.kill('SIGKILL');
    await waitFor(() => h.daemon.exit, { timeoutMs: 10000, what: 'the daemon killed' });
    term.close();
    h.stopResult = null;
    // Another port, so another instance name (host:port; the crashed
    // one's lease holds its own for 10 s): on SQLite one process at a time
    // uses the store, and what a previous run left open is closed at start
    // whatever its name (the same name: test_record, on both backends).
    h.daemon = await startDaemon(h.dir, { adminPassword: pw, env: { BASTION_RECORDING_MAX_BYTES: String(BIG_MAX_BYTES) } });
    await signInAgain(pw);
    const meta = expectStatus(await h.admin.get(`/recordings/${id}`), 200).json;
    assert.equal(meta.state, 'interrupted', JSON.stringify(meta));
    assert.ok(meta.ended_at, JSON.stringify(meta));
    assert.match(meta.error, /bastion restarted/);
    const { events } = parseCast(expectStatus(await h.admin.get(`/recordings/${id}/cast`), 200).text);
    assert.ok(shown(events).includes('CRASH6'), 'what was stored before the crash');
    const last = events[events.length - 1];
    assert.equal(last[1], 'm');
    assert.match(last[2], /ends here \(interrupted\)/);
    const audit = expectStatus(await h.admin.get('/audit?action=recording.interrupted'), 200);
    assert.ok(audit.json.value.some((x) => JSON.stringify(x).includes(id)), audit.text);
  });
  h.testCleanExit('SIGTERM again: exit 0');
  after(() => { if (liveTerm) liveTerm.close(); });
});
