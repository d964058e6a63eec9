// A VM's page: its facts and the Connect menu, whose one entry is Bastion
// (as in the seed: Connect → Bastion → the "Connect using Bastion" form).

import { h } from './dom.js';
import { getVm } from './inventory.js';
import { connectRoute } from './state.js';

export function renderVmPage(root, { group, name }) {
  document.title = `${name} · bastion`;
  const controller = new AbortController();
  const facts = h('dl', { class: 'facts', id: 'vm-facts' });
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const menuButton = h('button', {
    id: 'vm-connect-menu', type: 'button', class: 'primary', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'vm-connect-items',
  }, 'Connect ▾');
  const bastionItem = h('a', { id: 'vm-connect-bastion', role: 'menuitem', href: connectRoute(group, name) }, 'Bastion');
  const menu = h('div', { id: 'vm-connect-items', class: 'menu', role: 'menu', hidden: true, 'aria-label': 'Connect' }, bastionItem);
  function setOpen(open) {
    menu.hidden = !open;
    menuButton.setAttribute('aria-expanded', String(open));
    if (open) bastionItem.focus();
  }
  menuButton.addEventListener('click', () => setOpen(menu.hidden));
  menu.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      setOpen(false);
      menuButton.focus();
    }
  });
  const onDocClick = (ev) => {
    if (!menu.hidden && !menu.contains(ev.target) && ev.target !== menuButton) setOpen(false);
  };
  document.addEventListener('click', onDocClick);

  const title = h('h1', { tabindex: '-1' }, name);
  root.appendChild(
    h(
      'section',
      { class: 'card' },
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Virtual machines'), ' / ', name),
      h('div', { class: 'card-head' }, title, h('div', { class: 'menu-wrap' }, menuButton, menu)),
      status,
      facts,
      h('p', { class: 'muted' }, 'Connect → Bastion opens an SSH session to the VM in this browser, over HTTPS. The VM needs no public IP and nothing installed but its SSH server.'),
    ),
  );
  title.focus();

  (async () => {
    try {
      const vm = await getVm(group, name, controller.signal);
      const nic = vm.nicInfo.nic;
      const fact = (k, v) => facts.appendChild(h('div', null, h('dt', null, k), h('dd', null, v)));
      fact('Group', group);
      fact('Private IP', nic && nic.private_ip ? nic.private_ip : 'not readable');
      fact('Network', nic && nic.network ? nic.network.slice(nic.network.lastIndexOf('/') + 1) : '—');
      fact('SSH port', String(vm.ssh_port || 22));
      fact('Pinned host keys', String((vm.host_keys || []).length));
      status.textContent = '';
    } catch (err) {
      if (controller.signal.aborted) return;
      status.textContent = `Could not read the VM: ${err.message}`;
      status.classList.add('error');
    }
  })();
  return () => {
    controller.abort();
    document.removeEventListener('click', onDocClick);
  };
}
