// The network boundary (issue 13 items 4-6):
// - the destination policy (docs/security.md "Destination policy", --allowed-destinations): by default the
//   private ranges only, so this file's 198.18.X VM is refused with 403
//   DestinationNotAllowed, after row 6 and before the vault and key rows;
//   loopback, unspecified, link-local and metadata NICs in a 0.0.0.0/0
//   network are refused by default and under an explicit 0.0.0.0/0; a
//   SIGHUP applies a changed list; --check-config names a bad CIDR with
//   FILE:LINE;
// - joining a network needs Contributor on it (networks/join), not Reader:
//   the attack of item 4 (Contributor on one's own group, Reader on another
//   group's network: NIC, VM and bastion of one's own reaching into it) is
//   refused, and a user with Contributor on the network may;
// - errors as a port scanner: without Reader on the VM, an open port, a
//   closed port and no VM at all answer the same 403; with Reader, the
//   diagnostics stay (docs/security.md, "Destination policy").
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import {
  expectError, expectStatus, expectSession, putOk, ids, addVm, connect, keyAuth, passwordAuth,
} from './lib/api.mjs';
import { BASTION_BIN } from './lib/daemon.mjs';
import { randomString, run, waitFor } from './lib/util.mjs';

// The configuration file the daemon reads (BASTION_CONFIG) and re-reads on
// SIGHUP; BASTION_ALLOWED_DESTINATIONS is unset so that the file (or the
// default) decides, not the harness's test list.
const confDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bst-boundary-'));
const conf = path.join(confDir, 'bastion.conf');
fs.writeFileSync(conf, '[server]\nlog_level = info\n');

const h = fileHarness({
  label: 'boundary', block: 230, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }],
  daemonOpts: { env: { BASTION_CONFIG: conf, BASTION_ALLOWED_DESTINATIONS: undefined } },
});
const V = 'victim';
const users = {};
let sshd;

function body(over = {}) {
  return {
    bastion: ids.bastion(V, 'b1'),
    username: h.user.name,
    auth: keyAuth(h.keys['ed25519-openssh'].private),
    ...over,
  };
}

async function newUser(name) {
  const { c } = await h.newUser(name);
  users[name] = c;
  return c;
}

async function assign(id, principal, role, scope) {
  expectStatus(await h.admin.put(`/role-assignments/${id}`, { principal, role, scope }), [200, 201],
    `assign ${role} on ${scope} to ${principal}`);
}

// Rewrites the file with list (null: no key, the default) and waits for the
// daemon to apply it.
async function reload(list) {
  fs.writeFileSync(conf, `[server]\nlog_level = info\n${list === null ? '' : `[network]\nallowed_destinations = ${list}\n`}`);
  const mark = h.daemon.log().length;
  process.kill(h.daemon.pid, 'SIGHUP');
  await waitFor(() => /reload: (done|.*the running configuration stays)/.test(h.daemon.log().slice(mark)),
    { timeoutMs: 10000, what: 'reload' });
  const log = h.daemon.log().slice(mark);
  assert.match(log, /reload: done/, log);
  return log;
}

async function endSession(client, s) {
  expectStatus(await client.del(`/sessions/${s.id}`), [204, 404], 'end the session');
}

