// A VM's page: its facts and the Connect menu, whose one entry is Bastion
// (as in the seed: Connect → Bastion → the "Connect using Bastion" form),
// and its host keys: pinned in the VM, or recorded on the first connect,
// with their fingerprints, and Forget for a Contributor (after a
// reinstall the next connect records the new key; docs/portal.md).

import { del, get } from './api.js';
import { confirmDialog } from './admin/common.js';
import { h } from './dom.js';
import { getVm } from './inventory.js';
import { can, connectRoute, vmId } from './state.js';

function hostKeysSection(group, name, signal) {
  const id = vmId(group, name);
  const path = `/groups/${encodeURIComponent(group)}/vms/${encodeURIComponent(name)}/host-keys`;
  const body = h('div', { id: 'vm-host-keys' }, h('p', { class: 'muted' }, 'Loading…'));
  const msg = h('p', { id: 'vm-host-keys-msg', role: 'status' });
  const keyList = (keys, how) => h('ul', { class: 'host-keys' }, keys.map((k) => h('li', { 'data-fingerprint': k.fingerprint },
    h('code', null, `${k.type} ${k.fingerprint}`), h('span', { class: 'muted' }, ` ${how}`))));
  async function load() {
    try {
      const hk = await get(path, { signal });
      const pinned = (hk && hk.pinned) || [];
      const recorded = (hk && hk.recorded) || [];
      const parts = [];
      if (pinned.length) {
        parts.push(keyList(pinned, 'pinned (host_keys)'));
        parts.push(h('p', { class: 'hint' }, 'Only these keys are accepted. To accept a new key, change the VM\'s host_keys.'));
      } else if (recorded.length) {
        parts.push(keyList(recorded, 'recorded on the first connect'));
        parts.push(h('p', { class: 'hint' }, 'A connect that is offered another key is refused (HostKeyMismatch). If the VM was reinstalled, forget the recorded key: the next connect records the key the VM offers then.'));
        if (can('Contributor', id)) {
          const forget = h('button', { id: 'vm-host-keys-forget', type: 'button', class: 'small' }, 'Forget recorded keys');
          forget.addEventListener('click', async () => {
            const ok = await confirmDialog(`Forget the recorded host key of ${name}? Do this only when you know why the key changed: the next connect trusts whatever key the VM offers then.`, 'Forget');
            if (!ok) return;
            try {
              await del(path);
              msg.textContent = 'Forgotten: the next connect records the key the VM offers.';
              load();
            } catch (err) {
              msg.textContent = `Could not forget the key: ${err.message}`;
            }
          });
          parts.push(h('div', { class: 'actions' }, forget));
        }
      } else {
        parts.push(h('p', { class: 'muted' }, 'None recorded yet: the first connect records the key the VM offers, and later connects must see the same key.'));
      }
      body.replaceChildren(...parts);
    } catch (err) {
      if (!signal.aborted) body.replaceChildren(h('p', { class: 'muted' }, `Could not read the host keys: ${err.message}`));
    }
  }
  load();
  return h('section', { class: 'subsection', 'aria-labelledby': 'vm-host-keys-title' },
    h('h2', { id: 'vm-host-keys-title' }, 'Host keys'), body, msg);
}

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
      hostKeysSection(group, name, controller.signal),
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
