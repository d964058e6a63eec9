// The REST client of the portal: same-origin JSON under /api/v1, the session
// cookie (HttpOnly, sent by the browser) and the CSRF token, which lives only
// in this module's memory and goes out as X-CSRF-Token on every request that
// changes state.

const BASE = '/api/v1';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

let csrfToken = null;
let unauthenticatedHandler = null;

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    // Seconds from a Retry-After header (429 TooManyRequests), or null.
    this.retryAfter = retryAfter;
  }
}

export function setCsrfToken(token) {
  csrfToken = typeof token === 'string' && token ? token : null;
}

// Called when the server says the sign-in is gone (401 Unauthenticated), so
// the app can show the sign-in form. Not called for 401s that are about
// something else, such as SshAuthenticationFailed from connect.
export function onUnauthenticated(fn) {
  unauthenticatedHandler = fn;
}

// Resource IDs from the server ("/groups/g/nics/n") are used as URL paths.
export function idPath(id) {
  if (typeof id !== 'string' || !/^(\/[A-Za-z0-9][A-Za-z0-9._-]*)+$/.test(id)) {
    throw new ApiError(0, 'InvalidId', `Not a resource ID: ${String(id)}`);
  }
  return id;
}

export function seg(name) {
  return encodeURIComponent(String(name));
}

export function lastSegment(id) {
  const s = String(id || '');
  return s.slice(s.lastIndexOf('/') + 1);
}

// Returns the parsed JSON body (or null when empty); throws ApiError.
// opts.signal aborts; opts.quiet401 keeps a 401 from signalling sign-out.
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (UNSAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;

  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NetworkError', 'The bastion could not be reached. Check the connection and try again.');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const ra = Number.parseInt(res.headers.get('Retry-After') || '', 10);
    const err = new ApiError(
      res.status,
      typeof e.code === 'string' ? e.code : `HTTP${res.status}`,
      typeof e.message === 'string' && e.message ? e.message : `The request failed (HTTP ${res.status}).`,
      Number.isFinite(ra) && ra >= 0 ? ra : null,
    );
    if (res.status === 401 && (!e.code || e.code === 'Unauthenticated') && !opts.quiet401 && unauthenticatedHandler) {
      unauthenticatedHandler(err);
    }
    throw err;
  }
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body, opts);
export const put = (path, body, opts) => api('PUT', path, body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

export function list(data) {
  return data && Array.isArray(data.value) ? data.value : [];
}

// Follows "next" links of paged lists.
export async function getAll(path, opts) {
  let data = await get(path, opts);
  const out = list(data);
  let guard = 0;
  while (data && typeof data.next === 'string' && data.next && guard++ < 100) {
    let next = data.next;
    if (/^https?:/i.test(next)) {
      const u = new URL(next);
      if (u.origin !== location.origin) break;
      next = u.pathname + u.search;
    }
    if (next.startsWith(BASE + '/')) next = next.slice(BASE.length);
    if (!next.startsWith('/')) break;
    data = await get(next, opts);
    out.push(...list(data));
  }
  return out;
}
