// The "Connect using Bastion" form of one VM (SPEC §2): bastion, username and
// one of the authentication methods, then POST .../connect. Passwords, keys
// and passphrases are read from the form only when the request is built and
// are cleared from the form and the request object as soon as it is sent.

import { answerChallenges } from './challenge.js';
import { ApiError, post, seg } from './api.js';
import { field, h } from './dom.js';
import { explain } from './errors.js';
import { getVm, listBastions, listGroups, listableVaults } from './inventory.js';
import { rememberAuthType, rememberConnect, rememberedAuthType, state, terminalRoute, vmId, vmRoute } from './state.js';
import { estimateTerminalSize } from './terminal.js';

const MAX_KEY_BYTES = 16 * 1024;

const AUTH_TYPES = [
  ['password', 'Password'],
  ['ssh-key', 'SSH Private Key'],
  ['ssh-key-file', 'SSH Private Key from Local File'],
  ['vault-key', 'SSH Private Key from Vault'],
];

function readFileText(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(new Error('The file could not be read.'));
    r.readAsText(file);
  });
}

function option(value, label, selected) {
  return h('option', { value, selected: !!selected }, label);
}

export function renderConnect(root, { group, name }) {
  document.title = `Connect to ${name} · bastion`;
  const controller = new AbortController();
  const signal = controller.signal;
  const id = vmId(group, name);
  const prefill = state.lastConnect.get(id) || {};
  // The method: the one used for this VM in this tab, else the one this
  // browser last connected with, else a key from a vault when one is
  // offered (below, once the vaults are known; the demo VM takes keys
  // only), else Password.
  const remembered = rememberedAuthType(state.user.name);
  const known = (t) => AUTH_TYPES.some(([v]) => v === t);
  const initialAuth = known(prefill.authType) ? prefill.authType : known(remembered) ? remembered : null;
  let authTouched = false;

  // Fields.
  const bastion = h('select', { id: 'connect-bastion', name: 'bastion' }, option('', 'Loading…'));
  const username = h('input', {
    id: 'connect-username', name: 'username', type: 'text', required: true, autocomplete: 'username',
    autocapitalize: 'none', spellcheck: 'false', value: prefill.username || '',
  });
  const authType = h(
    'select',
    { id: 'connect-auth-type', name: 'auth-type' },
    AUTH_TYPES.map(([v, label]) => option(v, label, v === (initialAuth || 'password'))),
  );
  const password = h('input', { id: 'connect-password', name: 'password', type: 'password', autocomplete: 'current-password' });
  const key = h('textarea', {
    id: 'connect-key', name: 'private-key', rows: '8', spellcheck: 'false', autocomplete: 'off',
    autocapitalize: 'none', placeholder: '-----BEGIN RSA PRIVATE KEY-----',
  });
  const keyFile = h('input', { id: 'connect-key-file', name: 'private-key-file', type: 'file' });
  const vault = h('select', { id: 'connect-vault', name: 'vault' }, option('', 'Loading…'));
  const secret = h('select', { id: 'connect-secret', name: 'secret' }, option('', 'Select a vault first'));
  const secretVersion = h('input', { id: 'connect-secret-version', name: 'secret-version', type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const passphrase = h('input', { id: 'connect-passphrase', name: 'passphrase', type: 'password', autocomplete: 'off' });
  const newTab = h('input', { id: 'connect-new-tab', name: 'new-tab', type: 'checkbox' });
  const error = h('p', { id: 'connect-error', class: 'error', role: 'alert' });
  const note = h('p', { id: 'connect-note', class: 'success', role: 'status' });
  const submit = h('button', { id: 'connect-submit', type: 'submit', class: 'primary' }, 'Connect');

  const groups = {
    password: h('div', { class: 'auth-group' }, field('Password', password)),
    'ssh-key': h('div', { class: 'auth-group' }, field('SSH Private Key', key, 'Paste the private key (PEM RSA, OpenSSH or PKCS#8).')),
    'ssh-key-file': h('div', { class: 'auth-group' }, field('SSH Private Key from Local File', keyFile, 'The file is read in the browser and sent once to the bastion.')),
    'vault-key': h(
      'div',
      { class: 'auth-group' },
      field('Vault', vault, 'Vaults whose access policy gives you "list" on secrets. Connecting also needs "get".'),
      field('Secret', secret, 'The secret that holds the private key. The bastion reads it; it never reaches the browser.'),
      field('Secret version (optional)', secretVersion, 'Leave empty for the latest version.'),
    ),
  };
  const passphraseGroup = h('div', { class: 'auth-group' }, field('Passphrase (optional)', passphrase, 'Only for an encrypted private key.'));
  const bastionHint = h('p', { class: 'hint', id: 'connect-bastion-hint' });
  bastion.setAttribute('aria-describedby', bastionHint.id);

  function showAuth() {
    const t = authType.value;
    for (const [k, el] of Object.entries(groups)) {
      const on = k === t;
      el.hidden = !on;
      for (const c of el.querySelectorAll('input, textarea, select')) c.disabled = !on;
    }
    passphraseGroup.hidden = t === 'password';
    passphrase.disabled = t === 'password';
    password.required = t === 'password';
    key.required = t === 'ssh-key';
    keyFile.required = t === 'ssh-key-file';
    vault.required = t === 'vault-key';
    secret.required = t === 'vault-key';
  }
  authType.addEventListener('change', () => {
    authTouched = true;
    error.textContent = '';
    showAuth();
  });
  showAuth();

  const facts = h('dl', { class: 'facts' });
  function fact(label, value) {
    facts.appendChild(h('div', null, h('dt', null, label), h('dd', null, value)));
  }

  const form = h(
    'form',
    { id: 'connect-form', class: 'stack', 'aria-labelledby': 'connect-title' },
    h('div', { class: 'field' }, h('label', { for: 'connect-bastion' }, 'Bastion'), bastion, bastionHint),
    field('Username', username),
    field('Authentication Type', authType),
    Object.values(groups),
    passphraseGroup,
    h('div', { class: 'check' }, newTab, h('label', { for: 'connect-new-tab' }, 'Open in new browser tab')),
    error,
    note,
    h('div', { class: 'actions' }, submit, h('a', { href: '#/', class: 'button', id: 'connect-cancel' }, 'Cancel')),
  );

  const title = h('h1', { id: 'connect-title', tabindex: '-1' }, `Connect to ${name} using Bastion`);
  root.appendChild(
    h(
      'section',
      { class: 'card narrow connect' },
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Virtual machines'), ' / ', h('a', { href: vmRoute(group, name) }, name), ' / Connect'),
      title,
      facts,
      form,
    ),
  );
  (prefill.username ? (authType.value === 'password' ? password : authType) : username).focus();

  let vm = null;
  let vaultsLoaded = false;

  // Only vaults where the user's access policy grants "list" are offered:
  // there is no "vaults I may list" endpoint, so each readable vault's
  // secret list is asked for and only those answering 200 are kept.
  const secretsByVault = new Map();
  async function loadVault(groupNames) {
    try {
      const vaults = await listableVaults(groupNames, signal);
      for (const v of vaults) secretsByVault.set(v.id, v.secrets);
      vault.replaceChildren(
        option('', vaults.length ? 'Select a vault' : 'No vault gives you "list" on its secrets'),
        ...vaults.map((v) => option(v.id, v.group === group ? v.name : `${v.name} (${v.group})`, v.id === prefill.vault)),
      );
      vaultsLoaded = true;
      // Nothing remembered and nothing chosen yet: a key from a vault.
      const withKeys = vaults.filter((v) => v.secrets.length);
      if (!initialAuth && !authTouched && !password.value && withKeys.length) {
        authType.value = 'vault-key';
        showAuth();
        if (withKeys.length === 1 && !vault.value) vault.value = withKeys[0].id;
      }
      showSecrets();
      if (!secret.value && vault.value && (secretsByVault.get(vault.value) || []).length === 1) {
        secret.value = secretsByVault.get(vault.value)[0];
      }
    } catch (err) {
      if (!signal.aborted) vault.replaceChildren(option('', `Could not list vaults: ${err.message}`));
    }
  }

  function showSecrets() {
    const names = secretsByVault.get(vault.value);
    if (!vault.value || !names) {
      secret.replaceChildren(option('', 'Select a vault first'));
      return;
    }
    secret.replaceChildren(
      option('', names.length ? 'Select a secret' : 'This vault has no secrets'),
      ...names.map((n) => option(n, n, n === prefill.secret)),
    );
  }
  vault.addEventListener('change', showSecrets);

  async function load() {
    try {
      const [v, groupNames] = await Promise.all([getVm(group, name, signal), listGroups(signal)]);
      vm = v;
      const nic = vm.nicInfo.nic;
      fact('Group', group);
      fact('Private IP', nic && nic.private_ip ? nic.private_ip : 'not readable');
      if (nic && nic.network) fact('Network', nic.network.slice(nic.network.lastIndexOf('/') + 1));
      fact('SSH port', String(vm.ssh_port || 22));

      loadVault(groupNames);
      const all = await listBastions(groupNames, signal);
      const network = nic && nic.network;
      const serving = network ? all.filter((b) => Array.isArray(b.networks) && b.networks.includes(network)) : all;
      const label = (b) => (b.group === group ? b.name : `${b.name} (${b.group})`);
      if (serving.length === 0) {
        bastion.replaceChildren(option('', 'Automatic'));
        bastionHint.textContent = network
          ? 'No bastion you can read serves this VM\'s network; the bastion will answer whether one can be used.'
          : 'The VM\'s network interface could not be read.';
      } else if (serving.length === 1) {
        bastion.replaceChildren(option(serving[0].id, label(serving[0]), true));
        bastionHint.textContent = network ? 'The bastion that serves this VM\'s network.' : '';
      } else {
        const pre = serving.some((b) => b.id === prefill.bastion) ? prefill.bastion : '';
        bastion.replaceChildren(
          option('', 'Select a bastion', !pre),
          ...serving.map((b) => option(b.id, label(b), b.id === pre)),
        );
        bastion.required = true;
        bastionHint.textContent = `${serving.length} bastions serve this VM's network.`;
      }
    } catch (err) {
      if (signal.aborted) return;
      bastion.replaceChildren(option('', 'Automatic'));
      error.textContent = explain(err);
      if (err instanceof ApiError) error.dataset.code = err.code;
    }
  }
  load();

  let busy = false;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (busy) return;
    error.textContent = '';
    note.textContent = '';
    delete error.dataset.code;
    if (!form.reportValidity()) return;

    const type = authType.value;
    const auth = { type };
    // The new tab is opened now, inside the click, so that no pop-up blocker
    // stops it; it is pointed at the session once the bastion has made it.
    let tab = null;
    if (newTab.checked) {
      tab = window.open('', '_blank');
      if (tab) {
        try {
          tab.document.title = `Connecting to ${name}…`;
          tab.document.body.textContent = `Connecting to ${name}…`;
        } catch {
          // Not ours to write into: it is replaced in a moment anyway.
        }
      }
    }
    const body = { username: username.value.trim() };
    if (bastion.value) body.bastion = bastion.value;

    busy = true;
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    submit.textContent = 'Connecting…';
    try {
      if (type === 'password') {
        auth.password = password.value;
      } else if (type === 'ssh-key' || type === 'ssh-key-file') {
        if (type === 'ssh-key') {
          auth.private_key = key.value;
        } else {
          const file = keyFile.files && keyFile.files[0];
          if (!file) throw new Error('Choose the private key file.');
          if (file.size > MAX_KEY_BYTES) throw new Error('The key file is larger than 16 KiB; it cannot be a private key.');
          auth.private_key = await readFileText(file);
        }
        if (passphrase.value) auth.passphrase = passphrase.value;
      } else if (type === 'vault-key') {
        if (!vaultsLoaded || !vault.value) throw new Error('Select a vault.');
        if (!secret.value) throw new Error('Select the secret that holds the private key.');
        auth.vault = vault.value;
        auth.secret = secret.value;
        if (secretVersion.value.trim()) auth.version = secretVersion.value.trim();
        if (passphrase.value) auth.passphrase = passphrase.value;
      }
      body.auth = auth;
      const size = estimateTerminalSize();
      body.cols = size.cols;
      body.rows = size.rows;

      let data;
      try {
        data = await post(`/groups/${seg(group)}/vms/${seg(name)}/connect`, body, { signal });
      } finally {
        scrub(auth);
      }
      data = await answerChallenges(data, { signal });
      const session = data && data.session;
      if (!session || typeof session.terminal !== 'string') throw new Error('The bastion answered without a terminal.');
      state.lastConnect.set(id, {
        username: body.username, authType: type, bastion: body.bastion,
        vault: auth.vault, secret: auth.secret,
      });
      rememberConnect(state.user.name, id);
      rememberAuthType(state.user.name, type);
      const target = terminalRoute(group, name, session.id, body.username);
      if (tab && !tab.closed) {
        tab.location.href = `${location.origin}${location.pathname}${target}`;
        tab.opener = null;
        tab = null;
        note.textContent = `The session to ${name} opened in a new browser tab.`;
      } else {
        if (newTab.checked) note.textContent = 'The browser blocked the new tab; the session opens here.';
        location.hash = target;
      }
    } catch (err) {
      if (tab) tab.close();
      if (signal.aborted) return;
      error.textContent = explain(err);
      if (err instanceof ApiError) error.dataset.code = err.code;
      focusFor(err);
    } finally {
      scrub(auth);
      busy = false;
      submit.disabled = false;
      form.removeAttribute('aria-busy');
      submit.textContent = 'Connect';
    }
  });

  // After a failure, focus goes where the user can fix it.
  function focusFor(err) {
    const code = err instanceof ApiError ? err.code : '';
    const t = authType.value;
    let el = error;
    if (code === 'SshAuthenticationFailed') el = t === 'password' ? password : username;
    else if (code === 'InvalidPrivateKey') el = t === 'ssh-key' ? key : t === 'ssh-key-file' ? keyFile : t === 'vault-key' ? secret : passphrase;
    else if (code === 'VaultAccessDenied' || code === 'SecretNotFound') el = vault;
    else if (code === 'NetworkNotServed') el = bastion;
    if (el === error) error.setAttribute('tabindex', '-1');
    el.focus();
  }

  // Secrets leave the form as soon as the request is out, success or not.
  function scrub(auth) {
    delete auth.password;
    delete auth.private_key;
    delete auth.passphrase;
    password.value = '';
    key.value = '';
    keyFile.value = '';
    passphrase.value = '';
  }

  return () => controller.abort();
}
