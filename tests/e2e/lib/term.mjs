// WebSocket client for the terminal stream (docs/api.md "The terminal stream").
import WebSocket from 'ws';
import { withTimeout } from './util.mjs';

export const SUBPROTOCOL = 'bastion.v1';

/**
 * Try to attach to a terminal.
 * Resolves {ok: true, term} on a successful upgrade, {ok: false, status, body}
 * when the server refused the upgrade with an HTTP answer. Rejects on
 * transport errors or after timeoutMs.
 *
 * opts.origin: Origin header (default: the daemon's own; null = none)
 * opts.cookie: Cookie header (default: the client's jar)
 * opts.agent: an https.Agent whose open connection the upgrade should take
 */
export function attach(daemon, client, terminalPath, { origin, cookie, protocol = SUBPROTOCOL, timeoutMs = 10000, agent } = {}) {
  const headers = {};
  const org = origin === undefined ? daemon.origin : origin;
  if (org !== null) headers.Origin = org;
  const ck = cookie === undefined ? client.cookieHeader() : cookie;
  if (ck) headers.Cookie = ck;
  const url = `${daemon.wsBase}${terminalPath}`;
  const p = new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocol, {
      headers,
      rejectUnauthorized: false,
      handshakeTimeout: timeoutMs,
      // ws sets its own Origin only through `origin`; we pass it in headers
      perMessageDeflate: false,
      // a keep-alive agent: the upgrade goes on a connection it holds
      ...(agent ? { agent } : {}),
    });
    let settled = false;
    ws.on('unexpected-response', (req, res) => {
      // The upgrade was answered with plain HTTP: report its status (and what
      // of the body arrives within 1 s; a server need not close at once).
      const chunks = [];
      const done = () => {
        if (settled) return;
        settled = true;
        clearTimeout(bodyTimer);
        resolve({ ok: false, status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') });
        req.destroy();
      };
      const bodyTimer = setTimeout(done, 1000);
      res.on('data', (c) => chunks.push(c));
      res.on('end', done);
      res.on('error', done);
    });
    ws.on('open', () => {
      if (settled) return;
      settled = true;
      resolve({ ok: true, term: new Term(ws) });
    });
    ws.on('error', (e) => {
      if (settled) return;
      settled = true;
      reject(e);
    });
  });
  return withTimeout(p, timeoutMs + 2000, `attach ${terminalPath}`);
}

export class Term {
  constructor(ws) {
    this.ws = ws;
    this.protocol = ws.protocol;
    this.buf = Buffer.alloc(64 * 1024); // growable; output() = buf[0, length)
    this.length = 0;
    this.frames = 0;
    this.controls = [];
    this.textErrors = [];
    this.closed = null; // {code, reason}
    this.waiters = new Set();
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
        this.append(buf);
      } else {
        const s = data.toString('utf8');
        try { this.controls.push(JSON.parse(s)); } catch { this.textErrors.push(s); }
      }
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => { this.wake(); });
  }

  append(chunk) {
    if (this.length + chunk.length > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.length + chunk.length) cap *= 2;
      const next = Buffer.alloc(cap);
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    chunk.copy(this.buf, this.length);
    this.length += chunk.length;
    this.frames += 1;
  }

  wake() { for (const w of [...this.waiters]) w(); }

  /** All binary output so far, as one Buffer (a view: copy it to keep it). */
  output() { return this.buf.subarray(0, this.length); }

  text() { return this.output().toString('utf8'); }

  /** Wait until check() returns truthy; re-checked on every frame. */
  until(check, timeoutMs, what) {
    return new Promise((resolve, reject) => {
      let timer;
      const tick = () => {
        let v;
        try { v = check(); } catch (e) { cleanup(); reject(e); return; }
        if (v) { cleanup(); resolve(v); return; }
        if (this.closed && !this.closedOk) {
          // one more chance: a final frame may have satisfied check already
          cleanup();
          reject(new Error(`terminal closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}; `
            + `controls=${JSON.stringify(this.controls)} output tail=${JSON.stringify(this.text().slice(-300))}`));
        }
      };
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(tick); };
      timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; controls=${JSON.stringify(this.controls)} `
          + `output tail=${JSON.stringify(this.text().slice(-500))}`));
      }, timeoutMs);
      this.waiters.add(tick);
      tick();
    });
  }

  /** Wait for `needle` in the binary output (searched from `from`). */
  waitForOutput(needle, { timeoutMs = 10000, from = 0 } = {}) {
    const n = Buffer.from(needle);
    let pos = from; // only bytes that arrived since the last look are searched again
    return this.until(() => {
      const i = this.output().indexOf(n, pos);
      if (i >= 0) return { index: i, end: i + n.length };
      pos = Math.max(from, this.length - n.length + 1);
      return null;
    }, timeoutMs, `output ${JSON.stringify(needle)}`);
  }

  /** Wait for a control message of the given type. */
  waitForControl(type, { timeoutMs = 10000 } = {}) {
    return this.until(() => this.controls.find((c) => c && c.type === type), timeoutMs, `control message ${type}`);
  }

  /** Wait for the WebSocket to close. */
  waitClosed({ timeoutMs = 10000 } = {}) {
    this.closedOk = true;
    return this.until(() => this.closed, timeoutMs, 'websocket close');
  }

  /** Send keystrokes/bytes as a binary frame. */
  send(data) { this.ws.send(Buffer.from(data), { binary: true }); }

  sendControl(obj) { this.ws.send(JSON.stringify(obj), { binary: false }); }

  resize(cols, rows) { this.sendControl({ type: 'resize', cols, rows }); }

  close() {
    try { this.ws.close(1000); } catch { /* already */ }
    // make sure the socket goes away even if the server never answers the close
    setTimeout(() => { try { this.ws.terminate(); } catch { /* gone */ } }, 2000).unref();
  }
}
