// Several event loops (server.loops, docs/decisions.md "One loop per core,
// a descriptor table per loop"): loop 0 accepts every connection and deals
// it to the loop with the fewest; a session lives on the loop that took its
// connect, and an attach or a disconnect that arrives on another loop moves
// its connection there. Each loop thread has a descriptor table of its own,
// so one instance holds more sockets than RLIMIT_NOFILE lets one table hold.
//
// The daemon runs with two loops and RLIMIT_NOFILE at 96 (prlimit): at
// start each table holds about 25 descriptors (stdio, the store, the
// loops' wake-ups), and a session costs two (browser, VM).
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import { fileHarness } from './lib/harness.mjs';
import {
  expectSession, expectStatus, createTopology, addVm, connect, keyAuth, ids,
} from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { waitFor } from './lib/util.mjs';

const NOFILE = 96;
const MANY = 44; // 88 sockets: more than one table of 96 can hold beside its ~25

const h = fileHarness({
  label: 'loops',
  block: 180,
  net: true,
  keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
  daemonOpts: {
    nofile: NOFILE,
    env: { BASTION_LOOPS: '2', BASTION_MAX_SESSIONS_PER_USER: '200' },
  },
});
const G = 'e2e';

function body() {
  return {
    bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private), cols: 80, rows: 24,
  };
}

async function metric(name) {
  const r = expectStatus(await h.admin.get('/metrics'), 200);
  const line = r.text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in GET /metrics`);
  return Number(line.split(' ')[1]);
}

async function echo(term, tag) {
  term.send(`echo ${tag}$((6*7))\r`);
  await term.waitForOutput(`${tag}42`, { timeoutMs: 20000 });
}

// The daemon's descriptor tables: thread id -> the set of its sockets. Threads
// that share a table (the main thread and libuv's workers) show the same set.
function socketTables(pid) {
  const tables = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let links = [];
    try {
      links = fs.readdirSync(`/proc/${pid}/task/${tid}/fd`).map((fd) => {
        try { return fs.readlinkSync(`/proc/${pid}/task/${tid}/fd/${fd}`); } catch { return ''; }
      });
    } catch { continue; }
    const sockets = links.filter((l) => l.startsWith('socket:')).sort();
    tables.set(sockets.join(','), sockets.length);
  }
  return [...tables.values()];
}

describe('loops', () => {
  before(async () => {
    await h.up();
    await h.sshd({ name: 'vm1', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm1', ip: h.net.addr(2) });
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('two loops; an attach that arrives on the other loop moves there, both ways', async () => {
    assert.equal(await metric('bastion_event_loops'), 2);
    const moved0 = await metric('bastion_connections_moved_total');
    // One keep-alive connection each: loop 0 deals the first to itself (a
    // tie) and the second to loop 1 (the first is still open on loop 0).
    const agents = [0, 1].map(() => new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false }));
    try {
      for (const agent of agents) expectStatus(await h.admin.get('/healthz', { agent }), 200);
      const s = [];
      for (const agent of agents) s.push(expectSession(await connect(h.admin, G, 'vm1', body(), { agent }), 'connect'));
      // Each terminal is asked for on the other session's connection.
      const a1 = await attach(h.daemon, h.admin, s[1].terminal, { agent: agents[0] });
      const a0 = await attach(h.daemon, h.admin, s[0].terminal, { agent: agents[1] });
      assert.ok(a0.ok && a1.ok, `attach: ${a0.status} ${a1.status}`);
      await echo(a0.term, 'ZERO');
      await echo(a1.term, 'ONE');
      assert.equal(await metric('bastion_connections_moved_total') - moved0, 2);
      // Both listed, whichever loop answers; a disconnect of each, asked
      // on a fresh connection, reaches its loop.
      const listed = expectStatus(await h.admin.get('/sessions'), 200).json.value.map((x) => x.id);
      for (const x of s) assert.ok(listed.includes(x.id), `${x.id} listed`);
      for (const x of s) expectStatus(await h.admin.del(`/sessions/${x.id}`), 204);
      for (const a of [a0, a1]) {
        assert.equal((await a.term.waitForControl('closed')).reason, 'disconnected by admin');
        await a.term.waitClosed();
      }
    } finally {
      for (const agent of agents) agent.destroy();
    }
  });

  h.test(`${MANY} sessions: more sockets than one descriptor table of ${NOFILE} holds; every one answers`, { timeout: 240000 }, async () => {
    const terms = [];
    try {
      for (let i = 0; i < MANY; i++) {
        const s = expectSession(await connect(h.admin, G, 'vm1', body(), { timeoutMs: 30000 }), `connect ${i}`);
        const a = await attach(h.daemon, h.admin, s.terminal);
        assert.ok(a.ok, `attach ${i}: ${a.status} ${a.body}`);
        terms.push(a.term);
      }
      for (let i = 0; i < terms.length; i++) await echo(terms[i], `S${i}X`);
      const tables = socketTables(h.daemon.pid);
      const total = tables.reduce((a, b) => a + b, 0);
      assert.ok(tables.length >= 2, `separate descriptor tables: ${JSON.stringify(tables)}`);
      assert.ok(total >= 2 * MANY, `sockets held: ${total} in tables ${JSON.stringify(tables)}`);
      assert.ok(Math.max(...tables) < NOFILE - 20, `each table has room left: ${JSON.stringify(tables)}`);
      expectStatus(await h.admin.get('/healthz'), 200);
    } finally {
      for (const t of terms) t.close();
    }
    await waitFor(async () => expectStatus(await h.admin.get('/sessions'), 200).json.value.length === 0,
      { timeoutMs: 20000, what: 'every session ended' });
  });

  h.test('no password or key in any response or log line', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit('SIGTERM: exit 0 with both loops drained (under ASan: no leak)');
});
