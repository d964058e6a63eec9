// Small helpers shared by the e2e harness: temp dirs, bounded waits,
// running commands, free ports, process bookkeeping and cleanup on exit.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(E2E_DIR, '..', '..');

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function randomString(n = 24) {
  // URL/shell-safe, no characters that a shell or JSON would need to escape.
  return crypto.randomBytes(n).toString('base64url').slice(0, n);
}

// Poll fn() until it returns a truthy value; throw after timeoutMs with `what`.
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const extra = lastErr ? ` (last error: ${lastErr.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${extra}`);
    }
    await sleep(intervalMs);
  }
}

// Race a promise against a timer; reject with a clear message on timeout.
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Run a command; resolve {stdout, stderr, code}; reject on non-zero unless allowFail.
export function run(cmd, args, { allowFail = false, timeoutMs = 30000, input, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env: env ?? process.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        if (err && !allowFail) {
          reject(new Error(`${cmd} ${args.join(' ')} failed (${err.code ?? err.signal}): ${String(stderr).trim() || err.message}`));
        } else {
          resolve({ stdout: String(stdout), stderr: String(stderr), code });
        }
      });
    if (input !== undefined) child.stdin.end(input);
  });
}

export function which(cmd) {
  for (const dir of (process.env.PATH || '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

// A free TCP port on host (the kernel picks it; tiny race until the user binds it).
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Resolve true when host:port accepts a TCP connection and (optionally) sends
// a banner starting with `banner` within timeoutMs.
export function probeTcp(host, port, { timeoutMs = 2000, banner } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('error', () => finish(false));
    sock.on('connect', () => { if (!banner) finish(true); });
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (banner && buf.startsWith(banner)) finish(true);
      else if (banner && buf.length >= banner.length) finish(false);
    });
  });
}

// Root directory for run artefacts. The sshd helper needs the unprivileged
// test user to read authorized_keys under it, so every ancestor must be
// traversable by others; otherwise fall back to the system temp dir.
function artefactRoot() {
  if (process.env.E2E_TMPDIR) return process.env.E2E_TMPDIR;
  const preferred = path.join(E2E_DIR, '.tmp');
  let dir = path.dirname(preferred);
  try {
    for (;;) {
      const st = fs.statSync(dir);
      if ((st.mode & 0o001) === 0) return os.tmpdir();
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
    return preferred;
  } catch {
    return os.tmpdir();
  }
}

export function makeTempDir(label) {
  const root = artefactRoot();
  fs.mkdirSync(root, { recursive: true, mode: 0o755 });
  try { fs.chmodSync(root, 0o755); } catch { /* not ours */ }
  const dir = fs.mkdtempSync(path.join(root, `${label}-${process.pid}-`));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export function tailFile(file, lines = 80) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const all = text.split('\n');
    return all.slice(-lines).join('\n');
  } catch (e) {
    return `(cannot read ${file}: ${e.message})`;
  }
}

// ---- process bookkeeping --------------------------------------------------
// Every PID this file started is recorded; on an abnormal exit we SIGKILL
// exactly those PIDs and run the registered synchronous cleanups.
const startedPids = new Set();
const syncCleanups = [];

export function trackPid(pid) { if (pid) startedPids.add(pid); }
export function untrackPid(pid) { startedPids.delete(pid); }
export function onExitCleanup(fn) { syncCleanups.push(fn); return () => { const i = syncCleanups.indexOf(fn); if (i >= 0) syncCleanups.splice(i, 1); }; }

function emergencyCleanup() {
  for (const pid of startedPids) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  startedPids.clear();
  while (syncCleanups.length) {
    const fn = syncCleanups.pop();
    try { fn(); } catch { /* best effort */ }
  }
}
process.on('exit', emergencyCleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { emergencyCleanup(); process.exit(128 + (os.constants.signals[sig] || 0)); });
}

export function execSyncQuiet(cmd, args) {
  try { execFileSync(cmd, args, { stdio: 'ignore', timeout: 10000 }); return true; } catch { return false; }
}

export function isAlive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

// Parent PID of pid from /proc (Linux), or 0.
export function ppidOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces/parens: the fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[1]);
  } catch {
    return 0;
  }
}

// All descendants of pid (children first level order), read from /proc.
export function descendantsOf(pid) {
  const children = new Map();
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    const p = Number(ent);
    const pp = ppidOf(p);
    if (!pp) continue;
    if (!children.has(pp)) children.set(pp, []);
    children.get(pp).push(p);
  }
  const out = [];
  const queue = [pid];
  while (queue.length) {
    const cur = queue.shift();
    for (const c of children.get(cur) || []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}
