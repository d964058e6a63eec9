// A throw-away PostgreSQL cluster for one test file (scripts/pg.sh: initdb
// in a temporary directory, run as an unprivileged user when we are root,
// stopped by the PID it recorded), and SQL on it through psql.
//
//   const pg = await startPg(h.dir);      // pg.url: postgresql://bastion:PW@127.0.0.1:PORT/bastion
//   h.secrets.add(pg.password, ...);      // the URL's password must never leak
//   await startDaemon(h.dir, { store: pg.url });
//   await pg.halt(); await pg.resume();   // the store goes away and comes back
//   pg.freeze(); pg.thaw();               // it stops answering without closing (SIGSTOP)
//   await pg.query('SELECT ...')          // first column of the first row, as text
//   await pg.stop();
import fs from 'node:fs';
import path from 'node:path';
import { REPO_DIR, run, onExitCleanup, execSyncQuiet, descendantsOf, ppidOf } from './util.mjs';

const PG_SH = path.join(REPO_DIR, 'scripts', 'pg.sh');

/** The directory of PostgreSQL's binaries, or null when it is not installed. */
export function pgBinDir() {
  const root = '/usr/lib/postgresql';
  let versions = [];
  try { versions = fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb'))); } catch { /* none */ }
  versions.sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(root, versions[0], 'bin') : null;
}

/**
 * Start a cluster in DIR/pg-NAME. Resolves {url, password, port, dir, halt,
 * resume, stop, query}. Stopped at process exit if the test does not.
 */
export async function startPg(dir, name = 'main') {
  const bin = pgBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const pgDir = path.join(dir, `pg-${name}`);
  const r = await run('sh', [PG_SH, 'start', pgDir], { timeoutMs: 60000 });
  const url = r.stdout.trim();
  if (!url.startsWith('postgresql://')) throw new Error(`pg.sh start printed no URL: ${r.stderr}`);
  const u = new URL(url);
  let stopped = false;
  const signalAll = (sig) => {
    const pid = Number(fs.readFileSync(path.join(pgDir, 'pid'), 'utf8').trim());
    for (const p of [pid, ...descendantsOf(pid)]) {
      try { process.kill(p, sig); } catch { /* gone */ }
    }
  };
  const removeCleanup = onExitCleanup(() => {
    if (stopped) return;
    try { signalAll('SIGCONT'); } catch { /* no pid file */ }
    execSyncQuiet('sh', [PG_SH, 'stop', pgDir]);
  });
  const pg = {
    url,
    password: decodeURIComponent(u.password),
    port: Number(u.port),
    dir: pgDir,
    /** Stop postgres, keep its data (the store goes away). */
    async halt() { await run('sh', [PG_SH, 'halt', pgDir], { timeoutMs: 30000 }); },
    /** Start it again on the same port and data. */
    async resume() { await run('sh', [PG_SH, 'resume', pgDir], { timeoutMs: 30000 }); },
    /**
     * SIGSTOP the postmaster and its processes, by the PIDs pg.sh recorded
     * and /proc gives: connections stay open, nothing answers (a frozen
     * server; statement_timeout never fires). thaw() sends SIGCONT.
     */
    freeze() { signalAll('SIGSTOP'); },
    thaw() {
      signalAll('SIGCONT');
      // As root, postgres runs under runuser, which stops itself when its
      // child stops (as su does) and is not a descendant: it would stay
      // stopped, and never reap postgres once the cluster is stopped.
      const pid = Number(fs.readFileSync(path.join(pgDir, 'pid'), 'utf8').trim());
      const parent = ppidOf(pid);
      let comm = '';
      try { comm = fs.readFileSync(`/proc/${parent}/comm`, 'utf8').trim(); } catch { /* gone */ }
      if (comm === 'runuser') { try { process.kill(parent, 'SIGCONT'); } catch { /* gone */ } }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      removeCleanup();
      await run('sh', [PG_SH, 'stop', pgDir], { timeoutMs: 30000, allowFail: true });
    },
    /** The first column of the first row of sql, as text ('' for none). */
    async query(sql) {
      const q = await run(path.join(bin, 'psql'), ['-XAt', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql], { timeoutMs: 15000 });
      return q.stdout.split('\n')[0];
    },
  };
  return pg;
}
