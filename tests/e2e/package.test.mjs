// The Debian package (issue 19 item 5): `packaging/deb/build.sh` (what `make
// deb` runs) builds a .deb of the binary under test; dpkg -i installs it on
// this machine; the installed /usr/bin/bastion serves on a free loopback
// port with a temporary data directory (not through systemd: none runs
// here), a sign-in over HTTPS works, the process is stopped by its PID; then
// `apt-get purge` removes it, and the binary is gone while the data
// directory /var/lib/bastion is still there.
//
// Root only (dpkg). It changes /usr/bin/bastion, /etc/bastion, the
// `bastion` account and /var/lib/bastion for a few seconds. The other files
// run the build directory's binary (BASTION_BIN), but a daemon started as
// root switches to a `bastion` account when one exists, so scripts/test.sh
// runs this file alone (the marker line below). What this machine had
// before is written to a state file first, so that a run that died midway
// is undone by the next one.
// e2e: runs alone
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import { BASTION_BIN, rawGet } from './lib/daemon.mjs';
import { Client } from './lib/api.mjs';
import {
  REPO_DIR, isRoot, run, which, freePort, randomString, waitFor, trackPid, untrackPid, sleep,
} from './lib/util.mjs';

const h = fileHarness({ label: 'package', daemon: false });
const STATE = '/var/tmp/bastion-e2e-package.json';
const DATA = '/var/lib/bastion';
const MARKER = path.join(DATA, 'e2e-package-test-data');
const APT = ['-o', 'DPkg::Lock::Timeout=300', '-y', '-q'];
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

let skipWhy = null;
if (!isRoot) skipWhy = 'needs root (dpkg -i, a system user, /usr/bin)';
else if (!which('dpkg-deb') || !which('dpkg') || !which('apt-get')) skipWhy = 'needs dpkg-deb, dpkg and apt-get (Debian)';

async function installedStatus() {
  const r = await run('dpkg-query', ['-W', '-f=${Status}', 'bastion'], { allowFail: true });
  return r.code === 0 ? r.stdout.trim() : 'not-installed';
}

async function hasUser() {
  return (await run('getent', ['passwd', 'bastion'], { allowFail: true })).code === 0;
}

// Puts the machine back as the state file says it was, and forgets it.
async function undo() {
  if (!fs.existsSync(STATE)) return;
  const was = JSON.parse(fs.readFileSync(STATE, 'utf8'));
  if ((await installedStatus()) !== 'not-installed') {
    await run('dpkg', ['--purge', 'bastion'], { allowFail: true, env, timeoutMs: 120000 });
  }
  if (!was.dataExisted) fs.rmSync(DATA, { recursive: true, force: true });
  else fs.rmSync(MARKER, { force: true });
  if (!was.userExisted && await hasUser()) {
    await run('userdel', ['bastion'], { allowFail: true });
    await run('groupdel', ['bastion'], { allowFail: true });
  }
  fs.rmSync(STATE, { force: true });
}

