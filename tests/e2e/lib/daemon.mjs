// Start / stop `bastion serve` for one test file.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { REPO_DIR, freePort, randomString, trackPid, untrackPid, tailFile, sleep, isRoot } from './util.mjs';

export const BASTION_BIN = process.env.BASTION_BIN || path.join(REPO_DIR, 'build', 'bastion');

// What the tests dial: loopback sshds and their own 198.18.0.0/15
// namespaces, which the default destination policy refuses (docs/security.md "Destination policy").
export const TEST_DESTINATIONS = '127.0.0.0/8,198.18.0.0/15';

export function assertBinary() {
  let st;
  try {
    st = fs.statSync(BASTION_BIN);
  } catch {
    throw new Error(`bastion binary not found at ${BASTION_BIN} (build it with \`make build\`, or set BASTION_BIN)`);
  }
  if (!st.isFile()) throw new Error(`BASTION_BIN ${BASTION_BIN} is not a file`);
  try {
    fs.accessSync(BASTION_BIN, fs.constants.X_OK);
  } catch {
    throw new Error(`BASTION_BIN ${BASTION_BIN} is not executable`);
  }
}

// One GET without any client state; resolves {status, text} or rejects.
export function rawGet(port, urlPath, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: urlPath, method: 'GET', rejectUnauthorized: false, agent: false, timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Start the daemon. Resolves when /api/v1/healthz answers 200 (15 s bound).
 * @param {string} dir temp dir of the test file (data dir and logs go inside)
 */
export async function startDaemon(dir, {
  adminPassword = `Adm-${randomString(20)}`, env = {}, nofile, port: wantPort, store, dataName = 'data', logName = 'bastion',
} = {}) {
  assertBinary();
  // wantPort: a port the test picked (its configuration names it).
  const port = wantPort ?? await freePort('127.0.0.1');
  // store: a postgres:// URL (lib/pg.mjs) instead of SQLite in the data
  // directory, passed as BASTION_STORE (not in argv, where `ps` shows its
  // password); dataName and logName let several instances share dir.
  const dataDir = path.join(dir, dataName);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logFile = path.join(dir, `${logName}.stderr.log`);
  const outFile = path.join(dir, `${logName}.stdout.log`);
  const errFd = fs.openSync(logFile, 'a');
  const outFd = fs.openSync(outFile, 'a');
  // nofile: RLIMIT_NOFILE (soft and hard) of the daemon, set by prlimit,
  // which then execs it (the PID stays the daemon's).
  const argv = ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir];
  const [cmd, args] = nofile ? ['prlimit', [`--nofile=${nofile}:${nofile}`, '--', BASTION_BIN, ...argv]] : [BASTION_BIN, argv];
  const proc = spawn(cmd, args, {
    stdio: ['ignore', outFd, errFd],
    // TEST_DESTINATIONS unless the test passes its own
    // BASTION_ALLOWED_DESTINATIONS (undefined: the daemon's default).
    // As root, the daemon keeps root (BASTION_USER=root) unless the test
    // names a user or passes undefined for the daemon's own choice: a
    // machine that has a `bastion` account (the package installed, or left
    // by a run that died) would otherwise switch to it, and that account
    // cannot read the test's files.
    env: {
      BASTION_ALLOWED_DESTINATIONS: TEST_DESTINATIONS,
      ...(isRoot ? { BASTION_USER: 'root' } : {}),
      ...process.env, BASTION_ADMIN_PASSWORD: adminPassword, ...(store ? { BASTION_STORE: store } : {}), ...env,
    },
  });
  fs.closeSync(errFd);
  fs.closeSync(outFd);
  trackPid(proc.pid);
  let exit = null;
  let spawnError = null;
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => { exit = { code, signal, at: Date.now() }; untrackPid(proc.pid); resolve(exit); });
    proc.once('error', (e) => { spawnError = e; exit = exit || { code: null, signal: null, at: Date.now() }; resolve(exit); });
  });

  const d = {
    port,
    origin: `https://127.0.0.1:${port}`,
    wsBase: `wss://127.0.0.1:${port}`,
    dataDir, logFile, outFile, adminPassword, store,
    pid: proc.pid,
    proc,
    get exit() { return exit; },
    log() { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } },
    logTail(n = 60) { return tailFile(logFile, n); },
    /**
     * SIGTERM the PID we started and wait for it (bounded).
     * @returns {{code, signal, ms}} ms = time from signal to exit
     */
    async stop(timeoutMs = 10000) {
      if (exit) return { ...exit, ms: 0 };
      const t0 = Date.now();
      try { proc.kill('SIGTERM'); } catch { /* already gone */ }
      let timer;
      const res = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); })]);
      clearTimeout(timer);
      if (!res) {
        try { proc.kill('SIGKILL'); } catch { /* gone */ }
        await Promise.race([exited, sleep(3000)]);
        return { code: null, signal: 'SIGKILL', ms: Date.now() - t0, timedOut: true };
      }
      return { code: res.code, signal: res.signal, ms: res.at - t0 };
    },
  };

  const deadline = Date.now() + 15000;
  let last = 'no answer';
  for (;;) {
    if (exit) {
      const why = spawnError ? spawnError.message : `exit code ${exit.code} signal ${exit.signal}`;
      throw new Error(`bastion exited before it became healthy (${why}); stderr:\n${d.logTail(40)}`);
    }
    try {
      const r = await rawGet(port, '/api/v1/healthz', 1000);
      if (r.status === 200) break;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) {
      await d.stop(3000);
      throw new Error(`bastion not healthy within 15 s on port ${port} (last: ${last}); stderr:\n${d.logTail(40)}`);
    }
    await sleep(100);
  }
  return d;
}
