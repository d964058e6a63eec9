// POST /api/v1/groups/{g}/vms/{vm}/connect (docs/api.md "Connect"): the checks table in
// order, every key format, host key trust on first use and pinning, the
// "bastion omitted" rule, and that no secret leaks.
//
// Topology (netns mode; loopback fallback uses 127.0.X.n and free ports):
//   .2 .6 .7 .8 : sshd "main" (port 22, one host key)
//   .3          : sshd "notty" on port 2222 with PermitTTY no  -> ShellFailed
//   .4          : sshd "tofu" (its host key is replaced mid-test) -> HostKeyMismatch
//   .5          : address with nothing listening                  -> VmUnreachable (fast)
//   .9          : inside the prefix, no host                      -> VmUnreachable (< 11 s)
import { describe, before, after, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { fileHarness } from './lib/harness.mjs';
import {
  expectError, expectSession, expectStatus, ids, putOk, createTopology, addVm, connect, passwordAuth, keyAuth,
} from './lib/api.mjs';
import { generateKey, KEY_SPECS } from './lib/sshd.mjs';
import { waitFor } from './lib/util.mjs';

const h = fileHarness({ label: 'connect', block: 20, net: true, keys: true });
const G = 'e2e';
let main; let noTty; let tofu;
let otherKey; // a valid key that is NOT in authorized_keys
let hasSilent = false;

// Every password/passphrase we send goes into the leak registry.
const secret = (s, label = 'sent secret') => { h.secrets.add(s, label); return s; };

function body(over = {}) {
  return {
    bastion: ids.bastion(G, 'b1'),
    username: h.user.name,
    auth: keyAuth(h.keys['ed25519-openssh'].private),
    cols: 120,
    rows: 40,
    ...over,
  };
}

function bigKey() {
  // > 16 KiB of PEM-framed base64: refused before any parsing effort
  const b64 = crypto.randomBytes(13 * 1024).toString('base64').match(/.{1,70}/g).join('\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

describe('connect', () => {
  before(async () => {
    await h.up();
    otherKey = await generateKey(h.dir, { id: 'not-authorized', type: 'ed25519' });
    h.secrets.addPrivateKey(otherKey.private, 'key not-authorized');
    const net = h.net;
    main = await h.sshd({ name: 'main', port: 22, addrs: [net.addr(2), net.addr(6), net.addr(7), net.addr(8)] });
    noTty = await h.sshd({ name: 'notty', port: 2222, addrs: [net.addr(3)], permitTTY: false });
    tofu = await h.sshd({ name: 'tofu', port: 22, addrs: [net.addr(4)] });
    const wrongHostKey = await generateKey(h.dir, { id: 'wrong-host', type: 'ed25519' });
    const wrongLine = `${net.addr(7)} ${wrongHostKey.public.split(' ').slice(0, 2).join(' ')}`;
    const closed = await net.closedTarget();

    await createTopology(h.admin, { group: G, network: 'n1', prefix: net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm-main', ip: net.addr(2), port: main.port });
    await addVm(h.admin, { group: G, name: 'vm-notty', ip: net.addr(3), port: noTty.port });
    await addVm(h.admin, { group: G, name: 'vm-tofu', ip: net.addr(4), port: tofu.port });
    await addVm(h.admin, { group: G, name: 'vm-closed', ip: closed.ip, port: closed.port });
    await addVm(h.admin, { group: G, name: 'vm-pinned-ok', ip: net.addr(6), port: main.port, hostKeys: [main.knownHostsLine(net.addr(6))] });
    await addVm(h.admin, { group: G, name: 'vm-pinned-bad', ip: net.addr(7), port: main.port, hostKeys: [wrongLine] });
    if (net.silentAddr) {
      hasSilent = true;
      await addVm(h.admin, { group: G, name: 'vm-silent', ip: net.silentAddr, port: 22 });
    }
    // a second network (same prefix, so a wrong dial would still stay on our veth) that b1 does not serve
    await putOk(h.admin, ids.network(G, 'n2'), { address_prefixes: [net.prefix] });
    await addVm(h.admin, { group: G, network: 'n2', name: 'vm-n2', ip: net.addr(8), port: main.port });
  }, { timeout: 180000 });
  after(() => h.down(), { timeout: 60000 });

  // ---- row 1 ---------------------------------------------------------------------
  h.test('row 1: not signed in -> 401 Unauthenticated (before any body check)', async () => {
    const anon = h.client('anon');
    expectError(await connect(anon, G, 'vm-main', body()), 401, 'Unauthenticated');
    expectError(await anon.request('POST', `/groups/${G}/vms/vm-main/connect`, { raw: '{"not json' }), 401, 'Unauthenticated',
      { what: 'row 1 precedes row 2' });
    const forged = h.client('forged');
    expectError(await connect(forged, G, 'vm-main', body(), { headers: { Cookie: '__Host-bastion_session=forged-0000000000000000' } }),
      401, 'Unauthenticated');
  });

  // ---- row 2 ---------------------------------------------------------------------
  const shapeCases = [
    ['username missing', (b) => { delete b.username; }, 'username'],
    ['username not a string', (b) => { b.username = 42; }, 'username'],
    ['username empty', (b) => { b.username = ''; }, 'username'],
    ['auth missing', (b) => { delete b.auth; }, 'auth'],
    ['auth not an object', (b) => { b.auth = 'password'; }, 'auth'],
    ['auth.type unknown', (b) => { b.auth = { type: 'telepathy' }; }, ['auth.type', 'type']],
    ['password missing for type password', (b) => { b.auth = { type: 'password' }; }, 'password'],
    ['private_key missing for type ssh-key', (b) => { b.auth = { type: 'ssh-key' }; }, 'private_key'],
    ['private_key missing for type ssh-key-file', (b) => { b.auth = { type: 'ssh-key-file' }; }, 'private_key'],
    ['cols not a number', (b) => { b.cols = 'wide'; }, 'cols'],
    ['rows negative', (b) => { b.rows = -1; }, 'rows'],
    ['bastion not a string', (b) => { b.bastion = 42; }, 'bastion'],
  ];
  for (const [label, mutate, field] of shapeCases) {
    h.test(`row 2: ${label} -> 400 InvalidRequest naming ${[].concat(field).join(' or ')}`, async () => {
      const b = body();
      mutate(b);
      expectError(await connect(h.admin, G, 'vm-main', b), 400, 'InvalidRequest', { messageIncludes: field, what: label });
    });
  }

  h.test('row 2: malformed or non-object JSON -> 400 InvalidRequest', async () => {
    for (const raw of ['{"username": ', 'null', '[]', '"x"']) {
      expectError(await h.admin.request('POST', `/groups/${G}/vms/vm-main/connect`, { raw }), 400, 'InvalidRequest', { what: raw });
    }
  });

  h.test('row 2 precedes row 6: bad body to a VM in an unserved network -> 400', async () => {
    const b = body();
    delete b.username;
    expectError(await connect(h.admin, G, 'vm-n2', b), 400, 'InvalidRequest', { messageIncludes: 'username' });
  });

  h.test('unknown VM -> 404 ResourceNotFound', async () => {
    expectError(await connect(h.admin, G, 'vm-nope', body()), 404, 'ResourceNotFound');
  });

  // ---- rows 3-5: Reader on the VM, on its NIC, on the bastion, in that order ----------
  // Each test signs in a fresh account and grants it roles one by one.
  let userSeq = 0;
  async function newUser() {
    const { name, c } = await h.newUser(`e2e-conn-${++userSeq}`);
    return { name, c };
  }
  async function grant(user, role, scope) {
    const id = `conn-${user.name}-${++userSeq}`;
    expectStatus(await h.admin.put(`/role-assignments/${id}`, { principal: `user:${user.name}`, role, scope }), 201,
      `assign ${role} on ${scope}`);
    return id;
  }
  const VM = () => ids.vm(G, 'vm-main');
  const NIC = () => ids.nic(G, 'vm-main-nic');
  const B1 = () => ids.bastion(G, 'b1');

  h.test('rows 3-5 in order: none -> VM named; VM only -> NIC named; VM+NIC -> bastion named; all three -> 201', async () => {
    const u = await newUser();
    expectError(await connect(u.c, G, 'vm-main', body()), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${VM()} is required`, what: 'row 3' });
    await grant(u, 'Reader', VM());
    expectError(await connect(u.c, G, 'vm-main', body()), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${NIC()} is required`, what: 'row 4' });
    await grant(u, 'Reader', NIC());
    expectError(await connect(u.c, G, 'vm-main', body()), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${B1()} is required`, what: 'row 5' });
    // omitting the bastion: none that the caller may read serves the network,
    // one that it may not read does: named like row 5 (issue 12 item 9)
    const omitted = body();
    delete omitted.bastion;
    expectError(await connect(u.c, G, 'vm-main', omitted), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${B1()} is required`, what: 'row 5, bastion omitted' });
    await grant(u, 'Reader', B1());
    expectSession(await connect(u.c, G, 'vm-main', body()), 'all three roles');
    expectSession(await connect(u.c, G, 'vm-main', omitted), 'all three roles, bastion omitted');
  });

  h.test('rows 3-5: Reader inherited from the group, and from the root scope', async () => {
    const g = await newUser();
    await grant(g, 'Reader', ids.group(G));
    expectSession(await connect(g.c, G, 'vm-main', body()), 'Reader on the group');
    const r = await newUser();
    await grant(r, 'Reader', '/');
    expectSession(await connect(r.c, G, 'vm-main', body()), 'Reader on /');
    // a role on another group, or on a look-alike group name, grants nothing here
    await putOk(h.admin, ids.group(`${G}2`), {});
    const o = await newUser();
    await grant(o, 'Owner', ids.group(`${G}2`));
    expectError(await connect(o.c, G, 'vm-main', body()), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${VM()} is required` });
  });

  h.test('rows 3-5 hold whatever the other roles: Contributor on the NIC and bastion, nothing on the VM -> 403 naming the VM', async () => {
    const u = await newUser();
    await grant(u, 'Contributor', NIC());
    await grant(u, 'Owner', B1());
    expectError(await connect(u.c, G, 'vm-main', body()), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${VM()} is required` });
  });

  h.test('row 2 precedes row 3: a bad body from a caller without roles -> 400', async () => {
    const u = await newUser();
    const b = body();
    delete b.username;
    expectError(await connect(u.c, G, 'vm-main', b), 400, 'InvalidRequest', { messageIncludes: 'username' });
  });

  h.test('row 3 precedes row 6: unauthorised caller on a VM in an unserved network -> 403, not 409', async () => {
    const u = await newUser();
    expectError(await connect(u.c, G, 'vm-n2', body()), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${ids.vm(G, 'vm-n2')} is required` });
    await grant(u, 'Reader', ids.vm(G, 'vm-n2'));
    await grant(u, 'Reader', ids.nic(G, 'vm-n2-nic'));
    expectError(await connect(u.c, G, 'vm-n2', body()), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${B1()} is required`, what: 'row 5 precedes row 6' });
  });

  h.test('row 3 leaks nothing: a missing VM answers a caller without Reader like an unreadable one (403 naming it)', { timeout: 60000 }, async () => {
    const u = await newUser();
    expectError(await connect(u.c, G, 'vm-does-not-exist', body()), 403, 'AuthorizationFailed',
      { messageIncludes: `Reader on ${ids.vm(G, 'vm-does-not-exist')} is required` });
    // A caller who may read the group learns that it is missing.
    await grant(u, 'Reader', `/groups/${G}`);
    expectError(await connect(u.c, G, 'vm-does-not-exist', body()), 404, 'ResourceNotFound');
  });

  // ---- row 6 ---------------------------------------------------------------------
  h.test('row 6: the NIC\'s network is not served by the bastion -> 409 NetworkNotServed', async () => {
    expectError(await connect(h.admin, G, 'vm-n2', body()), 409, 'NetworkNotServed');
  });

  h.test('row 6 precedes row 8: unserved network with a garbage key -> 409', async () => {
    expectError(await connect(h.admin, G, 'vm-n2', body({ auth: keyAuth('garbage garbage garbage') })), 409, 'NetworkNotServed');
  });

  // ---- bastion omitted ----------------------------------------------------------------
  h.test('bastion omitted, exactly one bastion serves the network -> 201', async () => {
    const b = body();
    delete b.bastion;
    expectSession(await connect(h.admin, G, 'vm-main', b), 'bastion omitted');
  });

  h.test('bastion omitted, no bastion serves the network -> 400 InvalidRequest', async () => {
    const b = body();
    delete b.bastion;
    expectError(await connect(h.admin, G, 'vm-n2', b), 400, 'InvalidRequest', { messageIncludes: 'bastion' });
  });

  h.test('bastion omitted, two bastions serve the network -> 400 InvalidRequest; explicit -> 201', async () => {
    await putOk(h.admin, ids.bastion(G, 'b2'), { networks: [ids.network(G, 'n1')] });
    try {
      const b = body();
      delete b.bastion;
      expectError(await connect(h.admin, G, 'vm-main', b), 400, 'InvalidRequest', { messageIncludes: 'bastion' });
      expectSession(await connect(h.admin, G, 'vm-main', body({ bastion: ids.bastion(G, 'b2') })), 'explicit b2');
    } finally {
      expectStatus(await h.admin.del(ids.bastion(G, 'b2')), [200, 204], 'delete b2');
    }
  });

  // ---- row 8 ---------------------------------------------------------------------
  h.test('row 8: garbage key -> 400 InvalidPrivateKey', async () => {
    for (const k of ['garbage', '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
      h.keys['ed25519-openssh'].public]) {
      expectError(await connect(h.admin, G, 'vm-main', body({ auth: keyAuth(k) })), 400, 'InvalidPrivateKey', { what: k.slice(0, 40) });
    }
  });

  h.test('row 8: truncated key -> 400 InvalidPrivateKey', async () => {
    const lines = h.keys['rsa-pem'].private.trim().split('\n');
    const cut = [...lines.slice(0, 6), lines[lines.length - 1]].join('\n');
    expectError(await connect(h.admin, G, 'vm-main', body({ auth: keyAuth(cut) })), 400, 'InvalidPrivateKey');
  });

  h.test('row 8: key over 16 KiB -> 400', async () => {
    const k = bigKey();
    h.secrets.addPrivateKey(k, 'oversized key');
    assert.ok(k.length > 16 * 1024);
    const r = await connect(h.admin, G, 'vm-main', body({ auth: keyAuth(k) }));
    assert.equal(r.status, 400, r.text);
    assert.ok(['InvalidPrivateKey', 'InvalidRequest'].includes(r.json && r.json.error && r.json.error.code), r.text);
  });

  for (const spec of KEY_SPECS.filter((s) => s.pass)) {
    h.test(`row 8: ${spec.id} with a wrong or no passphrase -> 400 InvalidPrivateKey`, async () => {
      const key = h.keys[spec.id];
      const wrong = secret(`wrong-${key.passphrase}`, 'wrong passphrase');
      expectError(await connect(h.admin, G, 'vm-main', body({ auth: keyAuth(key.private, wrong) })), 400, 'InvalidPrivateKey',
        { what: 'wrong passphrase' });
      expectError(await connect(h.admin, G, 'vm-main', body({ auth: keyAuth(key.private) })), 400, 'InvalidPrivateKey',
        { what: 'no passphrase' });
    });
  }

  h.test('row 8 precedes row 9: garbage key to an unreachable VM -> 400 at once', async () => {
    const vm = hasSilent ? 'vm-silent' : 'vm-closed';
    const r = await connect(h.admin, G, vm, body({ auth: keyAuth('garbage') }));
    expectError(r, 400, 'InvalidPrivateKey');
    assert.ok(r.ms < 3000, `answered in ${r.ms} ms: the key is checked before dialling`);
  });

  // ---- every key format ---------------------------------------------------------------
  for (const spec of KEY_SPECS) {
    h.test(`key format ${spec.id} connects (201)`, async () => {
      const key = h.keys[spec.id];
      const type = spec.id.includes('rsa') ? 'ssh-key-file' : 'ssh-key';
      expectSession(await connect(h.admin, G, 'vm-main', body({ auth: keyAuth(key.private, key.passphrase, type) })), spec.id);
    });
  }

  h.test('CRLF-mangled paste with surrounding whitespace connects', async () => {
    for (const id of ['ed25519-openssh', 'rsa-pem', 'rsa-pkcs8-pass']) {
      const key = h.keys[id];
      const pasted = `\r\n  ${key.private.trim().replace(/\n/g, '\r\n')}\r\n\r\n  `;
      expectSession(await connect(h.admin, G, 'vm-main', body({ auth: keyAuth(pasted, key.passphrase) })), `CRLF ${id}`);
    }
  });

  h.test('password authentication connects (201)', async (t) => {
    if (!h.user.password) { t.skip('not root: the test user has no password'); return; }
    expectSession(await connect(h.admin, G, 'vm-main', body({ auth: passwordAuth(h.user.password) })), 'password');
  });

  h.test('a bearer token can connect', async () => {
    const tok = await h.admin.post('/tokens', {});
    assert.equal(tok.status, 201, tok.text);
    const b = h.client('bearer');
    b.bearer = tok.json.token;
    expectSession(await connect(b, G, 'vm-main', body()), 'bearer');
  });

  // ---- row 9 ---------------------------------------------------------------------
  h.test('row 9: closed port -> 504 VmUnreachable, fast', async () => {
    const r = await connect(h.admin, G, 'vm-closed', body());
    expectError(r, 504, 'VmUnreachable');
    assert.ok(r.ms < 11000, `answered in ${r.ms} ms`);
  });

  h.test('row 9: no host at the address -> 504 VmUnreachable within 11 s', { timeout: 30000 }, async (t) => {
    if (!hasSilent) { t.skip('loopback fallback: no silent address'); return; }
    const r = await connect(h.admin, G, 'vm-silent', body(), { timeoutMs: 20000 });
    expectError(r, 504, 'VmUnreachable');
    assert.ok(r.ms < 11000, `answered in ${r.ms} ms`);
  });

  h.test('row 9 precedes row 11: wrong password to an unreachable VM -> 504', async () => {
    const r = await connect(h.admin, G, 'vm-closed', body({ auth: passwordAuth(secret('wrong-password-row9', 'wrong password')) }));
    expectError(r, 504, 'VmUnreachable');
  });

  // ---- row 10 --------------------------------------------------------------------
  h.test('row 10: pinned host key matches -> 201', async () => {
    expectSession(await connect(h.admin, G, 'vm-pinned-ok', body()), 'pinned ok');
  });

  h.test('row 10: pinned host key differs -> 502 HostKeyMismatch (also with a wrong password)', async () => {
    expectError(await connect(h.admin, G, 'vm-pinned-bad', body()), 502, 'HostKeyMismatch');
    expectError(await connect(h.admin, G, 'vm-pinned-bad', body({ auth: passwordAuth(secret('wrong-password-row10', 'wrong password')) })),
      502, 'HostKeyMismatch', { what: 'row 10 precedes row 11' });
  });

  h.test('row 10: trust on first use, then a new host key -> 502 HostKeyMismatch', { timeout: 60000 }, async () => {
    expectSession(await connect(h.admin, G, 'vm-tofu', body()), 'first use records the key');
    expectSession(await connect(h.admin, G, 'vm-tofu', body()), 'same key again');
    await tofu.restart({ newHostKey: true });
    expectError(await connect(h.admin, G, 'vm-tofu', body()), 502, 'HostKeyMismatch', { what: 'after host key change' });
    expectError(await connect(h.admin, G, 'vm-tofu', body()), 502, 'HostKeyMismatch', { what: 'the new key was not recorded' });
    // refused: the bastion hung up on the VM (nothing left open)
    await waitFor(() => tofu.sessionPids().length === 0, { timeoutMs: 10000, what: 'tofu sshd connections to close' });
  });

  // ---- row 11 --------------------------------------------------------------------
  h.test('row 11: wrong password -> 401 SshAuthenticationFailed', async () => {
    expectError(await connect(h.admin, G, 'vm-main', body({ auth: passwordAuth(secret('wrong-password-row11', 'wrong password')) })),
      401, 'SshAuthenticationFailed');
  });

  h.test('row 11: key not authorised on the VM -> 401 SshAuthenticationFailed', async () => {
    expectError(await connect(h.admin, G, 'vm-main', body({ auth: keyAuth(otherKey.private) })), 401, 'SshAuthenticationFailed');
  });

  h.test('row 11: unknown VM user -> 401 SshAuthenticationFailed', async () => {
    expectError(await connect(h.admin, G, 'vm-main', body({ username: 'nosuchuser-e2e' })), 401, 'SshAuthenticationFailed');
  });

  h.test('row 11 precedes row 12: wrong key on the PTY-less VM -> 401', async () => {
    expectError(await connect(h.admin, G, 'vm-notty', body({ auth: keyAuth(otherKey.private) })), 401, 'SshAuthenticationFailed');
  });

  // ---- row 12 --------------------------------------------------------------------
  h.test('row 12: the VM refuses a PTY -> 502 ShellFailed, and the SSH connection is closed', async () => {
    expectError(await connect(h.admin, G, 'vm-notty', body()), 502, 'ShellFailed');
    await waitFor(() => noTty.sessionPids().length === 0, { timeoutMs: 10000, what: 'notty sshd connections to close' });
  });

  // ---- secrets -------------------------------------------------------------------
  h.test('no password, passphrase or private-key line in any response or log line', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit('SIGTERM with open sessions: exits 0 within 10 s');
});
