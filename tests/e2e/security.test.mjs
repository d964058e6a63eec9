// Secrets and privileges (issue 8, item 4): the daemon started as root
// drops to server.user once the port is bound (data directory handed over
// and still writable, SIGHUP still works, no way back to root), is not
// dumpable, and keeps API tokens and passwords only as hashes in the store.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import { expectStatus } from './lib/api.mjs';
import { startDaemon } from './lib/daemon.mjs';
import { Client } from './lib/api.mjs';
import { run, isRoot, sleep, waitFor, randomString, makeTempDir } from './lib/util.mjs';

// The daemon's own choice of account (BASTION_USER unset): what an
// operator gets who names none.
const h = fileHarness({ label: 'security', daemon: true, daemonOpts: { env: { BASTION_USER: undefined } } });
// A throwaway account, created and removed by this file.
const DROP_USER = `bste2edrop${process.pid % 100000}`;

function statusOf(pid) {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k) => (new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(st) || [])[1];
  return { uid: field('Uid').split(/\s+/).map(Number), gid: field('Gid').split(/\s+/).map(Number), groups: (field('Groups') || '').trim(), capEff: field('CapEff') };
}

describe('security', () => {
  before(() => h.up(), { timeout: 60000 });
  after(() => h.down(), { timeout: 60000 });

  h.test('API tokens and passwords are stored only as hashes', async () => {
    const tok = expectStatus(await h.admin.post('/tokens', {}), 201, 'token');
    const token = tok.json.token;
    assert.ok(typeof token === 'string' && token.length >= 20, tok.text);
    h.secrets.add(token, 'API token');
    // The token works...
    const c = new Client(h.daemon, { secrets: h.secrets, label: 'bearer' });
    c.bearer = token;
    expectStatus(await c.get('/users'), 200, 'bearer works');
    // ...and neither it nor the admin password is anywhere in the store files.
    for (const f of fs.readdirSync(h.daemon.dataDir)) {
      if (!f.startsWith('bastion.db')) continue;
      const bytes = fs.readFileSync(path.join(h.daemon.dataDir, f));
      assert.equal(bytes.indexOf(Buffer.from(token)), -1, `token in ${f}`);
      assert.equal(bytes.indexOf(Buffer.from(h.daemon.adminPassword)), -1, `password in ${f}`);
    }
  });

  h.test('started as root without a bastion account and without server.user: says so loudly', async (t) => {
    if (!isRoot) { t.skip('needs root'); return; }
    const has = await run('getent', ['passwd', 'bastion'], { allowFail: true });
    if (has.code === 0) { t.skip('this machine has a bastion account: the daemon switched to it'); return; }
    assert.match(h.daemon.log(), /RUNNING AS ROOT: there is no user 'bastion'/, h.daemon.logTail(20));
  });

  h.test('started as root with --user: drops to that user after binding; data dir handed over and writable; no way back', { timeout: 90000 }, async (t) => {
    if (!isRoot) { t.skip('needs root'); return; }
    const add = await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', DROP_USER], { allowFail: true });
    if (add.code !== 0 && !/already exists/.test(add.stderr)) { t.skip(`cannot create a user: ${add.stderr}`); return; }
    const dir = makeTempDir('security-drop');
    fs.chmodSync(dir, 0o755); // the user must reach its data directory by path
    let d = null;
    try {
      d = await startDaemon(dir, { env: { BASTION_USER: DROP_USER } });
      h.secrets.add(d.adminPassword, 'admin password (dropped daemon)');
      const uid = Number((await run('id', ['-u', DROP_USER])).stdout.trim());
      const gid = Number((await run('id', ['-g', DROP_USER])).stdout.trim());
      const st = statusOf(d.pid);
      assert.deepEqual(st.uid, [uid, uid, uid, uid], `real, effective, saved, fs uid: ${JSON.stringify(st)}`);
      assert.deepEqual(st.gid, [gid, gid, gid, gid], `gids: ${JSON.stringify(st)}`);
      assert.ok(!st.groups.split(/\s+/).includes('0'), `no root group: ${st.groups}`);
      assert.equal(st.capEff, '0000000000000000', 'no capabilities');
      // Not dumpable: the kernel gives the files of /proc/PID (mem, fd,
      // status, ...) to root instead of the process's owner.
      assert.equal(fs.statSync(`/proc/${d.pid}/status`).uid, 0, '/proc/PID/status owned by root (PR_SET_DUMPABLE 0)');
      assert.equal(fs.statSync(`/proc/${d.pid}/mem`).uid, 0, '/proc/PID/mem owned by root');
      assert.match(d.log(), new RegExp(`running as user ${DROP_USER}`));
      // The data directory and what root created in it belong to the user.
      for (const f of ['.', ...fs.readdirSync(d.dataDir)]) {
        assert.equal(fs.statSync(path.join(d.dataDir, f)).uid, uid, `${f} owned by ${DROP_USER}`);
      }
      // Writes work (the store, the vault key on first use), and a restart-free reload.
      const c = new Client(d, { secrets: h.secrets, label: 'dropped' });
      await c.login('admin', d.adminPassword);
      expectStatus(await c.put('/groups/dropped', {}), [200, 201], 'write as the user');
      expectStatus(await c.put('/groups/dropped/vaults/kv', {}), [200, 201], 'vault');
      expectStatus(await c.put('/groups/dropped/vaults/kv/access-policies/user:admin', { secret_permissions: ['get', 'set'] }), [200, 201]);
      const v = `v-${randomString(12)}`;
      expectStatus(await c.put('/groups/dropped/vaults/kv/secrets/s', { value: v }), [200, 201], 'vault write');
      assert.equal(expectStatus(await c.get('/groups/dropped/vaults/kv/secrets/s'), 200).json.value, v);
      process.kill(d.pid, 'SIGHUP');
      await waitFor(() => /reload: done/.test(d.log()), { timeoutMs: 10000, what: 'reload done' });
      expectStatus(await c.get('/groups/dropped'), 200, 'after SIGHUP');
      const stop = await d.stop(10000);
      assert.equal(stop.code, 0, d.logTail(20));
      assert.doesNotMatch(d.log(), /runtime error|Sanitizer/);
      h.secrets.scan(d.log(), 'dropped daemon log');
    } finally {
      if (d) await d.stop(5000);
      fs.rmSync(dir, { recursive: true, force: true });
      await run('userdel', [DROP_USER], { allowFail: true });
    }
  });

  h.test('--user naming an account that does not exist: refuses to start', { timeout: 30000 }, async (t) => {
    if (!isRoot) { t.skip('needs root'); return; }
    const dir = makeTempDir('security-nouser');
    try {
      await assert.rejects(startDaemon(dir, { env: { BASTION_USER: `nosuch${randomString(6).toLowerCase()}` } }),
        /server\.user: there is no user/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  h.test('no password or key in any response or log line', async () => {
    await sleep(10);
    h.assertNoLeaks();
  });

  h.testCleanExit();
});