describe('package', () => {
  before(async () => {
    if (skipWhy) return;
    await h.up();
    await undo(); // a run that died midway
    if ((await installedStatus()) !== 'not-installed') {
      skipWhy = 'a bastion package this test did not install is on this machine';
    } else if (fs.existsSync('/usr/bin/bastion')) {
      skipWhy = '/usr/bin/bastion exists and belongs to no package: not overwriting it';
    }
    if (skipWhy) return;
    fs.writeFileSync(STATE, JSON.stringify({ userExisted: await hasUser(), dataExisted: fs.existsSync(DATA) }));
  }, { timeout: 120000 });
  after(async () => {
    if (!skipWhy) await undo();
    if (h.dir) await h.down();
  }, { timeout: 180000 });

  h.test('make deb builds a package; dpkg -i installs it; it serves and signs in; apt-get purge keeps the data', { timeout: 300000 }, async (t) => {
    if (skipWhy) { t.skip(skipWhy); return; }
    const version = (await run(BASTION_BIN, ['--version'])).stdout.trim().replace(/^bastion /, '');

    // build
    const out = path.join(h.dir, 'deb');
    const built = await run(path.join(REPO_DIR, 'packaging', 'deb', 'build.sh'), [BASTION_BIN, out], { timeoutMs: 120000 });
    const deb = built.stdout.trim();
    assert.match(path.basename(deb), new RegExp(`^bastion_${version.replace(/\./g, '\\.')}_[a-z0-9]+\\.deb$`));
    const info = (await run('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Depends'])).stdout;
    assert.match(info, /^Package: bastion$/m);
    assert.match(info, new RegExp(`^Version: ${version}$`, 'm'));
    assert.match(info, /^Depends: .*libuv1 \(>= /m);

    // install
    const inst = await run('dpkg', ['-i', deb], { env, timeoutMs: 120000 });
    assert.match(inst.stdout, /systemctl enable --now bastion/);
    assert.equal(await installedStatus(), 'install ok installed');
    assert.equal((await run('/usr/bin/bastion', ['--version'])).stdout.trim(), `bastion ${version}`);
    const pw = (await run('getent', ['passwd', 'bastion'])).stdout.split(':');
    assert.ok(Number(pw[2]) < 1000, `a system account: uid ${pw[2]}`);
    assert.equal(pw[6].trim(), '/usr/sbin/nologin');
    const uid = Number(pw[2]);
    const gid = Number(pw[3]);
    let st = fs.statSync(DATA);
    assert.equal(st.mode & 0o777, 0o700, `${DATA} mode ${(st.mode & 0o777).toString(8)}`);
    assert.deepEqual([st.uid, st.gid], [uid, gid], `${DATA} belongs to bastion`);
    st = fs.statSync('/etc/bastion/bastion.conf');
    assert.equal(st.mode & 0o777, 0o640);
    assert.deepEqual([st.uid, st.gid], [0, gid], 'the config is root:bastion');
    assert.equal(fs.statSync('/etc/bastion').mode & 0o777, 0o750);
    const conffiles = (await run('dpkg-query', ['-W', '-f=${Conffiles}', 'bastion'])).stdout;
    assert.match(conffiles, /\/etc\/bastion\/bastion\.conf [0-9a-f]{32}/);
    const unit = fs.readFileSync('/lib/systemd/system/bastion.service', 'utf8');
    assert.match(unit, /^ExecStart=\/usr\/bin\/bastion serve --data \/var\/lib\/bastion$/m);
    assert.match(unit, /^ExecStartPre=\/usr\/bin\/bastion serve --check-config --data \/var\/lib\/bastion$/m);
    assert.doesNotMatch(unit, /\/usr\/local/);
    for (const doc of ['README.md', 'operations.md', 'configuration.md', 'cli.md', 'copyright']) {
      assert.ok(fs.existsSync(`/usr/share/doc/bastion/${doc}`), doc);
    }
    // the shipped configuration passes the check as the unit runs it
    const chk = await run('/usr/bin/bastion', ['serve', '--check-config', '--config', '/etc/bastion/bastion.conf', '--data', DATA],
      { allowFail: true });
    assert.equal(chk.code, 0, chk.stderr);

    // serve from the package, on a free loopback port, a temporary data dir
    const port = await freePort('127.0.0.1');
    const dataDir = path.join(h.dir, 'data');
    const adminPassword = `Adm-${randomString(20)}`;
    h.secrets.add(adminPassword, 'admin password');
    const logFile = path.join(h.dir, 'bastion.stderr.log');
    const errFd = fs.openSync(logFile, 'a');
    const proc = spawn('/usr/bin/bastion', ['serve', '--config', '/etc/bastion/bastion.conf', '--listen', `127.0.0.1:${port}`, '--data', dataDir], {
      stdio: ['ignore', 'ignore', errFd], env: { ...process.env, BASTION_ADMIN_PASSWORD: adminPassword },
    });
    fs.closeSync(errFd);
    trackPid(proc.pid);
    let exit = null;
    const exited = new Promise((r) => proc.once('exit', (code, signal) => { exit = { code, signal }; untrackPid(proc.pid); r(exit); }));
    const log = () => fs.readFileSync(logFile, 'utf8');
    try {
      await waitFor(async () => {
        if (exit) throw new Error(`bastion exited: ${JSON.stringify(exit)}\n${log()}`);
        return (await rawGet(port, '/healthz', 1000).catch(() => ({ status: 0 }))).status === 200;
      }, { timeoutMs: 20000, what: `the packaged bastion healthy on ${port}` });
      // started as root, it runs as the package's account
      const status = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, 'm'), status);
      const c = new Client({ port, origin: `https://127.0.0.1:${port}` }, { secrets: h.secrets, label: 'pkg' });
      await c.login('admin', adminPassword);
      const who = await c.get('/auth/session');
      assert.equal(who.status, 200, who.text);
    } finally {
      if (!exit) proc.kill('SIGTERM');
      const res = await Promise.race([exited, sleep(15000).then(() => null)]);
      if (!res) { proc.kill('SIGKILL'); await exited; }
      assert.deepEqual(res, { code: 0, signal: null }, log());
    }
    h.secrets.scan(log(), 'the packaged daemon log');

    // what an operator keeps in the data directory
    fs.writeFileSync(MARKER, 'operator data\n');

    // purge: binary, unit and configuration gone; the data directory kept, and said so
    const purge = await run('apt-get', ['purge', ...APT, 'bastion'], { env, timeoutMs: 180000, allowFail: true });
    assert.equal(purge.code, 0, `${purge.stdout}\n${purge.stderr}`);
    assert.match(purge.stdout, /\/var\/lib\/bastion .*is kept|is kept/);
    assert.equal(await installedStatus(), 'not-installed');
    for (const gone of ['/usr/bin/bastion', '/lib/systemd/system/bastion.service', '/etc/bastion/bastion.conf', '/etc/bastion', '/usr/share/doc/bastion']) {
      assert.ok(!fs.existsSync(gone), `${gone} removed`);
    }
    assert.ok(fs.statSync(DATA).isDirectory(), `${DATA} kept`);
    assert.equal(fs.readFileSync(MARKER, 'utf8'), 'operator data\n', 'its contents kept');
  });
});
