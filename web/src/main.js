// The portal: a single page with hash routes.
//   #/login                                 sign-in
//   #/                                      the VMs the user may read
//   #/vms/{group}/{vm}                      a VM's page (Connect → Bastion)
//   #/vms/{group}/{vm}/connect              Connect using Bastion
//   #/vms/{group}/{vm}/terminal/{id}?user=U the SSH terminal of session {id}
//   #/account                               change password
//   #/sessions                              active sessions (own; all for Owners)
//   #/sessions/{id}/watch                   watch a live session (Owner, Auditor)
//   #/recordings, #/recordings/{id}         recordings and the player
//   #/admin/{users|resources|roles|vaults|audit}

import { installCspShim } from './csp-shim.js';
import { ApiError, get, onUnauthenticated, post, setCsrfToken } from './api.js';
import { clear, h } from './dom.js';
import { renderLogin } from './login.js';
import { renderMfaVerify } from './mfa.js';
import { renderVmList } from './vms.js';
import { renderVmPage } from './vm.js';
import { renderConnect } from './connect.js';
import { renderTerminal } from './terminal.js';
import { renderAccount } from './account.js';
import { renderSessions } from './admin/sessions.js';
import { renderUsers } from './admin/users.js';
import { renderResources } from './admin/resources.js';
import { renderRoles } from './admin/roles.js';
import { renderVaults } from './admin/vaults.js';
import { renderAudit } from './admin/audit.js';
import { renderRecording, renderRecordings, renderWatch } from './admin/recordings.js';
import { can, hasAnywhere, state } from './state.js';

installCspShim();

let app;
let header;
let disposeView = null;
let returnTo = null;
let booted = false;

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const pathPart = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const parts = pathPart.split('/').filter(Boolean);
  let dec;
  try {
    dec = parts.map(decodeURIComponent);
  } catch {
    return { name: 'notfound' };
  }
  if (dec.length === 0 || (dec.length === 1 && dec[0] === 'vms')) return { name: 'vms' };
  if (dec.length === 1 && ['login', 'account', 'sessions', 'recordings'].includes(dec[0])) return { name: dec[0] };
  if (dec.length === 2 && dec[0] === 'recordings') return { name: 'recording', id: dec[1] };
  if (dec.length === 3 && dec[0] === 'sessions' && dec[2] === 'watch') return { name: 'watch', session: dec[1] };
  if (dec.length === 2 && dec[0] === 'admin') return { name: `admin-${dec[1]}`, query };
  if (dec[0] === 'vms' && dec.length >= 3) {
    const r = { group: dec[1], vm: dec[2], query };
    if (dec.length === 3) return { name: 'vm', ...r };
    if (dec.length === 4 && dec[3] === 'connect') return { name: 'connect', ...r };
    if (dec.length === 5 && dec[3] === 'terminal') return { name: 'terminal', session: dec[4], ...r };
    if (dec.length === 4 && dec[3] === 'terminal') return { name: 'terminal', session: null, ...r };
  }
  return { name: 'notfound' };
}

function navItems() {
  const items = [['#/', 'Virtual machines', 'vms'], ['#/sessions', 'Sessions', 'sessions']];
  items.push(['#/admin/resources', 'Resources', 'admin-resources']);
  items.push(['#/admin/vaults', 'Vaults', 'admin-vaults']);
  if (hasAnywhere('Owner')) items.push(['#/admin/roles', 'Role assignments', 'admin-roles']);
  if (hasAnywhere('Owner') || state.roles.some((r) => r && r.role === 'Auditor')) items.push(['#/recordings', 'Recordings', 'recordings']);
  if (can('Owner', '/')) {
    items.push(['#/admin/users', 'Users', 'admin-users']);
    items.push(['#/admin/audit', 'Audit log', 'admin-audit']);
  }
  return items;
}

function renderHeader(current) {
  clear(header);
  const brand = h('a', { href: '#/', class: 'brand' }, h('img', { src: '/favicon.svg', alt: '', width: '22', height: '22' }), 'bastion');
  if (!state.user) {
    header.appendChild(h('div', { class: 'bar' }, brand));
    return;
  }
  const logout = h('button', { id: 'logout', type: 'button', class: 'small' }, 'Sign out');
  logout.addEventListener('click', signOut);
  const links = navItems().map(([href, label, name]) =>
    h('a', { href, 'aria-current': name === current || (name === 'vms' && ['vm', 'connect'].includes(current)) ? 'page' : null }, label));
  const menu = h('button', { id: 'nav-toggle', type: 'button', class: 'small nav-toggle', 'aria-expanded': 'false', 'aria-controls': 'main-nav' }, 'Menu');
  const nav = h('nav', { id: 'main-nav', 'aria-label': 'Main' }, links);
  menu.addEventListener('click', () => {
    const open = nav.classList.toggle('open');
    menu.setAttribute('aria-expanded', String(open));
  });
  header.appendChild(
    h(
      'div',
      { class: 'bar' },
      brand,
      menu,
      nav,
      h('span', { class: 'spacer' }),
      h('a', { id: 'user-name', class: 'user', href: '#/account', title: 'Your account: change password' }, state.user.name || ''),
      logout,
    ),
  );
}

