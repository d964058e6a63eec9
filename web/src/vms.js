// The VM list: name, group, private IP and a Connect button per VM.

import { h, clear } from './dom.js';
import { listVms } from './inventory.js';
import { connectRoute } from './state.js';

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
        h('th', { scope: 'col' }, 'Name'),
        h('th', { scope: 'col' }, 'Group'),
        h('th', { scope: 'col' }, 'Private IP'),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')),
      ),
    ),
    tbody,
  );
  const refresh = h('button', { id: 'vm-refresh', type: 'button' }, 'Refresh');
  const title = h('h1', { tabindex: '-1' }, 'Virtual machines');

  root.appendChild(
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'card-head' }, title, refresh),
      status,
      h('div', { class: 'table-wrap' }, table),
    ),
  );
  title.focus();

  let generation = 0;
  async function load() {
    const mine = ++generation;
    refresh.disabled = true;
    status.textContent = 'Loading…';
    status.classList.remove('error');
    try {
      const { vms } = await listVms(controller.signal);
      if (mine !== generation) return;
      clear(tbody);
      for (const vm of vms) tbody.appendChild(row(vm));
      status.textContent =
        vms.length === 0
          ? 'There are no virtual machines you can read. Ask an Owner for the Reader role on a VM.'
          : `${vms.length} virtual machine${vms.length === 1 ? '' : 's'}`;
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

function row(vm) {
  const nic = vm.nicInfo && vm.nicInfo.nic;
  const ip = nic && nic.private_ip
    ? h('code', null, nic.private_ip)
    : h('span', { class: 'muted', title: (vm.nicInfo && vm.nicInfo.error) || '' }, 'not readable');
  const connect = h(
    'button',
    { type: 'button', class: 'primary small', dataset: { vm: vm.id }, 'aria-label': `Connect to ${vm.name}` },
    'Connect',
  );
  connect.addEventListener('click', () => {
    location.hash = connectRoute(vm.group, vm.name);
  });
  return h(
    'tr',
    { dataset: { vmRow: vm.id } },
    h('th', { scope: 'row' }, vm.name),
    h('td', { 'data-label': 'Group' }, vm.group),
    h('td', { 'data-label': 'Private IP' }, ip),
    h('td', { class: 'actions-cell' }, connect),
  );
}
