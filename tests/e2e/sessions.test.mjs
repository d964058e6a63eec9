// Sessions (issue 6): GET /sessions (own; all for an Owner of the bastion),
// DELETE /sessions/{id} by an Owner with the user told who, the idle timeout
// with its warning, the maximum duration, the per-user and per-instance
// limits (429 TooManySessions), and sessions recorded as ended after a crash.
// The limits are made small through BASTION_* variables.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import {
  expectSession, expectStatus, expectError, createTopology, addVm, connect, keyAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { startDaemon } from './lib/daemon.mjs';
import { sleep, randomString, waitFor } from './lib/util.mjs';

const h = fileHarness({
  label: 'sessions', block: 110, net: true, daemon: false, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
});
const G = 'e2e';
const LIMITS = {
  BASTION_IDLE_TIMEOUT: '4s',
  BASTION_IDLE_WARNING: '2s',
  BASTION_MAX_SESSION_DURATION: '12s',
  BASTION_MAX_SESSIONS_PER_USER: '2',
  BASTION_MAX_SESSIONS: '3',
  // Open sessions' byte counters go to the store every second (issue 19).
  BASTION_COUNTER_FLUSH: '1s',
};
const USER = 'e2esess';
const OWNER = 'e2egrpowner';
let userPw; let ownerPw;
let user; let owner;

function body(over = {}) {
  return {
    bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private), ...over,
  };
}

async function newSession(client) {
  return expectSession(await connect(client, G, 'vm1', body()), `connect as ${client.user}`);
}

async function openShell(client) {
  const s = await newSession(client);
  const a = await attach(h.daemon, client, s.terminal);
  assert.ok(a.ok, `attach: ${a.status} ${a.body}`);
  a.term.send('echo READY$((40+2))\r');
  await a.term.waitForOutput('READY42', { timeoutMs: 15000 });
  return { session: s, term: a.term };
}

let adminPassword;
async function startWithLimits() {
  h.daemon = await startDaemon(h.dir, { env: LIMITS, ...(adminPassword ? { adminPassword } : {}) });
  adminPassword = h.daemon.adminPassword;
  h.secrets.add(h.daemon.adminPassword, 'admin password');
  h.admin = h.client('admin');
  await h.admin.login('admin', h.daemon.adminPassword);
}

async function endAll(client) {
  const r = await client.get('/sessions');
  for (const s of r.json.value) await client.del(`/sessions/${s.id}`);
}

