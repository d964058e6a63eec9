// The VM list: name, group, private IP, network, last connect and a Connect
// button per VM, with a search box that filters as you type.
//
// "Last connect" is the user's own last successful connect to the VM: from
// the audit trail (GET /audit?action=connect&result=Created&principal=me)
// when the user may read it (Owner at /), otherwise from what this browser
// remembers (localStorage, times only). A VM with an open session of the
// user's (GET /sessions) shows "connected now".

import { get } from './api.js';
import { clear, debounce, h } from './dom.js';
import { listVms } from './inventory.js';
import { can, connectRoute, rememberedConnects, state, vmRoute } from './state.js';

async function lastConnects(signal) {
  const out = new Map();
  for (const [vm, ts] of Object.entries(rememberedConnects(state.user.name))) out.set(vm, { ts, from: 'browser' });
  if (can('Owner', '/')) {
    try {
      const q = new URLSearchParams({ action: 'connect', result: 'Created', principal: `user:${state.user.name}`, limit: '1000' });
      const data = await get(`/audit?${q}`, { signal });
      for (const rec of (data && data.value) || []) {
        const cur = out.get(rec.target);
        if (typeof rec.ts === 'number' && (!cur || rec.ts > cur.ts)) out.set(rec.target, { ts: rec.ts, from: 'audit' });
      }
    } catch {
      // The browser's own record is still shown.
    }
  }
  try {
    const data = await get('/sessions', { signal });
    for (const s of (data && data.value) || []) {
      if (s.user === state.user.name) {
        const cur = out.get(s.vm) || {};
        out.set(s.vm, { ...cur, ts: Math.max(cur.ts || 0, s.started_at || 0), live: true });
      }
    }
  } catch {
    // Sessions are a nicety here.
  }
  return out;
}

export function timeAgo(ts) {
  if (!ts) return '';
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ts * 1000).toLocaleDateString();
}

export function renderVmList(root) {
  document.title = 'Virtual machines · bastion';
  const controller = new AbortController();
  const status = h('p', { id: 'vm-list-status', class: 'muted', role: 'status' }, 'Loading…');
  const tbody = h('tbody');
  const table = h(
    'table',
    { id: 'vm-list', class: 'vm-table', 'aria-describedby': 'vm-list-status' },
    h('caption', { class: 'sr-only' }, 'Virtual machines you can read'),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['Name', 'Group', 'Private IP', 'Network', 'Last connect'].map((t) => h('th', { scope: 'col' }, t)),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')),
      ),
    ),
    tbody,
  );
  const search = h('input', {
    id: 'vm-search', type: 'search', placeholder: 'Search by name, group, IP or network', autocomplete: 'off',
    spellcheck: 'false', 'aria-controls': 'vm-list',
  });
  const refresh = h('button', { id: 'vm-refresh', type: 'button' }, 'Refresh');
  const title = h('h1', { tabindex: '-1' }, 'Virtual machines');

  root.appendChild(
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'card-head' }, title, refresh),
      h('div', { class: 'field search' }, h('label', { for: 'vm-search', class: 'sr-only' }, 'Search virtual machines'), search),
      status,
      h('div', { class: 'table-wrap' }, table),
    ),
  );
  title.focus();

  let all = [];
  let last = new Map();
  function show() {
    const q = search.value.trim().toLowerCase();
    const words = q.split(/\s+/).filter(Boolean);
    const shown = all.filter((vm) => words.every((w) => vm.haystack.includes(w)));
    clear(tbody);
    for (const vm of shown) tbody.appendChild(row(vm, last.get(vm.id)));
    if (all.length === 0) status.textContent = 'There are no virtual machines you can read. Ask an Owner for the Reader role on a VM.';
    else if (words.length) status.textContent = `${shown.length} of ${all.length} virtual machines match “${search.value.trim()}”`;
    else status.textContent = `${all.length} virtual machine${all.length === 1 ? '' : 's'}`;
  }
  search.addEventListener('input', debounce(show, 80));

  let generation = 0;
  async function load() {
    const mine = ++generation;
    refresh.disabled = true;
    status.textContent = 'Loading…';
    status.classList.remove('error');
    try {
      const [{ vms }, lc] = await Promise.all([listVms(controller.signal), lastConnects(controller.signal)]);
      if (mine !== generation) return;
      for (const vm of vms) {
        const nic = vm.nicInfo && vm.nicInfo.nic;
        vm.ip = nic && nic.private_ip ? nic.private_ip : '';
        vm.network = nic && nic.network ? nic.network.slice(nic.network.lastIndexOf('/') + 1) : '';
        vm.haystack = [vm.name, vm.group, vm.ip, vm.network].join(' ').toLowerCase();
      }
      all = vms;
      last = lc;
      show();
    } catch (err) {
      if (controller.signal.aborted || mine !== generation) return;
      status.textContent = `Could not load the virtual machines: ${err.message}`;
      status.classList.add('error');
    } finally {
      if (mine === generation) refresh.disabled = false;
    }
  }
  refresh.addEventListener('click', load);
  load();
  return () => controller.abort();
}

function row(vm, lc) {
  const ip = vm.ip
    ? h('code', null, vm.ip)
    : h('span', { class: 'muted', title: (vm.nicInfo && vm.nicInfo.error) || '' }, 'not readable');
  const connect = h(
    'button',
    { type: 'button', class: 'primary small', dataset: { vm: vm.id }, 'aria-label': `Connect to ${vm.name}` },
    'Connect',
  );
  connect.addEventListener('click', () => {
    location.hash = connectRoute(vm.group, vm.name);
  });
  let lastCell = h('span', { class: 'muted' }, '—');
  if (lc && lc.live) lastCell = h('span', { class: 'badge live' }, 'connected now');
  else if (lc && lc.ts) lastCell = h('time', { datetime: new Date(lc.ts * 1000).toISOString(), title: new Date(lc.ts * 1000).toLocaleString() }, timeAgo(lc.ts));
  return h(
    'tr',
    { dataset: { vmRow: vm.id } },
    h('th', { scope: 'row' }, h('a', { href: vmRoute(vm.group, vm.name) }, vm.name)),
    h('td', { 'data-label': 'Group' }, vm.group),
    h('td', { 'data-label': 'Private IP' }, ip),
    h('td', { 'data-label': 'Network' }, vm.network || h('span', { class: 'muted' }, '—')),
    h('td', { 'data-label': 'Last connect', class: 'last-connect' }, lastCell),
    h('td', { class: 'actions-cell' }, connect),
  );
}
