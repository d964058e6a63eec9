// What the portal keeps in memory between views. Never passwords or keys:
// the connect form drops them as soon as its request has been sent.

export const state = {
  user: null, // { name } once signed in
  roles: [], // [{ role, scope }] of the signed-in user (GET /auth/session)
  // VM id -> { username, authType, bastion, vault, secret } of the last
  // connect, to prefill the form on Reconnect.
  lastConnect: new Map(),
};

const RANK = { Reader: 1, Contributor: 2, Owner: 3 };

function covers(scope, target) {
  if (scope === '/') return true;
  return target === scope || target.startsWith(`${scope}/`);
}

// The strongest role the user holds on target ('/' or an ID), or null.
export function roleOn(target) {
  let best = null;
  for (const r of state.roles) {
    if (!r || typeof r.scope !== 'string' || !RANK[r.role]) continue;
    if (covers(r.scope, target) && (!best || RANK[r.role] > RANK[best])) best = r.role;
  }
  return best;
}

export function can(role, target) {
  const have = roleOn(target);
  return !!have && RANK[have] >= RANK[role];
}

// Whether the user holds `role` (or stronger) anywhere.
export function hasAnywhere(role) {
  return state.roles.some((r) => r && RANK[r.role] >= RANK[role]);
}

export function vmId(group, name) {
  return `/groups/${group}/vms/${name}`;
}

const enc = encodeURIComponent;

export function vmRoute(group, name) {
  return `#/vms/${enc(group)}/${enc(name)}`;
}

export function connectRoute(group, name) {
  return `#/vms/${enc(group)}/${enc(name)}/connect`;
}

// The terminal of one session: the session id and the SSH username travel in
// the URL, so that a new browser tab can attach to it (the cookie is shared).
export function terminalRoute(group, name, sessionId, username) {
  return `#/vms/${enc(group)}/${enc(name)}/terminal/${enc(sessionId)}?user=${enc(username || '')}`;
}

// When this browser last connected to each VM (the audit trail is for Owners
// at / only, so the list falls back to this). Times only, nothing secret.
const LAST_KEY = 'bastion.lastConnect.v1';

export function rememberConnect(user, vm, when = Date.now()) {
  try {
    const all = JSON.parse(localStorage.getItem(LAST_KEY) || '{}');
    const mine = all[user] && typeof all[user] === 'object' ? all[user] : {};
    mine[vm] = Math.floor(when / 1000);
    all[user] = mine;
    localStorage.setItem(LAST_KEY, JSON.stringify(all));
  } catch {
    // Storage disabled or full: the list shows "—".
  }
}

export function rememberedConnects(user) {
  try {
    const all = JSON.parse(localStorage.getItem(LAST_KEY) || '{}');
    const mine = all[user];
    return mine && typeof mine === 'object' ? mine : {};
  } catch {
    return {};
  }
}

// The authentication method this browser last connected with, per user
// (the name of the method only): the connect form starts with it.
const AUTH_KEY = 'bastion.lastAuthType.v1';

export function rememberAuthType(user, type) {
  try {
    const all = JSON.parse(localStorage.getItem(AUTH_KEY) || '{}');
    all[user] = type;
    localStorage.setItem(AUTH_KEY, JSON.stringify(all));
  } catch {
    // Storage disabled or full: the form starts with its default.
  }
}

export function rememberedAuthType(user) {
  try {
    const v = JSON.parse(localStorage.getItem(AUTH_KEY) || '{}')[user];
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}
