// A real HAProxy (Debian's) in front of one or more daemons, in TCP mode:
// its own config file in the test's temp dir, run in the foreground as a
// child process (never the system service), stopped by its PID.
//
//   const hp = await startHaproxy(dir, {
//     frontends: [{ name: 'v2', servers: [{ port: d.port, proxy: 'v2', source: '127.0.0.5' }] }],
//   });
//   hp.port('v2')  // where clients connect
//   await hp.stop();
//
// A server's `proxy`: 'v1' (send-proxy), 'v2' (send-proxy-v2) or null;
// `source`: the local address HAProxy connects from (so that a test can
// trust the balancer's address and not its own); `check`: true (every
// second) or an interval in ms for HAProxy's TCP health check. Balancing is round-robin
// without stickiness, as issue 15 asks of a multi-instance setup.
//
// A frontend's options for several instances (docs/scaling.md "Behind
// HAProxy"):
//   httpCheck: '/healthz'  the health check is GET /healthz over TLS
//                          (`option httpchk`, `check-ssl verify none`,
//                          `check-send-proxy` when the server gets PROXY
//                          headers): a draining instance, or one that lost
//                          its store, answers 503 and gets no new connections
//   fall, rise             checks in a row to mark a server down / up
//   redispatch: true       `option redispatch` + `retries 3`: a connection
//                          refused by a dead server is retried on another
//   backups: true          every server again as a `backup` without checks:
//                          when all are marked down (the shared store is
//                          away for all), connections still reach an
//                          instance, which answers 503 ServiceUnavailable,
//                          rather than being reset by the balancer
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { freePort, probeTcp, trackPid, untrackPid, tailFile, which, waitFor } from './util.mjs';

export function haproxyBinary() {
  return which('haproxy') || (fs.existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : null);
}

function configText(frontends) {
  const lines = [
    'global',
    '  maxconn 4096',
    '  log stderr format raw local0 info',
    'defaults',
    '  mode tcp',
    '  log global',
    '  option tcplog',
    '  timeout connect 5s',
    '  timeout client 120s',
    '  timeout server 120s',
    // A health check's TLS handshake may be slow on a loaded machine: a
    // check that times out marks a live server down (fall 1 in tests).
    '  timeout check 2s',
  ];
  for (const f of frontends) {
    lines.push(`frontend fe_${f.name}`, `  bind 127.0.0.1:${f.port}`, `  default_backend be_${f.name}`);
    lines.push(`backend be_${f.name}`, '  balance roundrobin');
    if (f.httpCheck) lines.push(`  option httpchk GET ${f.httpCheck}`);
    if (f.redispatch) lines.push('  option redispatch', '  retries 3');
    if (f.backups) lines.push('  option allbackups');
    const server = (name, s, backup) => {
      const opts = [];
      if (s.proxy === 'v1') opts.push('send-proxy');
      else if (s.proxy === 'v2') opts.push('send-proxy-v2');
      if (s.source) opts.push(`source ${s.source}`);
      if (backup) {
        opts.push('backup');
      } else if (s.check) {
        // A TCP health check (with send-proxy* it carries a header too), or
        // GET httpCheck over TLS, whose header must be asked for.
        opts.push(`check inter ${s.check === true ? 1000 : s.check}`);
        if (f.httpCheck) opts.push('check-ssl verify none', ...(s.proxy ? ['check-send-proxy'] : []));
        if (f.fall) opts.push(`fall ${f.fall}`);
        if (f.rise) opts.push(`rise ${f.rise}`);
      }
      lines.push(`  server ${name} ${s.host || '127.0.0.1'}:${s.port} ${opts.join(' ')}`.trimEnd());
    };
    f.servers.forEach((s, i) => server(`s${i + 1}`, s, false));
    if (f.backups) f.servers.forEach((s, i) => server(`b${i + 1}`, s, true));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Starts HAProxy. frontends: [{name, servers: [{host?, port, proxy?, source?,
 * check?}], httpCheck?, fall?, rise?, redispatch?, backups?}].
 * Resolves {pid, port(name), configFile, logFile, logTail(), log(), stop()}.
 */
export async function startHaproxy(dir, { frontends, label = 'haproxy' }) {
  const bin = haproxyBinary();
  if (!bin) throw new Error('haproxy is not installed (scripts/deps.sh --test installs it)');
  const fes = [];
  for (const f of frontends) fes.push({ ...f, port: f.port || await freePort('127.0.0.1') });
  const configFile = path.join(dir, `${label}.cfg`);
  const logFile = path.join(dir, `${label}.log`);
  fs.writeFileSync(configFile, configText(fes));
  const check = spawn(bin, ['-c', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const checkOut = [];
  check.stdout.on('data', (c) => checkOut.push(c));
  check.stderr.on('data', (c) => checkOut.push(c));
  const checkCode = await new Promise((r) => check.once('exit', r));
  if (checkCode !== 0) throw new Error(`haproxy -c refused ${configFile}: ${Buffer.concat(checkOut).toString()}`);
  const logFd = fs.openSync(logFile, 'a');
  // -db: stay in the foreground, no daemon; the PID is HAProxy's own.
  const proc = spawn(bin, ['-db', '-f', configFile], { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  trackPid(proc.pid);
  let exit = null;
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => { exit = { code, signal }; untrackPid(proc.pid); resolve(exit); });
    proc.once('error', (e) => { exit = { code: null, signal: null, error: e }; resolve(exit); });
  });
  const hp = {
    pid: proc.pid,
    configFile,
    logFile,
    port(name) {
      const f = fes.find((x) => x.name === name);
      if (!f) throw new Error(`no frontend ${name}`);
      return f.port;
    },
    logTail(n = 40) { return tailFile(logFile, n); },
    log() { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } },
    get exit() { return exit; },
    async stop(timeoutMs = 5000) {
      if (exit) return exit;
      try { process.kill(proc.pid, 'SIGTERM'); } catch { /* gone */ }
      let timer;
      const res = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r(null), timeoutMs); })]);
      clearTimeout(timer);
      if (!res) {
        try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
        await exited;
      }
      return exit;
    },
  };
  try {
    await waitFor(async () => {
      if (exit) throw new Error(`haproxy exited (${JSON.stringify(exit)}): ${hp.logTail()}`);
      for (const f of fes) if (!(await probeTcp('127.0.0.1', f.port, { timeoutMs: 500 }))) return false;
      return true;
    }, { timeoutMs: 10000, intervalMs: 100, what: 'haproxy listening' });
  } catch (e) {
    await hp.stop();
    throw e;
  }
  return hp;
}
