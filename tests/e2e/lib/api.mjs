// A small REST client for the bastion API (docs/api.md): JSON over HTTPS,
// a cookie jar, the X-CSRF-Token header on state-changing requests, or a
// bearer token. The self-signed certificate is not verified (the daemon
// generates it into its data dir).
import https from 'node:https';
import assert from 'node:assert/strict';

const STATE_CHANGING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

export class Client {
  /**
   * @param {object} daemon from startDaemon()
   * @param {object} [opts] secrets: Secrets registry scanned on every response
   */
  constructor(daemon, { secrets = null, label = 'client', localAddress = null } = {}) {
    this.daemon = daemon;
    this.port = daemon.port;
    this.localAddress = localAddress; // the source address of its connections (e.g. 127.0.0.7)
    this.secrets = secrets;
    this.label = label;
    this.cookies = new Map(); // name -> {value, attrs: string[]}
    this.csrf = null;
    this.bearer = null;
    this.user = null;
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v.value}`).join('; ');
  }

  storeCookies(setCookie) {
    for (const sc of setCookie || []) {
      const parts = sc.split(';').map((s) => s.trim());
      const eq = parts[0].indexOf('=');
      if (eq <= 0) continue;
      const name = parts[0].slice(0, eq);
      const value = parts[0].slice(eq + 1);
      const attrs = parts.slice(1);
      const maxAge = attrs.find((a) => /^max-age=/i.test(a));
      const expires = attrs.find((a) => /^expires=/i.test(a));
      const expired = (maxAge && Number(maxAge.split('=')[1]) <= 0)
        || (expires && Date.parse(expires.slice(8)) < Date.now())
        || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, { value, attrs, raw: sc });
    }
  }

  /**
   * Send a request.
   * path: "/api/..." as is, anything else is prefixed with /api/v1.
   * opts.body: object (sent as JSON) | opts.raw: string/Buffer sent verbatim
   * opts.csrf: false to omit X-CSRF-Token; a string to send that value
   * opts.cookies: false to send no cookie; opts.bearer: override token (or false)
   * opts.origin: Origin header value; opts.headers: extra headers
   * Resolves {status, headers, text, json, ms}.
   */
  request(method, path, opts = {}) {
    const urlPath = path.startsWith('/api/') ? path : `/api/v1${path}`;
    const headers = { Accept: 'application/json', ...(opts.headers || {}) };
    let payload = null;
    if (opts.raw !== undefined) {
      payload = Buffer.isBuffer(opts.raw) ? opts.raw : Buffer.from(String(opts.raw));
    } else if (opts.body !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.body));
    }
    if (payload) {
      headers['Content-Type'] = headers['Content-Type'] || 'application/json';
      headers['Content-Length'] = payload.length;
    } else if (STATE_CHANGING.has(method)) {
      headers['Content-Length'] = 0;
    }
    if (opts.cookies !== false && this.cookies.size) headers.Cookie = this.cookieHeader();
    const bearer = opts.bearer === undefined ? this.bearer : opts.bearer;
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (STATE_CHANGING.has(method)) {
      if (typeof opts.csrf === 'string') headers['X-CSRF-Token'] = opts.csrf;
      else if (opts.csrf !== false && this.csrf) headers['X-CSRF-Token'] = this.csrf;
    }
    if (opts.origin) headers.Origin = opts.origin;
    const timeoutMs = opts.timeoutMs ?? 30000;
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
      let responded = false;
      const req = https.request({
        host: '127.0.0.1', port: this.port, method, path: urlPath, headers,
        rejectUnauthorized: false, agent: opts.agent ?? false,
        ...(this.localAddress ? { localAddress: this.localAddress } : {}),
      }, (res) => {
        responded = true;
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (e) => reject(e));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
          this.storeCookies(res.headers['set-cookie']);
          if (this.secrets) this.secrets.scan(text, `${method} ${urlPath} response (${this.label})`);
          if (this.secrets) this.secrets.scan(JSON.stringify(res.headers), `${method} ${urlPath} headers (${this.label})`);
          resolve({ status: res.statusCode, headers: res.headers, text, json, ms: Date.now() - t0 });
        });
      });
      const timer = setTimeout(() => req.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (e) => {
        // A server may answer (e.g. 413) and close before the body is sent:
        // the response, if any, wins over the write error.
        if (responded) return;
        clearTimeout(timer);
        reject(e);
      });
      if (payload) req.end(payload); else req.end();
    });
  }

  get(path, opts) { return this.request('GET', path, opts); }
  put(path, body, opts = {}) { return this.request('PUT', path, { ...opts, body }); }
  post(path, body, opts = {}) { return this.request('POST', path, { ...opts, body }); }
  del(path, opts) { return this.request('DELETE', path, opts); }

  async login(username, password) {
    if (this.secrets) this.secrets.add(password, `password of ${username}`);
    const r = await this.post('/auth/login', { username, password });
    assert.equal(r.status, 200, `login as ${username}: ${r.status} ${r.text}`);
    assert.ok(r.json && typeof r.json.csrf_token === 'string' && r.json.csrf_token.length > 0,
      `login response carries csrf_token: ${r.text}`);
    this.csrf = r.json.csrf_token;
    this.user = username;
    return r;
  }

  sessionCookie() { return this.cookies.get('__Host-bastion_session') || null; }
}

// ---- assertions ---------------------------------------------------------------

/** Assert an error answer: status, {"error":{"code","message"}} and optional message match. */
export function expectError(res, status, code, { messageIncludes, what = '' } = {}) {
  const ctx = `${what ? `${what}: ` : ''}got ${res.status} ${res.text.slice(0, 500)}`;
  assert.equal(res.status, status, `expected HTTP ${status} ${code}; ${ctx}`);
  assert.ok(res.json && typeof res.json === 'object' && res.json.error && typeof res.json.error === 'object',
    `error body is {"error":{...}}; ${ctx}`);
  assert.equal(res.json.error.code, code, `error code; ${ctx}`);
  assert.equal(typeof res.json.error.message, 'string', `error.message is a string; ${ctx}`);
  assert.ok(res.json.error.message.length > 0, `error.message is not empty; ${ctx}`);
  if (messageIncludes) {
    const wanted = Array.isArray(messageIncludes) ? messageIncludes : [messageIncludes];
    assert.ok(wanted.some((w) => res.json.error.message.includes(w)),
      `error message names ${wanted.join(' or ')}; ${ctx}`);
  }
  return res.json.error;
}

export function expectStatus(res, statuses, what = '') {
  const list = Array.isArray(statuses) ? statuses : [statuses];
  assert.ok(list.includes(res.status), `${what ? `${what}: ` : ''}expected HTTP ${list.join('/')}, got ${res.status} ${res.text.slice(0, 500)}`);
  return res;
}

// ---- topology -------------------------------------------------------------------

export const ids = {
  group: (g) => `/groups/${g}`,
  network: (g, n) => `/groups/${g}/networks/${n}`,
  nic: (g, n) => `/groups/${g}/nics/${n}`,
  vm: (g, n) => `/groups/${g}/vms/${n}`,
  bastion: (g, n) => `/groups/${g}/bastions/${n}`,
};

export async function putOk(client, id, body) {
  const r = await client.put(id, body);
  expectStatus(r, [200, 201], `PUT ${id}`);
  return r.json;
}

/**
 * The standard topology: group g, network n1 (prefix), bastion b1 serving n1,
 * and one nic+vm per entry of vms: [{name, ip, port, hostKeys}].
 */
export async function createTopology(client, { group = 'e2e', network = 'n1', prefix, bastion = 'b1', vms = [] }) {
  await putOk(client, ids.group(group), {});
  await putOk(client, ids.network(group, network), { address_prefixes: [prefix] });
  if (bastion) await putOk(client, ids.bastion(group, bastion), { networks: [ids.network(group, network)] });
  for (const vm of vms) await addVm(client, { group, network, ...vm });
  return { group, network: ids.network(group, network), bastion: bastion ? ids.bastion(group, bastion) : null };
}

export async function addVm(client, { group = 'e2e', network = 'n1', name, ip, port = 22, hostKeys }) {
  await putOk(client, ids.nic(group, `${name}-nic`), { network: ids.network(group, network), private_ip: ip });
  const body = { nic: ids.nic(group, `${name}-nic`), ssh_port: port };
  if (hostKeys) body.host_keys = hostKeys;
  return putOk(client, ids.vm(group, name), body);
}

/** POST .../connect; returns the raw response. */
export function connect(client, group, vm, body, opts) {
  return client.post(`/groups/${group}/vms/${vm}/connect`, body, opts);
}

export function passwordAuth(password) { return { type: 'password', password }; }
export function keyAuth(key, passphrase, type = 'ssh-key') {
  const a = { type, private_key: key };
  if (passphrase != null) a.passphrase = passphrase;
  return a;
}

/** Assert a 201 connect answer and return the session {id, terminal}. */
export function expectSession(res, what = 'connect') {
  assert.equal(res.status, 201, `${what}: expected 201, got ${res.status} ${res.text.slice(0, 500)}`);
  const s = res.json && res.json.session;
  assert.ok(s && typeof s.id === 'string' && s.id.length > 0, `${what}: session.id in ${res.text}`);
  assert.equal(s.terminal, `/api/v1/sessions/${s.id}/terminal`, `${what}: session.terminal`);
  return s;
}

/**
 * POST /auth/login from a chosen local source address (127.0.X.Y: the
 * throttle counts per address), outside any Client: no cookie kept. The
 * answer is scanned with h.secrets. Resolves {status, headers, text, json,
 * ms}.
 */
export function loginFrom(h, localAddress, username, password, { timeoutMs = 30000 } = {}) {
  const payload = Buffer.from(JSON.stringify({ username, password }));
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: h.daemon.port, method: 'POST', path: '/api/v1/auth/login', localAddress,
      headers: { 'Content-Type': 'application/json', 'Content-Length': payload.length },
      rejectUnauthorized: false, agent: false, timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (ch) => chunks.push(ch));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        h.secrets.scan(text, `login from ${localAddress}`);
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json, ms: Date.now() - t0 });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`login: no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(payload);
  });
}
