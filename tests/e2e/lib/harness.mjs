// Per-test-file orchestration: temp dir, test network, sshd instances,
// the daemon, an admin client, secret-leak bookkeeping and teardown.
//
// Usage in a *.test.mjs file:
//   const h = fileHarness({ label: 'connect', block: 20, net: true });
//   describe('connect', () => {
//     before(() => h.up(), { timeout: 120000 });
//     after(() => h.down(), { timeout: 60000 });
//     h.test('name', async () => { ... });
//   });
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeTempDir, randomString } from './util.mjs';
import { createNet } from './net.mjs';
import { ensureTestUser, startSshd, addAuthorizedKeys, generateKeys, KEY_SPECS } from './sshd.mjs';
import { startDaemon, assertBinary } from './daemon.mjs';
import { Client, expectStatus } from './api.mjs';
import { Secrets } from './secrets.mjs';

export function fileHarness({ label, block = 10, net = false, daemon = true, keys = false, daemonOpts = {} }) {
  const h = {
    label,
    dir: null,
    net: null,
    user: null,
    keys: {},
    sshds: [],
    daemon: null,
    admin: null,
    secrets: new Secrets(),
    failed: false,
    stopResult: null,

    async up() {
      try {
        await h.upInner();
      } catch (e) {
        h.failed = true; // keep the artefacts (daemon log, sshd logs) for a look
        throw e;
      }
    },

    async upInner() {
      if (daemon) assertBinary(); // fail fast and clearly before building anything
      h.dir = makeTempDir(label);
      if (net) {
        h.net = await createNet(block);
        h.user = await ensureTestUser();
        if (h.user.password) h.secrets.add(h.user.password, 'test user password');
      }
      if (keys) {
        h.keys = await generateKeys(h.dir, keys === true ? KEY_SPECS : keys);
        for (const k of Object.values(h.keys)) {
          h.secrets.addPrivateKey(k.private, `key ${k.id}`);
          if (k.passphrase) h.secrets.add(k.passphrase, `passphrase of ${k.id}`);
        }
        if (net) addAuthorizedKeys(h.dir, Object.values(h.keys).map((k) => k.public));
      }
      if (daemon) {
        h.daemon = await startDaemon(h.dir, daemonOpts);
        h.secrets.add(h.daemon.adminPassword, 'admin password');
        h.admin = h.client('admin');
        await h.admin.login('admin', h.daemon.adminPassword);
      }
    },

    /** A fresh API client bound to this file's daemon and secret registry. */
    client(clientLabel = 'client') {
      return new Client(h.daemon, { secrets: h.secrets, label: clientLabel });
    },

    /**
     * A new account, made by the admin (201 expected), signed in with a
     * client of its own. Its password is random and registered as a
     * secret. Resolves {name, pw, c}.
     */
    async newUser(name) {
      const pw = `Pw-${randomString(20)}`;
      h.secrets.add(pw, `password of ${name}`);
      expectStatus(await h.admin.put(`/users/${name}`, { password: pw }), 201, `create ${name}`);
      const c = h.client(name);
      await c.login(name, pw);
      return { name, pw, c };
    },

    /** Start an sshd on this file's VM address (see sshd.mjs startSshd). */
    async sshd(opts = {}) {
      const s = await startSshd(h.net, { dir: h.dir, user: h.user && h.user.name, ...opts });
      h.sshds.push(s);
      return s;
    },

    /** Stop the daemon with SIGTERM; remembers and returns {code, signal, ms}. */
    async stopDaemon() {
      if (!h.daemon) return null;
      if (!h.stopResult) h.stopResult = await h.daemon.stop(10000);
      return h.stopResult;
    },

    async down() {
      if (h.downDone) return;
      h.downDone = true;
      const errors = [];
      try { await h.stopDaemon(); } catch (e) { errors.push(e); }
      for (const s of h.sshds) {
        try { await s.stop(); } catch (e) { errors.push(e); }
      }
      if (h.net) {
        try { await h.net.destroy(); } catch (e) { errors.push(e); }
      }
      if (h.dir) {
        if (h.failed || errors.length || process.env.E2E_KEEP === '1') {
          process.stderr.write(`[e2e ${label}] artefacts kept in ${h.dir}\n`);
          if (h.daemon) process.stderr.write(`[e2e ${label}] bastion stderr tail:\n${h.daemon.logTail(80)}\n`);
        } else {
          fs.rmSync(h.dir, { recursive: true, force: true });
        }
      }
      if (errors.length) throw errors[0];
    },

    /** Assert that no secret we sent appears in a response or the daemon log. */
    assertNoLeaks() {
      assert.ok(h.daemon, 'daemon ran');
      h.secrets.scan(h.daemon.log(), 'bastion stderr log');
      try { h.secrets.scan(fs.readFileSync(h.daemon.outFile, 'utf8'), 'bastion stdout'); } catch { /* none */ }
      assert.deepEqual(h.secrets.leaks, [], `secrets leaked: ${JSON.stringify(h.secrets.leaks)}`);
    },

    /**
     * A file's last test: SIGTERM, and the daemon exits 0 by itself within
     * the stop bound, by no signal, with no sanitizer report in its log
     * (under ASan a leak fails the exit code).
     */
    testCleanExit(name = 'SIGTERM: exit 0 (under ASan: no leak)') {
      return h.test(name, { timeout: 30000 }, async () => {
        const r = await h.stopDaemon();
        assert.ok(!r.timedOut, `did not exit within 10 s of SIGTERM (killed): ${JSON.stringify(r)}`);
        assert.equal(r.signal, null, `exited by signal ${r.signal}`);
        assert.equal(r.code, 0, `${JSON.stringify(r)}\n${h.daemon.logTail(30)}`);
        assert.doesNotMatch(h.daemon.log(), /runtime error|Sanitizer/);
      });
    },

    /** node:test `it` that records failures and appends the daemon log tail to the error. */
    test(name, opts, fn) {
      if (typeof opts === 'function') { fn = opts; opts = {}; }
      return it(name, { timeout: 60000, ...opts }, async (t) => {
        try {
          await fn(t);
        } catch (e) {
          h.failed = true;
          if (h.daemon && e && typeof e === 'object') {
            const tail = `\n--- bastion stderr (last 40 lines of ${h.daemon.logFile}) ---\n${h.daemon.logTail(40)}`;
            try { e.message += tail; } catch { /* read-only */ }
            try { if (typeof e.stack === 'string') e.stack += tail; } catch { /* read-only */ }
          }
          throw e;
        }
      });
    },
  };
  // Whatever the file's own hooks do, the harness is taken down after the
  // file's last test (down() is idempotent): an sshd or daemon left running
  // keeps the file's process alive, and node --test waits for it for ever.
  after(() => h.down(), { timeout: 60000 });
  return h;
}