async function signOut() {
  try {
    await post('/auth/logout', undefined, { quiet401: true });
  } catch {
    // Signed out locally either way.
  }
  signedOut();
}

function signedOut() {
  setCsrfToken(null);
  state.user = null;
  state.mfaPending = false;
  state.roles = [];
  state.lastConnect.clear();
  if (location.hash !== '#/login') location.hash = '#/login';
  else route();
}

// Reads who is signed in (and their role assignments). Returns false on 401.
async function loadSession() {
  try {
    const data = await get('/auth/session', { quiet401: true });
    setCsrfToken(data && data.csrf_token);
    state.user = (data && data.user) || null;
    state.roles = (data && Array.isArray(data.roles) && data.roles) || [];
    // After single sign-on (issue 18): the second step first, or
    // auth.require_mfa's enrolment.
    state.mfaPending = !!(data && data.mfa_pending);
    state.mfaEnrollmentRequired = !!(data && data.mfa_enrollment_required);
    return !!state.user;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      state.user = null;
      state.roles = [];
      return false;
    }
    throw err;
  }
}

const VIEWS = {
  vms: (r) => renderVmList(app),
  vm: (r) => renderVmPage(app, { group: r.group, name: r.vm }),
  connect: (r) => renderConnect(app, { group: r.group, name: r.vm }),
  terminal: (r) => renderTerminal(app, { group: r.group, name: r.vm, session: r.session, username: r.query.get('user') || '' }),
  account: () => renderAccount(app),
  sessions: () => renderSessions(app),
  recordings: () => renderRecordings(app),
  recording: (r) => renderRecording(app, { id: r.id }),
  watch: (r) => renderWatch(app, { session: r.session }),
  'admin-users': () => renderUsers(app),
  'admin-resources': (r) => renderResources(app, r.query),
  'admin-roles': (r) => renderRoles(app, r.query),
  'admin-vaults': (r) => renderVaults(app, r.query),
  'admin-audit': (r) => renderAudit(app, r.query),
};

function route() {
  if (disposeView) {
    const d = disposeView;
    disposeView = null;
    d();
  }
  clear(app);
  const r = parseRoute();
  if (state.user && state.mfaPending) {
    // The provider signed the user in; bastion's own code is still due.
    clear(header);
    disposeView = renderMfaVerify(app, {
      async onVerified() {
        state.mfaPending = false;
        try {
          await loadSession();
        } catch {
          // The roles stay empty: only the pages every user has are offered.
        }
        const target = r.name === 'login' ? '#/' : location.hash || '#/';
        if (location.hash === target) route();
        else location.hash = target;
      },
      onSignOut: signOut,
    });
    return;
  }
  if (!state.user && r.name !== 'login') {
    returnTo = location.hash && location.hash !== '#/login' ? location.hash : null;
    location.replace('#/login');
    return;
  }
  if (state.user && r.name === 'login') {
    location.replace('#/');
    return;
  }
  if (state.user && state.mfaEnrollmentRequired && r.name !== 'account') {
    // auth.require_mfa (a single sign-on lands here too): enrol first.
    location.replace('#/account');
    return;
  }
  renderHeader(r.name);
  if (r.name === 'login') {
    disposeView = renderLogin(app, {
      async onSignedIn() {
        try {
          await loadSession();
        } catch {
          // The roles stay empty: only the pages every user has are offered.
        }
        // auth.require_mfa: a user without a second factor enrols first.
        const target = state.mfaEnrollmentRequired ? '#/account' : returnTo || '#/';
        returnTo = null;
        if (location.hash === target) route();
        else location.hash = target;
      },
    });
    return;
  }
  const view = VIEWS[r.name];
  if (view) {
    disposeView = view(r) || null;
    return;
  }
  document.title = 'Not found · bastion';
  app.appendChild(
    h('section', { class: 'card narrow' }, h('h1', null, 'Page not found'), h('p', null, h('a', { href: '#/' }, 'Back to the virtual machines'))),
  );
}

async function boot() {
  app = document.getElementById('app');
  header = document.getElementById('header');
  onUnauthenticated(() => {
    if (state.user) signedOut();
  });
  window.addEventListener('hashchange', () => {
    if (booted) route();
  });
  app.appendChild(h('p', { class: 'muted loading', role: 'status' }, 'Loading…'));
  for (;;) {
    try {
      await loadSession();
      break;
    } catch (err) {
      // The server is unreachable or failing: say so and offer a retry.
      clear(app);
      const retry = h('button', { type: 'button', class: 'primary' }, 'Try again');
      app.appendChild(
        h('section', { class: 'card narrow' }, h('h1', null, 'The bastion is not answering'), h('p', { class: 'error' }, err.message), retry),
      );
      retry.focus();
      await new Promise((resolve) => retry.addEventListener('click', resolve, { once: true }));
      clear(app);
    }
  }
  booted = true;
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
