// Several instances of bastion on one PostgreSQL (issue 15, SPEC §6), for
// a test file: each with its own data directory and port, one vault master
// key for all (the first one's), an admin client signed in on each, and a
// client that goes through a load balancer instead.
//
//   const cl = cluster(h, { store: pg.url, adminPassword });
//   await cl.start('A'); await cl.start('B', { env: {...} });
//   cl.daemons.A, cl.clients.A           // the instance, admin signed in on it
//   const lb = cl.via(port);             // a "daemon" whose port is the balancer's
//   await cl.shell(cl.clients.A, cl.daemons.A, body)  // a connected, echoing terminal
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { Client, expectSession, expectStatus, connect } from './api.mjs';
import { attach } from './term.mjs';
import { startDaemon } from './daemon.mjs';
import { randomString } from './util.mjs';

export function cluster(h, { store, adminPassword }) {
  const cl = {
    daemons: {},
    clients: {},
    masterKey: null,

    /** Starts instance name (again: on the port it had, so that a balancer finds it). */
    async start(name, { env = {}, port } = {}) {
      const dir = path.join(h.dir, `inst-${name}`);
      fs.mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
      if (cl.masterKey && cl.masterKey !== path.join(dir, 'data', 'master.key')) {
        fs.copyFileSync(cl.masterKey, path.join(dir, 'data', 'master.key'));
        fs.chmodSync(path.join(dir, 'data', 'master.key'), 0o600);
      }
      const d = await startDaemon(dir, {
        adminPassword, store, port, env: { BASTION_INSTANCE_NAME: name, ...env },
      });
      cl.daemons[name] = d;
      if (!cl.masterKey) cl.masterKey = path.join(d.dataDir, 'master.key');
      const c = new Client(d, { secrets: h.secrets, label: `admin@${name}` });
      await c.login('admin', adminPassword);
      cl.clients[name] = c;
      return d;
    },

    /** What a client connects to when it goes through a balancer on port. */
    via(port) {
      const any = Object.values(cl.daemons)[0];
      return { ...any, port, origin: `https://127.0.0.1:${port}`, wsBase: `wss://127.0.0.1:${port}` };
    },

    /** The same sign-in (cookie, CSRF token) as client from, sent to target. */
    sameSignIn(from, target, label = 'admin') {
      const c = new Client(target, { secrets: h.secrets, label: `${label}->${target.port}` });
      c.cookies = from.cookies;
      c.csrf = from.csrf;
      return c;
    },

    /** GET /instances on instance on. */
    async instances(on) {
      return expectStatus(await cl.clients[on].get('/instances'), 200, `GET /instances on ${on}`).json.value;
    },
    async stateOf(on, name) {
      const i = (await cl.instances(on)).find((x) => x.name === name);
      return i ? i.state : undefined;
    },

    /** The instance that holds session id, as the registry says. */
    async holderOf(on, id) {
      const s = expectStatus(await cl.clients[on].get('/sessions'), 200).json.value.find((x) => x.id === id);
      return s ? s.instance : undefined;
    },
  };
  return cl;
}

/** Connect (client, through daemon d) and attach a terminal that echoes. */
export async function shell(client, d, group, vm, body, what = 'shell') {
  const s = expectSession(await connect(client, group, vm, body), `connect (${what})`);
  const a = await attach(d, client, s.terminal);
  assert.ok(a.ok, `attach (${what}): ${a.status} ${a.body}`);
  await echoes(a.term);
  return { session: s, term: a.term };
}

/** The terminal still runs commands. */
export async function echoes(term, timeoutMs = 10000) {
  const tag = randomString(8);
  const from = term.length;
  term.send(`echo ${tag}$((1+1))\r`);
  await term.waitForOutput(`${tag}2`, { timeoutMs, from });
}

/** Resolves fn's result and how long it took: {r, ms}. */
export async function timed(fn) {
  const t0 = Date.now();
  const r = await fn();
  return { r, ms: Date.now() - t0 };
}
