// The bench workloads against the peers: WeTTY (socket.io over WebSocket)
// and Shell In A Box (HTTP long polling). W1 echo, W2 bulk, W4 connect, and
// N idle sessions for memory. Prints one JSON object like bclient. Node is
// not the bottleneck: both peers put an `ssh` process under a pty per
// session, and their figures are far from this client's sub-millisecond
// overhead (BENCHMARKS.md shows both).
//
// node peer-client.mjs wetty|sib URL BASE WORK [--samples N] [--sessions N] [--pid PID] [--cmd LINE] [--timeout S]
import { io } from 'socket.io-client';
import fs from 'node:fs';
import http from 'node:http';

const [peer, url, base, work, ...rest] = process.argv.slice(2);
const opt = { samples: 500, warmup: 50, sessions: 1, pid: 0, cmd: '', timeout: 120, gap: 10 };
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
for (const k of ['samples', 'warmup', 'sessions', 'pid', 'timeout', 'gap']) opt[k] = Number(opt[k]);
const cmd = String(opt.cmd).replace(/\\r/g, '\r');
const result = { work, path: peer };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const timer = setTimeout(() => { result.ok = false; result.error = 'timeout'; done(1); }, opt.timeout * 1000);

function done(code) {
  console.log(JSON.stringify(result));
  process.exit(code);
}

function descendants(pid) {
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(kids.get(out[i]) || []));
  return out;
}

function memOf(pid) {
  let rss = 0; let pss = 0;
  for (const p of descendants(pid)) {
    try {
      const s = fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      rss += Number(/^Rss:\s+(\d+)/m.exec(s)[1]);
      pss += Number(/^Pss:\s+(\d+)/m.exec(s)[1]);
    } catch { /* gone */ }
  }
  return { rss, pss };
}

let lastSess = null;
class Sess {
  constructor() {
    lastSess = this;
    this.buf = '';
    this.waiters = [];
    this.t0 = now();
    this.tFirst = 0;
    this.bytes = 0;
    this.closed = false;
    if (peer === 'wetty') {
      this.sock = io(url, { path: `${base}/socket.io`, transports: ['websocket'], forceNew: true, reconnection: false });
      this.sock.on('data', (d) => {
        this.sock.emit('commit', d.length);
        this.onData(d);
      });
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
      this.post('width=120&height=40&rooturl=' + encodeURIComponent(url + base)).then((j) => {
        this.sid = j.session;
        if (j.data) this.onData(j.data);
        for (const k of this.queued || []) this.send(k);
        this.poll();
      }).catch(() => {});
    }
  }
  onData(d) {
    if (!d) return;
    if (!this.tFirst) this.tFirst = now();
    this.bytes += d.length;
    // Predicates see the new bytes joined to the tail of the old ones, so a
    // marker split across two messages is still found.
    this.joined = this.buf + d;
    this.buf = this.joined.slice(-64);
    for (const w of [...this.waiters]) w(d);
  }
  post(body) {
    return new Promise((resolve, reject) => {
      const req = http.request(url + base, { method: 'POST', agent: this.agent,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const t = Buffer.concat(chunks).toString('utf8');
          try { resolve(JSON.parse(t)); } catch { resolve({}); }
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }
  async poll() {
    while (!this.closed) {
      try {
        const j = await this.post(`width=120&height=40&session=${this.sid}`);
        if (j.data) this.onData(j.data);
        if (!j.session) return;
      } catch { return; }
    }
  }
  send(s) {
    if (peer === 'wetty') { this.sock.emit('input', s); return; }
    if (!this.sid) { (this.queued = this.queued || []).push(s); return; }
    this.post(`width=120&height=40&session=${this.sid}&keys=${Buffer.from(s, 'utf8').toString('hex').toUpperCase()}`).catch(() => {});
  }
  waitFor(pred, ms = 30000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== f); reject(new Error('wait timeout')); }, ms);
      const f = (d) => {
        if (pred(d)) { clearTimeout(t); this.waiters = this.waiters.filter((x) => x !== f); resolve(now()); }
      };
      this.waiters.push(f);
      if (pred('')) f('');
    });
  }
  // Waits for the shell's prompt, types line, waits for READYX (typing it
  // again every 3 s: a peer may drop what arrives before its pty is up).
  async ready(line) {
    await this.waitFor(() => this.tFirst > 0 && this.buf.includes('$ '));
    for (let i = 0; ; i++) {
      this.send(line);
      try {
        await this.waitFor(() => (this.joined || '').includes('READYX'), 3000);
        return;
      } catch (e) {
        if (i >= 5) throw e;
      }
    }
  }
  close() {
    this.closed = true;
    if (this.sock) this.sock.close();
    if (this.agent) this.agent.destroy();
  }
}

const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p / 100 * s.length) - 1))]; };

try {
  if (work === 'echo') {
    const s = new Sess();
    await s.ready('stty -icanon; echo READY""X; cat >/dev/null\r');
    const lat = [];
    for (let i = 0; i < opt.warmup + opt.samples; i++) {
      const k = String.fromCharCode(97 + (i % 26));
      const p = s.waitFor((d) => d.includes(k));
      const t = now();
      s.send(k);
      const t1 = await p;
      if (i >= opt.warmup) lat.push(t1 - t);
      await sleep(opt.gap * (0.5 + Math.random()));
    }
    Object.assign(result, { echo_n: lat.length, echo_p50_ms: pct(lat, 50), echo_p99_ms: pct(lat, 99), echo_max_ms: pct(lat, 100) });
    s.close();
  } else if (work === 'bulk') {
    const s = new Sess();
    await s.ready('echo READY""X\r');
    s.bytes = 0;
    const p = s.waitFor(() => (s.joined || '').includes('BENCH_DONE'), 170000);
    const t = now();
    s.send(cmd);
    const t1 = await p;
    Object.assign(result, { bytes: s.bytes, seconds: (t1 - t) / 1000, mib_s: s.bytes / 1048576 / ((t1 - t) / 1000) });
    s.close();
  } else if (work === 'connect') {
    const v = [];
    for (let i = 0; i < opt.samples; i++) {
      const s = new Sess();
      await s.waitFor(() => s.tFirst > 0);
      v.push(s.tFirst - s.t0);
      s.close();
      await sleep(100);
    }
    Object.assign(result, { connect_n: v.length, connect_p50_ms: pct(v, 50), connect_p99_ms: pct(v, 99) });
  } else if (work === 'hold') {
    const m0 = memOf(opt.pid);
    const all = [];
    for (let i = 0; i < opt.sessions; i += 8) {
      const batch = [];
      for (let j = i; j < Math.min(opt.sessions, i + 8); j++) {
        const s = new Sess();
        all.push(s);
        batch.push(s.ready('echo READY""X\r'));
      }
      await Promise.all(batch);
    }
    await sleep(3000);
    const m1 = memOf(opt.pid);
    Object.assign(result, {
      sessions: opt.sessions, rss_before_kib: m0.rss, rss_idle_kib: m1.rss,
      kib_per_session: (m1.rss - m0.rss) / opt.sessions, pss_kib_per_session: (m1.pss - m0.pss) / opt.sessions,
    });
    for (const s of all) s.close();
  }
  result.ok = true;
  clearTimeout(timer);
  done(0);
} catch (e) {
  result.ok = false;
  result.error = `${e.message} (last output ${JSON.stringify(lastSess?.buf ?? '')}, ${lastSess?.bytes ?? 0} bytes)`;
  clearTimeout(timer);
  done(1);
}