describe('boundary', () => {
  before(async () => {
    await h.up();
    const net = h.net;
    sshd = await h.sshd({ name: 'main', port: 22, addrs: [net.addr(2), net.addr(3), net.addr(4)] });
    await putOk(h.admin, ids.group(V), {});
    await putOk(h.admin, ids.network(V, 'vnet'), { address_prefixes: [net.prefix] });
    await putOk(h.admin, ids.bastion(V, 'b1'), { networks: [ids.network(V, 'vnet')] });
    await addVm(h.admin, { group: V, network: 'vnet', name: 'vm1', ip: net.addr(2), port: sshd.port });
    const closed = await net.closedTarget();
    await addVm(h.admin, { group: V, network: 'vnet', name: 'vm-closed', ip: closed.ip, port: closed.port });
    // A network that declares everything, and NICs at the bastion's own
    // host and its cloud's control plane (docs/security.md: never by default).
    await putOk(h.admin, ids.network(V, 'wide'), { address_prefixes: ['0.0.0.0/0', '::/0'] });
    await putOk(h.admin, ids.bastion(V, 'bwide'), { networks: [ids.network(V, 'wide')] });
    const special = { lo: '127.0.0.1', lo6: '::1', any: '0.0.0.0', any6: '::', ll: '169.254.10.10', ll6: 'fe80::1', md: '169.254.169.254', md6: 'fd00:ec2::254', az: '168.63.129.16' };
    for (const [name, ip] of Object.entries(special)) {
      await addVm(h.admin, { group: V, network: 'wide', name: `sp-${name}`, ip, port: sshd.port });
    }
    for (const u of ['mallory', 'netc', 'outsider', 'reader']) await newUser(u);
    // item 4's attacker: Contributor on her own group, Reader on the victim's network
    await putOk(h.admin, ids.group('mallory'), {});
    await assign('mal-own', 'user:mallory', 'Contributor', '/groups/mallory');
    await assign('mal-net', 'user:mallory', 'Reader', ids.network(V, 'vnet'));
    // a network contributor: Contributor on the network and on her own group
    await putOk(h.admin, ids.group('netc'), {});
    await assign('netc-own', 'user:netc', 'Contributor', '/groups/netc');
    await assign('netc-net', 'user:netc', 'Contributor', ids.network(V, 'vnet'));
    await assign('outsider-b', 'user:outsider', 'Reader', ids.bastion(V, 'b1'));
    await assign('reader-v', 'user:reader', 'Reader', ids.group(V));
  }, { timeout: 180000 });
  after(async () => {
    await h.down();
    fs.rmSync(confDir, { recursive: true, force: true });
  }, { timeout: 60000 });

  // ---- item 5: destinations ------------------------------------------------------
  h.test('default policy: a 198.18.X VM is refused with 403 DestinationNotAllowed, after row 6, before rows 7-8', async () => {
    if (h.net.mode !== 'netns') return; // the fallback's VM is on loopback: covered below
    const e = expectError(await connect(h.admin, V, 'vm1', body()), 403, 'DestinationNotAllowed',
      { messageIncludes: h.net.addr(2) });
    assert.match(e.message, /--allowed-destinations/);
    // before row 7 (the vault) and row 8 (the key): neither is looked at
    expectError(await connect(h.admin, V, 'vm1', body({ auth: { type: 'vault-key', vault: `/groups/${V}/vaults/none`, secret: 'k' } })),
      403, 'DestinationNotAllowed', { what: 'vault-key to a vault that does not exist' });
    expectError(await connect(h.admin, V, 'vm1', body({ auth: keyAuth('not a key') })), 403, 'DestinationNotAllowed',
      { what: 'a key that does not parse' });
    // after row 6: a bastion that does not serve the network still says so
    expectError(await connect(h.admin, V, 'vm1', body({ bastion: ids.bastion(V, 'bwide') })), 409, 'NetworkNotServed');
    // and after rows 3-5: a caller without Reader on the VM learns nothing of it
    expectError(await connect(users.outsider, V, 'vm1', body()), 403, 'AuthorizationFailed',
      { messageIncludes: ids.vm(V, 'vm1') });
    // audited like any refused connect
    const a = await h.admin.get(`/audit?action=connect&result=DestinationNotAllowed&target=${encodeURIComponent(ids.vm(V, 'vm1'))}`);
    expectStatus(a, 200, 'audit');
    assert.ok(a.json.value.length >= 3, `the refusals are in the audit trail: ${a.text}`);
  });

  h.test('default policy: NICs at loopback, unspecified, link-local and metadata addresses in a 0.0.0.0/0 network are refused', async () => {
    for (const name of ['lo', 'lo6', 'any', 'any6', 'll', 'll6', 'md', 'md6', 'az']) {
      const e = expectError(await connect(h.admin, V, `sp-${name}`, body({ bastion: ids.bastion(V, 'bwide') })),
        403, 'DestinationNotAllowed', { what: name });
      assert.match(e.message, /special address \((loopback|unspecified|link-local|metadata)\)/, e.message);
    }
    // an IPv4-mapped address cannot be stored as a NIC's address at all
    expectError(await h.admin.put(ids.nic(V, 'mapped'), { network: ids.network(V, 'wide'), private_ip: '::ffff:127.0.0.1' }),
      400, 'InvalidRequest', { messageIncludes: 'private_ip' });
  });

  h.test('SIGHUP applies a changed list: an explicit 198.18.0.0/15 allows the VM; 0.0.0.0/0 still refuses the special addresses', async () => {
    if (h.net.mode !== 'netns') {
      await reload('127.0.0.0/8,198.18.0.0/15'); // what the tests below need
      return;
    }
    let log = await reload('127.0.0.0/8, 198.18.0.0/15');
    assert.match(log, /reload: network\.allowed_destinations: 10\.0\.0\.0\/8,.* -> 127\.0\.0\.0\/8, 198\.18\.0\.0\/15/);
    let s = expectSession(await connect(h.admin, V, 'vm1', body()), 'explicitly allowed');
    await endSession(h.admin, s);
    // Broad prefixes do not carry the special ranges.
    log = await reload('0.0.0.0/0,::/0');
    s = expectSession(await connect(h.admin, V, 'vm1', body()), '0.0.0.0/0 holds 198.18.X');
    await endSession(h.admin, s);
    for (const name of ['lo', 'lo6', 'any', 'any6', 'll', 'll6', 'md', 'md6', 'az']) {
      expectError(await connect(h.admin, V, `sp-${name}`, body({ bastion: ids.bastion(V, 'bwide') })),
        403, 'DestinationNotAllowed', { what: `${name} under 0.0.0.0/0,::/0` });
    }
    // Listed inside its range, a special address may be dialled (the
    // link-local one gets no answer: anything but DestinationNotAllowed).
    await reload('169.254.10.0/24');
    const r = await connect(h.admin, V, 'sp-ll', body({ bastion: ids.bastion(V, 'bwide') }));
    assert.notEqual(r.json && r.json.error && r.json.error.code, 'DestinationNotAllowed', r.text);
    if (r.status === 201) await endSession(h.admin, r.json.session);
    expectError(await connect(h.admin, V, 'sp-md', body({ bastion: ids.bastion(V, 'bwide') })),
      403, 'DestinationNotAllowed', { what: 'metadata is not inside 169.254.10.0/24' });
    // Back to no key: the default again.
    await reload(null);
    expectError(await connect(h.admin, V, 'vm1', body()), 403, 'DestinationNotAllowed', { what: 'default again' });
    // A bad list on reload changes nothing.
    fs.writeFileSync(conf, '[server]\nlog_level = info\n[network]\nallowed_destinations = 198.18.0.1/15\n');
    const mark = h.daemon.log().length;
    process.kill(h.daemon.pid, 'SIGHUP');
    await waitFor(() => h.daemon.log().slice(mark).includes('the running configuration stays'), { timeoutMs: 10000, what: 'reload refused' });
    assert.match(h.daemon.log().slice(mark), /bastion\.conf:4: \[network\] allowed_destinations '198\.18\.0\.1\/15'/);
    expectError(await connect(h.admin, V, 'vm1', body()), 403, 'DestinationNotAllowed', { what: 'still the default' });
    await reload('127.0.0.0/8,198.18.0.0/15');
  });

  h.test('--check-config: a bad CIDR is named with FILE:LINE, a bad flag or variable by its name', async () => {
    const dir = fs.mkdtempSync(path.join(confDir, 'check-'));
    const file = path.join(dir, 'bad.conf');
    const env = { ...process.env };
    delete env.BASTION_ALLOWED_DESTINATIONS;
    for (const bad of ['10.0.0.1/8', '10.0.0.0/33', '10.0.0.0/8,,fc00::/7', 'localhost', '']) {
      fs.writeFileSync(file, `[server]\nlog_level = info\n\n[network]\nallowed_destinations = ${bad}\n`);
      const r = await run(BASTION_BIN, ['serve', '--check-config', '--config', file], { allowFail: true, env });
      assert.equal(r.code, 1, `${bad}: ${r.stdout}${r.stderr}`);
      assert.ok(r.stderr.includes(`${file}:5: [network] allowed_destinations`), `${bad}: ${r.stderr}`);
    }
    fs.writeFileSync(file, '[network]\nallowed_destinations = 127.0.0.0/8, 198.18.0.0/15\n');
    let r = await run(BASTION_BIN, ['serve', '--check-config', '--config', file], { allowFail: true, env });
    assert.equal(r.code, 0, r.stderr);
    r = await run(BASTION_BIN, ['serve', '--check-config', '--config', file, '--allowed-destinations', '::1/129'], { allowFail: true, env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--allowed-destinations/);
    r = await run(BASTION_BIN, ['serve', '--check-config', '--config', file], { allowFail: true, env: { ...env, BASTION_ALLOWED_DESTINATIONS: '0.0.0.0/0,' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /BASTION_ALLOWED_DESTINATIONS/);
  });

  // ---- item 4: joining a network -------------------------------------------------
  h.test('Reader on a network is not enough to join it: the attack is refused, nothing is created', async () => {
    const m = users.mallory;
    const vnet = ids.network(V, 'vnet');
    // she may read it ...
    expectStatus(await m.get(vnet), 200, 'Reader reads the network');
    // ... but not attach a NIC to it
    let e = expectError(await m.put(ids.nic('mallory', 'x-nic'), { network: vnet, private_ip: h.net.addr(3) }),
      403, 'AuthorizationFailed', { messageIncludes: vnet });
    assert.match(e.message, /^network: Contributor on \/groups\/victim\/networks\/vnet is required to join that network \(networks\/join\)$/);
    expectError(await m.get(ids.nic('mallory', 'x-nic')), 404, 'ResourceNotFound', { what: 'no NIC was created' });
    // nor a bastion (the field is named with its index)
    e = expectError(await m.put(ids.bastion('mallory', 'xb'), { networks: [vnet] }), 403, 'AuthorizationFailed',
      { messageIncludes: vnet });
    assert.match(e.message, /^networks\[0\]: Contributor on/);
    expectError(await m.get(ids.bastion('mallory', 'xb')), 404, 'ResourceNotFound', { what: 'no bastion was created' });
    // a network of her own beside it does not help
    await putOk(m, ids.network('mallory', 'own'), { address_prefixes: ['10.9.0.0/24'] });
    e = expectError(await m.put(ids.bastion('mallory', 'xb'), { networks: [ids.network('mallory', 'own'), vnet] }),
      403, 'AuthorizationFailed');
    assert.match(e.message, /^networks\[1\]: /);
    // the victim's NIC is not hers to use either (no Reader on it)
    expectError(await m.put(ids.vm('mallory', 'xvm'), { nic: ids.nic(V, 'vm1-nic') }), 400, 'InvalidRequest',
      { messageIncludes: 'does not exist' });
    // and with no NIC, VM or bastion of her own there, no connect reaches in
    expectError(await connect(m, V, 'vm1', body()), 403, 'AuthorizationFailed', { messageIncludes: ids.vm(V, 'vm1') });
  });

  h.test('Contributor on the network may join it: NIC, VM and bastion of her own, and a session', async () => {
    const n = users.netc;
    const vnet = ids.network(V, 'vnet');
    await putOk(n, ids.nic('netc', 'n-nic'), { network: vnet, private_ip: h.net.addr(4) });
    await putOk(n, ids.vm('netc', 'nvm'), { nic: ids.nic('netc', 'n-nic'), ssh_port: sshd.port });
    await putOk(n, ids.bastion('netc', 'nb'), { networks: [vnet] });
    const s = expectSession(await connect(n, 'netc', 'nvm', body({ bastion: ids.bastion('netc', 'nb') })), 'network contributor');
    await endSession(n, s);
    // the same PUT again needs the join too: once she is only Reader on the
    // network, even an unchanged body is refused; what exists stays until
    // it is deleted
    await assign('netc-net', 'user:netc', 'Reader', vnet);
    expectError(await n.put(ids.nic('netc', 'n-nic'), { network: vnet, private_ip: h.net.addr(4) }), 403, 'AuthorizationFailed',
      { messageIncludes: vnet, what: 'unchanged NIC after the revoke' });
    expectError(await n.put(ids.bastion('netc', 'nb'), { networks: [vnet] }), 403, 'AuthorizationFailed',
      { what: 'unchanged bastion after the revoke' });
    expectStatus(await n.del(ids.vm('netc', 'nvm')), 204, 'leaving needs no join');
    expectStatus(await n.del(ids.nic('netc', 'n-nic')), 204, 'leaving needs no join');
    expectStatus(await n.del(ids.bastion('netc', 'nb')), 204, 'leaving needs no join');
    // Owner on the network's group carries the join as well
    await assign('netc-grp', 'user:netc', 'Owner', ids.group(V));
    await putOk(n, ids.bastion('netc', 'nb'), { networks: [vnet] });
  });

  // ---- item 6: errors as a port scanner ------------------------------------------
  h.test('without Reader on the VM: an open port, a closed port and no VM answer alike; with Reader the diagnostics stay', async () => {
    const o = users.outsider;
    const seen = [];
    for (const vm of ['vm1', 'vm-closed', 'no-such-vm']) {
      const e = expectError(await connect(o, V, vm, body()), 403, 'AuthorizationFailed', { what: vm });
      seen.push(e.message.replace(ids.vm(V, vm), 'VM'));
    }
    assert.deepEqual(seen, Array(3).fill(seen[0]), 'the same answer whatever is there');
    // a VM in a group the caller cannot read at all: the same again
    const e = expectError(await connect(o, 'netc', 'whatever', body()), 403, 'AuthorizationFailed');
    assert.equal(e.message.replace(ids.vm('netc', 'whatever'), 'VM'), seen[0]);
    // With Reader on the VM (and the NIC, and the bastion): the legitimate
    // user is told what went wrong.
    const r = users.reader;
    const closed = expectError(await connect(r, V, 'vm-closed', body()), 504, 'VmUnreachable');
    assert.match(closed.message, /refused the connection/);
    const s = expectSession(await connect(r, V, 'vm1', body()), 'reader connects');
    await endSession(r, s);
    const wrong = `Wrong-${randomString(16)}`;
    h.secrets.add(wrong, 'a wrong password');
    expectError(await connect(r, V, 'vm1', body({ auth: passwordAuth(wrong) })), 401, 'SshAuthenticationFailed');
  });

  h.test('no secret leaked', () => h.assertNoLeaks());
  h.testCleanExit();
});
