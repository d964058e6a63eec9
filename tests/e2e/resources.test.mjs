// Resource API (docs/api.md "Resources"): groups, networks, nics, vms, bastions —
// validation, shapes, idempotent PUT, 404, 409 in use, 413, malformed JSON, 405.
// Only data here: the addresses are never dialled.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import { expectError, expectStatus, ids, putOk } from './lib/api.mjs';
import { generateKey } from './lib/sshd.mjs';

const h = fileHarness({ label: 'resources', daemon: true });
const G = 'e2e-res';
let hostKey; // "ssh-ed25519 AAAA..." of a freshly generated key

describe('resources', () => {
  before(async () => {
    await h.up();
    const k = await generateKey(h.dir, { id: 'pinned-host', type: 'ed25519' });
    hostKey = k.public.split(' ').slice(0, 2).join(' ');
    await putOk(h.admin, ids.group(G), {});
    await putOk(h.admin, ids.network(G, 'net4'), { address_prefixes: ['198.18.200.0/24'] });
    await putOk(h.admin, ids.network(G, 'net6'), { address_prefixes: ['2001:db8:e2e::/48'] });
  }, { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('group: PUT 201 then 200, GET shape, idempotent', async () => {
    const a = await h.admin.put('/groups/e2e-g1', {});
    assert.equal(a.status, 201, a.text);
    assert.equal(a.json.id, '/groups/e2e-g1');
    assert.equal(a.json.type, 'groups');
    assert.equal(a.json.name, 'e2e-g1');
    const b = await h.admin.put('/groups/e2e-g1', {});
    assert.equal(b.status, 200, b.text);
    const g = await h.admin.get('/groups/e2e-g1');
    assert.equal(g.status, 200, g.text);
    assert.deepEqual({ id: g.json.id, type: g.json.type, name: g.json.name },
      { id: '/groups/e2e-g1', type: 'groups', name: 'e2e-g1' });
    expectStatus(await h.admin.del('/groups/e2e-g1'), [200, 204], 'delete empty group');
    expectError(await h.admin.get('/groups/e2e-g1'), 404, 'ResourceNotFound');
  });

  h.test('network: properties plus id/type/name; PUT twice leaves one; list {"value"}', async () => {
    const body = { address_prefixes: ['198.18.201.0/24', '2001:db8:1::/64'] };
    const a = await h.admin.put(ids.network(G, 'dup'), body);
    assert.equal(a.status, 201, a.text);
    assert.equal(a.json.id, `/groups/${G}/networks/dup`);
    assert.equal(a.json.type, 'networks');
    assert.equal(a.json.name, 'dup');
    assert.deepEqual(a.json.address_prefixes, body.address_prefixes);
    const b = await h.admin.put(ids.network(G, 'dup'), body);
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(b.json.address_prefixes, body.address_prefixes);
    const one = await h.admin.get(ids.network(G, 'dup'));
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(one.json.address_prefixes, body.address_prefixes);
    assert.equal(one.json.id, `/groups/${G}/networks/dup`);
    const list = await h.admin.get(`/groups/${G}/networks`);
    assert.equal(list.status, 200, list.text);
    assert.ok(Array.isArray(list.json.value), `list has value[]: ${list.text}`);
    const dups = list.json.value.filter((r) => r.id === `/groups/${G}/networks/dup`);
    assert.equal(dups.length, 1, 'PUT twice leaves exactly one resource');
    assert.equal(dups[0].type, 'networks');
    assert.ok(list.json.value.some((r) => r.id === `/groups/${G}/networks/net4`));
    // replacing changes the properties
    const c = await h.admin.put(ids.network(G, 'dup'), { address_prefixes: ['198.18.202.0/24'] });
    assert.equal(c.status, 200, c.text);
    assert.deepEqual((await h.admin.get(ids.network(G, 'dup'))).json.address_prefixes, ['198.18.202.0/24']);
    expectStatus(await h.admin.del(ids.network(G, 'dup')), [200, 204]);
    expectError(await h.admin.get(ids.network(G, 'dup')), 404, 'ResourceNotFound');
  });

  // ---- names --------------------------------------------------------------
  const badNames = [
    ['..', '..'],
    ['.', '.'],
    ['-x', '-x'],
    ['_x', '_x'],
    ['65 characters', 'a'.repeat(65)],
    ['%2F-encoded slash', 'a%2Fb'],
    ['space', 'a%20b'],
    ['non-ASCII', 'caf%C3%A9'],
    ['colon', 'a:b'],
  ];
  for (const [label, name] of badNames) {
    h.test(`bad name (${label}) is refused with 400 InvalidRequest`, async () => {
      expectError(await h.admin.put(`/groups/${name}`, {}), 400, 'InvalidRequest', { what: `group ${name}` });
      expectError(await h.admin.put(`/groups/${G}/networks/${name}`, { address_prefixes: ['198.18.203.0/24'] }),
        400, 'InvalidRequest', { what: `network ${name}` });
    });
  }

  h.test('good names: 1 char, 64 chars, dots/underscores/dashes inside', async () => {
    for (const name of ['a', 'A'.repeat(64), 'x.y_z-1', '9lives']) {
      const r = await h.admin.put(`/groups/${G}/networks/${name}`, { address_prefixes: ['198.18.204.0/24'] });
      assert.equal(r.status, 201, `name ${name}: ${r.status} ${r.text}`);
      assert.equal(r.json.name, name);
      expectStatus(await h.admin.del(`/groups/${G}/networks/${name}`), [200, 204], `delete ${name}`);
    }
  });

  // ---- networks -------------------------------------------------------------
  h.test('network prefixes: valid IPv4 and IPv6 CIDRs accepted', async () => {
    for (const p of ['198.18.0.0/15', '198.18.5.0/24', '198.18.5.7/32', '0.0.0.0/0', '2001:db8::/32', '2001:db8::1/128', '::/0']) {
      const r = await h.admin.put(ids.network(G, 'cidr-ok'), { address_prefixes: [p] });
      expectStatus(r, [200, 201], `prefix ${p}`);
    }
    expectStatus(await h.admin.del(ids.network(G, 'cidr-ok')), [200, 204]);
  });

  const badPrefixes = [
    ['IPv4 host bits set', '198.18.0.1/24'],
    ['IPv4 prefix 33', '198.18.0.0/33'],
    ['IPv4 negative prefix', '198.18.0.0/-1'],
    ['IPv4 octet 256', '198.18.256.0/24'],
    ['IPv4 without length', '198.18.0.0/'],
    ['IPv6 host bits set', '2001:db8::1/32'],
    ['IPv6 prefix 129', '2001:db8::/129'],
    ['IPv6 malformed', '2001:db8:::/48'],
    ['not a CIDR', 'not-a-cidr'],
    ['empty string', ''],
  ];
  for (const [label, p] of badPrefixes) {
    h.test(`network prefix refused: ${label} (${JSON.stringify(p)})`, async () => {
      const r = await h.admin.put(ids.network(G, 'cidr-bad'), { address_prefixes: [p] });
      expectError(r, 400, 'InvalidRequest', { messageIncludes: 'address_prefixes', what: p });
    });
  }

  h.test('network body shape: missing / non-array / non-string prefixes refused', async () => {
    for (const body of [{}, { address_prefixes: '198.18.0.0/24' }, { address_prefixes: [42] }, { address_prefixes: null }]) {
      expectError(await h.admin.put(ids.network(G, 'shape-bad'), body), 400, 'InvalidRequest',
        { messageIncludes: 'address_prefixes', what: JSON.stringify(body) });
    }
    expectError(await h.admin.get(ids.network(G, 'shape-bad')), 404, 'ResourceNotFound');
  });

  // ---- nics -------------------------------------------------------------------
  h.test('nic: valid IPv4 and IPv6 addresses inside the prefixes', async () => {
    const a = await h.admin.put(ids.nic(G, 'nic4'), { network: ids.network(G, 'net4'), private_ip: '198.18.200.2' });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.json.id, `/groups/${G}/nics/nic4`);
    assert.equal(a.json.type, 'nics');
    assert.equal(a.json.name, 'nic4');
    assert.equal(a.json.network, ids.network(G, 'net4'));
    assert.equal(a.json.private_ip, '198.18.200.2');
    const b = await h.admin.put(ids.nic(G, 'nic6'), { network: ids.network(G, 'net6'), private_ip: '2001:db8:e2e::10' });
    assert.equal(b.status, 201, b.text);
    expectStatus(await h.admin.del(ids.nic(G, 'nic6')), [200, 204]);
  });

  const badNics = [
    ['IP outside the prefixes', { network: '/groups/G/networks/net4', private_ip: '198.18.100.2' }, 'private_ip'],
    ['IPv6 in an IPv4-only network', { network: '/groups/G/networks/net4', private_ip: '2001:db8:e2e::2' }, 'private_ip'],
    ['not an IP', { network: '/groups/G/networks/net4', private_ip: 'abc' }, 'private_ip'],
    ['IP with a prefix length', { network: '/groups/G/networks/net4', private_ip: '198.18.200.2/24' }, 'private_ip'],
    ['missing private_ip', { network: '/groups/G/networks/net4' }, 'private_ip'],
    ['private_ip not a string', { network: '/groups/G/networks/net4', private_ip: 3339372546 }, 'private_ip'],
    ['unknown network reference', { network: '/groups/G/networks/nope', private_ip: '198.18.200.2' }, 'network'],
    ['reference of the wrong type', { network: '/groups/G/nics/nic4', private_ip: '198.18.200.2' }, 'network'],
    ['malformed reference', { network: 'net4', private_ip: '198.18.200.2' }, 'network'],
    ['missing network', { private_ip: '198.18.200.2' }, 'network'],
  ];
  for (const [label, body, field] of badNics) {
    h.test(`nic refused: ${label}`, async () => {
      const b = JSON.parse(JSON.stringify(body).replaceAll('/groups/G/', `/groups/${G}/`));
      expectError(await h.admin.put(ids.nic(G, 'nic-bad'), b), 400, 'InvalidRequest', { messageIncludes: field, what: label });
    });
  }

  // ---- vms ----------------------------------------------------------------------
  h.test('vm: defaults ssh_port 22 and host_keys []', async () => {
    const r = await h.admin.put(ids.vm(G, 'vm-default'), { nic: ids.nic(G, 'nic4') });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.type, 'vms');
    assert.equal(r.json.name, 'vm-default');
    assert.equal(r.json.id, `/groups/${G}/vms/vm-default`);
    assert.equal(r.json.nic, ids.nic(G, 'nic4'));
    assert.equal(r.json.ssh_port, 22);
    assert.deepEqual(r.json.host_keys, []);
    const g = await h.admin.get(ids.vm(G, 'vm-default'));
    assert.equal(g.json.ssh_port, 22);
    assert.deepEqual(g.json.host_keys, []);
    const hk = [`198.18.200.2 ${hostKey}`];
    const p = await h.admin.put(ids.vm(G, 'vm-default'), { nic: ids.nic(G, 'nic4'), ssh_port: 2222, host_keys: hk });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.json.ssh_port, 2222);
    // the stored line may be normalised (e.g. the host pattern dropped): the key itself must be kept
    assert.ok(Array.isArray(p.json.host_keys) && p.json.host_keys.length === 1 && p.json.host_keys[0].includes(hostKey),
      `host_keys keeps the pinned key: ${JSON.stringify(p.json.host_keys)}`);
    expectStatus(await h.admin.del(ids.vm(G, 'vm-default')), [200, 204]);
  });

  const badVms = [
    ['ssh_port 0', { ssh_port: 0 }, 'ssh_port'],
    ['ssh_port 65536', { ssh_port: 65536 }, 'ssh_port'],
    ['ssh_port -1', { ssh_port: -1 }, 'ssh_port'],
    ['ssh_port "22" (string)', { ssh_port: '22' }, 'ssh_port'],
    ['ssh_port 22.5', { ssh_port: 22.5 }, 'ssh_port'],
    ['unknown nic reference', { nic: '/groups/G/nics/nope' }, 'nic'],
    ['nic reference of the wrong type', { nic: '/groups/G/networks/net4' }, 'nic'],
    ['missing nic', { nic: undefined }, 'nic'],
    ['host_keys not a list', { host_keys: 'ssh-ed25519 AAAA' }, 'host_keys'],
    ['host_keys line that is not a key', { host_keys: ['this is not a known_hosts line'] }, 'host_keys'],
  ];
  for (const [label, over, field] of badVms) {
    h.test(`vm refused: ${label}`, async () => {
      const body = { nic: `/groups/${G}/nics/nic4`, ...over };
      if (typeof body.nic === 'string') body.nic = body.nic.replace('/groups/G/', `/groups/${G}/`);
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
      expectError(await h.admin.put(ids.vm(G, 'vm-bad'), body), 400, 'InvalidRequest', { messageIncludes: field, what: label });
    });
  }

  // ---- bastions ---------------------------------------------------------------------
  h.test('bastion: networks list; refusals name "networks"', async () => {
    const r = await h.admin.put(ids.bastion(G, 'bas1'), { networks: [ids.network(G, 'net4')] });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.type, 'bastions');
    assert.equal(r.json.id, `/groups/${G}/bastions/bas1`);
    assert.deepEqual(r.json.networks, [ids.network(G, 'net4')]);
    for (const body of [{ networks: [ids.network(G, 'nope')] }, { networks: ids.network(G, 'net4') }, { networks: [ids.nic(G, 'nic4')] }]) {
      expectError(await h.admin.put(ids.bastion(G, 'bas-bad'), body), 400, 'InvalidRequest',
        { messageIncludes: 'networks', what: JSON.stringify(body) });
    }
  });

  // ---- 404 ------------------------------------------------------------------------------
  h.test('unknown resources: 404 ResourceNotFound', async () => {
    expectError(await h.admin.get('/groups/e2e-nope'), 404, 'ResourceNotFound');
    expectError(await h.admin.get(ids.network(G, 'nope')), 404, 'ResourceNotFound');
    expectError(await h.admin.get(ids.nic(G, 'nope')), 404, 'ResourceNotFound');
    expectError(await h.admin.get(ids.vm(G, 'nope')), 404, 'ResourceNotFound');
    expectError(await h.admin.get(ids.bastion(G, 'nope')), 404, 'ResourceNotFound');
    expectError(await h.admin.del(ids.network(G, 'nope')), 404, 'ResourceNotFound');
    expectError(await h.admin.del('/groups/e2e-nope'), 404, 'ResourceNotFound');
    expectError(await h.admin.get('/groups/e2e-nope/networks/x'), 404, 'ResourceNotFound');
    expectError(await h.admin.put('/groups/e2e-nope/networks/x', { address_prefixes: ['198.18.0.0/24'] }), 404, 'ResourceNotFound');
  });

  // ---- 409 --------------------------------------------------------------------------------
  h.test('deleting what is still referenced: 409 ResourceInUse; in order it works', async () => {
    const g = 'e2e-inuse';
    await putOk(h.admin, ids.group(g), {});
    await putOk(h.admin, ids.network(g, 'n'), { address_prefixes: ['198.18.210.0/24'] });
    await putOk(h.admin, ids.network(g, 'nb'), { address_prefixes: ['198.18.211.0/24'] });
    await putOk(h.admin, ids.nic(g, 'x'), { network: ids.network(g, 'n'), private_ip: '198.18.210.2' });
    await putOk(h.admin, ids.vm(g, 'v'), { nic: ids.nic(g, 'x') });
    await putOk(h.admin, ids.bastion(g, 'b'), { networks: [ids.network(g, 'nb')] });

    expectError(await h.admin.del(ids.network(g, 'n')), 409, 'ResourceInUse', { what: 'network used by a nic' });
    expectError(await h.admin.del(ids.network(g, 'nb')), 409, 'ResourceInUse', { what: 'network used by a bastion' });
    expectError(await h.admin.del(ids.nic(g, 'x')), 409, 'ResourceInUse', { what: 'nic used by a vm' });
    expectError(await h.admin.del(ids.group(g)), 409, 'ResourceInUse', { what: 'group with resources' });
    // nothing was deleted by the refusals
    for (const id of [ids.network(g, 'n'), ids.network(g, 'nb'), ids.nic(g, 'x'), ids.vm(g, 'v'), ids.bastion(g, 'b')]) {
      expectStatus(await h.admin.get(id), 200, `${id} still there`);
    }
    for (const id of [ids.vm(g, 'v'), ids.nic(g, 'x'), ids.network(g, 'n'), ids.bastion(g, 'b'), ids.network(g, 'nb'), ids.group(g)]) {
      expectStatus(await h.admin.del(id), [200, 204], `DELETE ${id}`);
      expectError(await h.admin.get(id), 404, 'ResourceNotFound', { what: `${id} after delete` });
    }
  });

  // ---- body limits and parsing ---------------------------------------------------------------
  h.test('body over 1 MiB: 413 RequestTooLarge', async () => {
    const big = JSON.stringify({ address_prefixes: ['198.18.220.0/24'], pad: 'x'.repeat((1 << 20) + 1024) });
    let r;
    try {
      r = await h.admin.request('PUT', ids.network(G, 'big'), { raw: big });
    } catch (e) {
      assert.fail(`no HTTP answer to an oversized body (${e.code || e.message}): answer 413 before closing, `
        + 'and do not reset the connection with the answer unread');
    }
    expectError(r, 413, 'RequestTooLarge');
    expectError(await h.admin.get(ids.network(G, 'big')), 404, 'ResourceNotFound');
    // the daemon is still fine afterwards
    expectStatus(await h.admin.get(ids.network(G, 'net4')), 200);
  });

  h.test('malformed JSON and non-object JSON: 400 InvalidRequest', async () => {
    for (const raw of ['{"address_prefixes": [', 'not json', '{"address_prefixes": ["198.18.0.0/24"]} trailing', '[]', '42', '"x"', '']) {
      const r = await h.admin.request('PUT', ids.network(G, 'badjson'), { raw });
      expectError(r, 400, 'InvalidRequest', { what: `body ${JSON.stringify(raw)}` });
    }
    expectError(await h.admin.get(ids.network(G, 'badjson')), 404, 'ResourceNotFound');
  });

  h.test('wrong method: 405', async () => {
    for (const [method, path] of [
      ['POST', `/groups/${G}`],
      ['POST', ids.network(G, 'net4')],
      ['PATCH', ids.network(G, 'net4')],
      ['GET', '/auth/login'],
      ['DELETE', '/api/v1/healthz'],
    ]) {
      const r = await h.admin.request(method, path, { body: method === 'GET' ? undefined : {} });
      assert.equal(r.status, 405, `${method} ${path}: got ${r.status} ${r.text}`);
    }
  });

  h.test('no secret in any response or log line', async () => {
    h.assertNoLeaks();
  });
});
