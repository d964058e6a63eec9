// The portal: a single page with hash routes.
//   #/login                      sign-in
//   #/                           the VMs the user may read
//   #/vms/{group}/{vm}/connect   Connect using Bastion
//   #/vms/{group}/{vm}/terminal  the SSH terminal of the session just created

import { installCspShim } from './csp-shim.js';
import { ApiError, get, onUnauthenticated, post, setCsrfToken } from './api.js';
import { clear, h } from './dom.js';
import { renderLogin } from './login.js';
import { renderVmList } from './vms.js';
import { renderConnect } from './connect.js';
import { renderTerminal } from './terminal.js';
import { state } from './state.js';

installCspShim();

let app;
let header;
let disposeView = null;
let returnTo = null;
let booted = false;

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  let dec;
  try {
    dec = parts.map(decodeURIComponent);
  } catch {
    return { name: 'notfound' };
  }
  if (dec.length === 0 || (dec.length === 1 && dec[0] === 'vms')) return { name: 'vms' };
  if (dec.length === 1 && dec[0] === 'login') return { name: 'login' };
  if (dec.length === 4 && dec[0] === 'vms' && dec[3] === 'connect') return { name: 'connect', group: dec[1], vm: dec[2] };
  if (dec.length === 4 && dec[0] === 'vms' && dec[3] === 'terminal') return { name: 'terminal', group: dec[1], vm: dec[2] };
  return { name: 'notfound' };
}

function renderHeader() {
  clear(header);
  const brand = h('a', { href: '#/', class: 'brand' }, h('img', { src: '/favicon.svg', alt: '', width: '22', height: '22' }), 'bastion');
  if (!state.user) {
    header.appendChild(h('div', { class: 'bar' }, brand));
    return;
  }
  const logout = h('button', { id: 'logout', type: 'button', class: 'small' }, 'Sign out');
  logout.addEventListener('click', signOut);
  header.appendChild(
    h(
      'div',
      { class: 'bar' },
      brand,
      h('nav', { 'aria-label': 'Main' }, h('a', { href: '#/' }, 'Virtual machines')),
      h('span', { class: 'spacer' }),
      h('span', { id: 'user-name', class: 'user' }, state.user.name || ''),
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
  state.pendingSession = null;
  state.lastConnect.clear();
  if (location.hash !== '#/login') location.hash = '#/login';
  else route();
}

function route() {
  if (disposeView) {
    const d = disposeView;
    disposeView = null;
    d();
  }
  clear(app);
  const r = parseRoute();
  if (!state.user && r.name !== 'login') {
    returnTo = location.hash && location.hash !== '#/login' ? location.hash : null;
    location.replace('#/login');
    return;
  }
  if (state.user && r.name === 'login') {
    location.replace('#/');
    return;
  }
  renderHeader();
  switch (r.name) {
    case 'login':
      disposeView = renderLogin(app, {
        onSignedIn() {
          const target = returnTo && !returnTo.endsWith('/terminal') ? returnTo : '#/';
          returnTo = null;
          if (location.hash === target) route();
          else location.hash = target;
        },
      });
      break;
    case 'vms':
      disposeView = renderVmList(app);
      break;
    case 'connect':
      disposeView = renderConnect(app, { group: r.group, name: r.vm });
      break;
    case 'terminal':
      disposeView = renderTerminal(app, { group: r.group, name: r.vm });
      break;
    default:
      document.title = 'Not found · bastion';
      app.appendChild(
        h('section', { class: 'card narrow' }, h('h1', null, 'Page not found'), h('p', null, h('a', { href: '#/' }, 'Back to the virtual machines'))),
      );
  }
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
      const data = await get('/auth/session', { quiet401: true });
      setCsrfToken(data && data.csrf_token);
      state.user = (data && data.user) || null;
      break;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        state.user = null;
        break;
      }
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