describe('sessions', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    await startWithLimits();
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm1', ip: h.net.addr(2) });
    userPw = `Sess-${randomString(16)}`;
    ownerPw = `Own-${randomString(16)}`;
    h.secrets.add(userPw, 'user password');
    h.secrets.add(ownerPw, 'owner password');
    expectStatus(await h.admin.put(`/users/${USER}`, { password: userPw }), [200, 201]);
    expectStatus(await h.admin.put(`/users/${OWNER}`, { password: ownerPw }), [200, 201]);
    // USER may connect (Reader on the group); OWNER owns the group (and so the bastion)
    expectStatus(await h.admin.put('/role-assignments/e2e-sess-reader',
      { principal: `user:${USER}`, role: 'Reader', scope: ids.group(G) }), [200, 201], 'assign Reader');
    expectStatus(await h.admin.put('/role-assignments/e2e-sess-owner',
      { principal: `user:${OWNER}`, role: 'Owner', scope: ids.group(G) }), [200, 201], 'assign Owner');
    user = h.client(USER);
    await user.login(USER, userPw);
    owner = h.client(OWNER);
    await owner.login(OWNER, ownerPw);
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('GET /sessions: own sessions with every field; bytes counted both ways', async () => {
    const { session, term } = await openShell(user);
    try {
      const r = expectStatus(await user.get('/sessions'), 200);
      assert.equal(r.json.value.length, 1, r.text);
      const s = r.json.value[0];
      assert.equal(s.id, session.id);
      assert.equal(s.user, USER);
      assert.equal(s.vm, ids.vm(G, 'vm1'));
      assert.equal(s.bastion, ids.bastion(G, 'b1'));
      assert.equal(s.target, `${h.net.addr(2)}:22`);
      assert.equal(s.source, '127.0.0.1');
      assert.equal(s.auth_type, 'ssh-key');
      assert.equal(s.state, 'attached');
      assert.ok(Number.isInteger(s.started_at) && Math.abs(s.started_at - Date.now() / 1000) < 60, r.text);
      assert.ok(Number.isInteger(s.duration_s) && s.duration_s >= 0, r.text);
      assert.ok(s.bytes_to_vm >= 'echo READY$((40+2))\r'.length, r.text);
      assert.ok(s.bytes_from_vm > 0, r.text);
    } finally {
      term.close();
    }
    await waitFor(async () => (await user.get('/sessions')).json.value.length === 0,
      { timeoutMs: 10000, what: 'the closed session leaves the list' });
  });

  h.test("another user sees only their own; an Owner of the bastion and Owner at / see everyone's", async () => {
    const a = await newSession(user);
    const b = await newSession(h.admin);
    try {
      const mine = (await user.get('/sessions')).json.value.map((s) => s.id);
      assert.deepEqual(mine, [a.id]);
      const adminSees = (await h.admin.get('/sessions')).json.value.map((s) => s.id).sort();
      assert.deepEqual(adminSees, [a.id, b.id].sort());
      const ownerSees = (await owner.get('/sessions')).json.value.map((s) => s.id).sort();
      assert.deepEqual(ownerSees, [a.id, b.id].sort(), 'Owner of the group owns its bastion');
      const st = (await user.get('/sessions')).json.value[0].state;
      assert.equal(st, 'waiting');
    } finally {
      await h.admin.del(`/sessions/${a.id}`);
      await h.admin.del(`/sessions/${b.id}`);
    }
  });

  h.test('DELETE by an Owner of the bastion: the user is told who; a stranger gets 404', async () => {
    const { session, term } = await openShell(user);
    try {
      // a user who owns nothing cannot end it, and learns nothing
      const strangerPw = `Str-${randomString(16)}`;
      h.secrets.add(strangerPw, 'stranger password');
      expectStatus(await h.admin.put('/users/e2estranger', { password: strangerPw }), [200, 201]);
      const stranger = h.client('e2estranger');
      await stranger.login('e2estranger', strangerPw);
      expectError(await stranger.del(`/sessions/${session.id}`), 404, 'ResourceNotFound');
      const from = term.length;
      term.send('echo alive-$((3+4))\r');
      await term.waitForOutput('alive-7', { from, timeoutMs: 10000 });

      expectStatus(await owner.del(`/sessions/${session.id}`), 204, 'owner disconnects');
      const msg = await term.waitForControl('closed', { timeoutMs: 10000 });
      assert.equal(msg.reason, `disconnected by ${OWNER}`);
      await term.waitClosed({ timeoutMs: 10000 });
      expectError(await owner.del(`/sessions/${session.id}`), 404, 'ResourceNotFound');
    } finally {
      term.close();
    }
  });

  h.test('idle: a warning with closes_in_s, then closed with an idle reason', { timeout: 30000 }, async () => {
    const { term } = await openShell(user);
    try {
      const t0 = Date.now();
      const warn = await term.waitForControl('warning', { timeoutMs: 8000 });
      assert.equal(typeof warn.message, 'string');
      assert.ok(warn.message.length > 0);
      assert.ok(Number.isInteger(warn.closes_in_s) && warn.closes_in_s >= 1 && warn.closes_in_s <= 2,
        JSON.stringify(warn));
      const closed = await term.waitForControl('closed', { timeoutMs: 8000 });
      assert.match(closed.reason, /idle/, JSON.stringify(closed));
      const ms = Date.now() - t0;
      assert.ok(ms >= 1000, `closed ${ms} ms after the warning wait began`);
      await term.waitClosed({ timeoutMs: 5000 });
    } finally {
      term.close();
    }
  });

  h.test('input resets the idle clock', { timeout: 30000 }, async () => {
    const { term } = await openShell(user);
    try {
      await term.waitForControl('warning', { timeoutMs: 8000 });
      term.send(' '); // a keystroke
      await sleep(3000); // past the moment the idle close was due
      assert.equal(term.closed, null, `closed despite input: ${JSON.stringify(term.controls)}`);
      term.send('\x7f');
      const closed = await term.waitForControl('closed', { timeoutMs: 10000 });
      assert.match(closed.reason, /idle/);
    } finally {
      term.close();
    }
  });

  h.test('maximum duration: closed even while typing', { timeout: 40000 }, async () => {
    const { term } = await openShell(user);
    const t0 = Date.now();
    const typer = setInterval(() => { try { term.send(' '); } catch { /* closed */ } }, 700);
    try {
      const closed = await term.waitForControl('closed', { timeoutMs: 20000 });
      assert.match(closed.reason, /maximum session duration/, JSON.stringify(closed));
      assert.ok(Date.now() - t0 >= 6000, `closed after ${Date.now() - t0} ms`);
      assert.ok(term.controls.some((c) => c.type === 'warning' && /maximum/.test(c.message)),
        `a warning came first: ${JSON.stringify(term.controls)}`);
    } finally {
      clearInterval(typer);
      term.close();
    }
  });

  h.test('limits: per user, then per instance -> 429 TooManySessions before dialling', async () => {
    await endAll(h.admin);
    const a = await newSession(user);
    const b = await newSession(user);
    try {
      expectError(await connect(user, G, 'vm1', body()), 429, 'TooManySessions', { what: 'third of the user' });
      const c = await newSession(h.admin); // 3 of 3 on the instance
      expectError(await connect(h.admin, G, 'vm1', body()), 429, 'TooManySessions', { what: 'fourth on the instance' });
      await h.admin.del(`/sessions/${c.id}`);
      // a limit refusal is audited with its code
      const au = await h.admin.get(`/audit?action=connect&result=TooManySessions&principal=${encodeURIComponent(`user:${USER}`)}`);
      expectStatus(au, 200);
      assert.ok(au.json.value.length >= 1, au.text);
      assert.equal(au.json.value[0].detail.auth_type, 'ssh-key');
    } finally {
      await h.admin.del(`/sessions/${a.id}`);
      await h.admin.del(`/sessions/${b.id}`);
    }
    // and room again once they are gone
    const d = await newSession(user);
    await user.del(`/sessions/${d.id}`);
  });

  h.test('a crash leaves no open session behind: recorded as ended "bastion restarted"', { timeout: 60000 }, async () => {
    const { session, term } = await openShell(user);
    await sleep(500); // the start is written on the worker pool
    h.daemon.proc.kill('SIGKILL');
    await term.waitClosed({ timeoutMs: 10000 }).catch(() => {});
    term.close();
    await waitFor(() => h.daemon.exit !== null, { timeoutMs: 5000, what: 'daemon gone' });
    h.secrets.scan(h.daemon.log(), 'bastion stderr log (first run)');
    await startWithLimits();
    const r = expectStatus(await h.admin.get('/audit?action=session.end'), 200);
    const rec = r.json.value.find((x) => x.detail && x.detail.session === session.id);
    assert.ok(rec, `session.end for ${session.id}: ${r.text.slice(0, 800)}`);
    assert.equal(rec.detail.reason, 'bastion restarted');
    assert.equal(rec.principal, `user:${USER}`);
    assert.ok(/session\(s\) of the previous run recorded as ended/.test(h.daemon.log()), h.daemon.logTail(20));
  });

  h.test('after kill -9 the session.end record keeps the bytes carried (counters flushed while it ran)', { timeout: 60000 }, async () => {
    // The daemon was restarted by the test before: a client of its own.
    const me = h.client(USER);
    await me.login(USER, userPw);
    const { session, term } = await openShell(me);
    // About 40 KB from the VM, then wait past a flush.
    term.send('head -c 30000 /dev/zero | od -An -v | head -c 40000; echo DONE$((6*7))\r');
    await term.waitForOutput('DONE42', { timeoutMs: 15000 });
    const carried = (await me.get('/sessions')).json.value.find((x) => x.id === session.id);
    assert.ok(carried && carried.bytes_from_vm > 30000, JSON.stringify(carried));
    await sleep(2500);
    h.daemon.proc.kill('SIGKILL');
    await term.waitClosed({ timeoutMs: 10000 }).catch(() => {});
    term.close();
    await waitFor(() => h.daemon.exit !== null, { timeoutMs: 5000, what: 'daemon gone' });
    h.secrets.scan(h.daemon.log(), 'bastion stderr log (before kill -9)');
    await startWithLimits();
    const r = expectStatus(await h.admin.get('/audit?action=session.end'), 200);
    const rec = r.json.value.find((x) => x.detail && x.detail.session === session.id);
    assert.ok(rec, `session.end for ${session.id}`);
    assert.equal(rec.detail.reason, 'bastion restarted');
    assert.ok(rec.detail.bytes_from_vm >= carried.bytes_from_vm, JSON.stringify(rec.detail));
    assert.ok(rec.detail.bytes_to_vm > 20, JSON.stringify(rec.detail));
  });

  h.test('no password or key in any response or log line', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit();
});
