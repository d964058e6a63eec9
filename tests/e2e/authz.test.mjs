// Roles and scopes (docs/access-control.md): role assignments over the REST API,
// inheritance from group and root scopes, list filtering without leaks,
// and escalation attempts that must be refused (a Contributor assigning
// roles, a Reader writing, an Owner of one group acting on another, "..",
// encoded %2F, odd casing and trailing slashes), and the last Owner at "/".
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import { expectError, expectStatus, putOk } from './lib/api.mjs';
import { randomString } from './lib/util.mjs';

const h = fileHarness({ label: 'authz' });
const users = {};

async function newUser(name) {
  const { c } = await h.newUser(name);
  users[name] = c;
  return c;
}

async function assign(client, id, principal, role, scope, status = 201) {
  const r = await client.put(`/role-assignments/${id}`, { principal, role, scope });
  expectStatus(r, status, `assign ${id}: ${role} on ${scope} to ${principal}`);
  return r;
}

const names = (r) => r.json.value.map((a) => a.name).sort();

describe('authz', () => {
  before(async () => {
    await h.up();
    for (const g of ['a', 'b', 'ab']) await putOk(h.admin, `/groups/${g}`, {});
    await putOk(h.admin, '/groups/a/networks/n', { address_prefixes: ['198.18.200.0/24'] });
    await putOk(h.admin, '/groups/b/networks/n', { address_prefixes: ['198.18.201.0/24'] });
    for (const u of ['reader-a', 'contrib-a', 'owner-a', 'owner-b', 'net-b', 'root-contrib', 'plain', 'root2']) await newUser(u);
    await assign(h.admin, 'ra-reader-a', 'user:reader-a', 'Reader', '/groups/a');
    await assign(h.admin, 'ra-contrib-a', 'user:contrib-a', 'Contributor', '/groups/a');
    await assign(h.admin, 'ra-owner-a', 'user:owner-a', 'Owner', '/groups/a');
    await assign(h.admin, 'ra-owner-b', 'user:owner-b', 'Owner', '/groups/b');
    await assign(h.admin, 'ra-net-b', 'user:net-b', 'Reader', '/groups/b/networks/n');
    await assign(h.admin, 'ra-root-contrib', 'user:root-contrib', 'Contributor', '/');
  }, { timeout: 120000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('PUT 201 then 200 (idempotent), GET, DELETE 204, then 404', async () => {
    const body = { principal: 'user:plain', role: 'Reader', scope: '/groups/ab' };
    const r1 = await h.admin.put('/role-assignments/crud-1', body);
    expectStatus(r1, 201, 'create');
    assert.deepEqual({ ...r1.json, created_at: 0 },
      { id: '/role-assignments/crud-1', type: 'role-assignments', name: 'crud-1', ...body, created_at: 0 });
    expectStatus(await h.admin.put('/role-assignments/crud-1', body), 200, 'same body again');
    // a GET result can be PUT back
    const g = await h.admin.get('/role-assignments/crud-1');
    expectStatus(g, 200, 'get');
    expectStatus(await h.admin.put('/role-assignments/crud-1', g.json), 200, 'GET result PUT back');
    const l = await h.admin.get('/role-assignments?principal=user:plain');
    assert.deepEqual(names(l), ['crud-1']);
    expectStatus(await h.admin.del('/role-assignments/crud-1'), 204, 'delete');
    expectError(await h.admin.get('/role-assignments/crud-1'), 404, 'ResourceNotFound');
    expectError(await h.admin.del('/role-assignments/crud-1'), 404, 'ResourceNotFound');
    // UUIDs are fine as ids
    const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
    expectStatus(await h.admin.put(`/role-assignments/${uuid}`, body), 201, 'uuid id');
    expectStatus(await h.admin.del(`/role-assignments/${uuid}`), 204, 'uuid delete');
  });

  h.test('shape errors: 400 naming id, principal, role, scope or the unknown property', async () => {
    const ok = { principal: 'user:plain', role: 'Reader', scope: '/groups/a' };
    for (const id of ['-x', '.x', 'a%2Fb', 'a%20b', 'x'.repeat(65), '%2E%2E']) {
      expectError(await h.admin.put(`/role-assignments/${id}`, ok), 400, 'InvalidRequest', { messageIncludes: 'id', what: id });
      expectError(await h.admin.get(`/role-assignments/${id}`), 404, 'ResourceNotFound', { what: id });
    }
    expectError(await h.admin.put('/role-assignments/x/', ok), 404, 'NotFound', { what: 'trailing slash' });
    const bad = [
      [{ role: 'Reader', scope: '/groups/a' }, 'principal'],
      [{ ...ok, principal: 'plain' }, 'principal'],
      [{ ...ok, principal: 'group:plain' }, 'principal'],
      [{ ...ok, principal: 'user:nobody-here' }, 'principal'],
      [{ ...ok, principal: 42 }, 'principal'],
      [{ ...ok, role: 'owner' }, 'role'],
      [{ ...ok, role: 'Admin' }, 'role'],
      [{ principal: 'user:plain', scope: '/groups/a' }, 'role'],
      [{ ...ok, scope: '/groups/a/' }, 'scope'],
      [{ ...ok, scope: '/Groups/a' }, 'scope'],
      [{ ...ok, scope: 'groups/a' }, 'scope'],
      [{ ...ok, scope: '//' }, 'scope'],
      [{ ...ok, scope: '' }, 'scope'],
      [{ ...ok, scope: '/groups/a/../b' }, 'scope'],
      [{ ...ok, scope: '/groups/a%2Fnetworks%2Fn' }, 'scope'],
      [{ ...ok, scope: '/groups/a/NETWORKS/n' }, 'scope'],
      [{ ...ok, scope: '/groups/a/networks/n/' }, 'scope'],
      [{ ...ok, scope: '/groups/nope' }, 'scope'],
      [{ ...ok, scope: '/groups/a/networks/nope' }, 'scope'],
      [{ ...ok, extra: 1 }, 'extra'],
    ];
    for (const [body, field] of bad) {
      expectError(await h.admin.put('/role-assignments/shape-1', body), 400, 'InvalidRequest',
        { messageIncludes: field, what: JSON.stringify(body) });
    }
    expectError(await h.admin.get('/role-assignments/shape-1'), 404, 'ResourceNotFound', { what: 'nothing was created' });
  });

  h.test('inheritance: Reader on a group reads what is in it; Contributor on / writes anywhere', async () => {
    const ra = users['reader-a'];
    expectStatus(await ra.get('/groups/a'), 200, 'group');
    expectStatus(await ra.get('/groups/a/networks/n'), 200, 'network in group');
    expectError(await ra.get('/groups/b/networks/n'), 404, 'ResourceNotFound', { what: 'other group' });
    expectError(await ra.get('/groups/ab'), 404, 'ResourceNotFound', { what: 'look-alike group name' });
    const rc = users['root-contrib'];
    expectStatus(await rc.put('/groups/b/networks/rc', { address_prefixes: ['198.18.202.0/24'] }), 201, 'root Contributor writes');
    expectStatus(await rc.del('/groups/b/networks/rc'), 204, 'root Contributor deletes');
  });

  h.test('escalation: a Reader cannot write; a Contributor cannot assign roles or manage users', async () => {
    const ra = users['reader-a'];
    expectError(await ra.put('/groups/a/networks/x', { address_prefixes: ['198.18.203.0/24'] }), 403, 'AuthorizationFailed',
      { messageIncludes: 'Contributor on /groups/a/networks/x is required' });
    expectError(await ra.del('/groups/a/networks/n'), 403, 'AuthorizationFailed', { messageIncludes: 'Contributor' });
    expectError(await ra.put('/groups/a', {}), 403, 'AuthorizationFailed');
    expectError(await ra.put('/role-assignments/esc-1', { principal: 'user:reader-a', role: 'Owner', scope: '/groups/a' }),
      403, 'AuthorizationFailed', { messageIncludes: 'Owner on /groups/a is required' });
    const ca = users['contrib-a'];
    expectError(await ca.put('/role-assignments/esc-2', { principal: 'user:contrib-a', role: 'Owner', scope: '/groups/a' }),
      403, 'AuthorizationFailed', { messageIncludes: 'Owner on /groups/a is required' });
    expectError(await ca.put('/role-assignments/ra-contrib-a', { principal: 'user:contrib-a', role: 'Owner', scope: '/groups/a' }),
      403, 'AuthorizationFailed', { messageIncludes: 'Owner on /groups/a is required', what: 'upgrade own assignment' });
    expectError(await ca.del('/role-assignments/ra-reader-a'), 403, 'AuthorizationFailed', { messageIncludes: 'Owner on /groups/a' });
    const rc = users['root-contrib'];
    expectError(await rc.put('/role-assignments/esc-3', { principal: 'user:root-contrib', role: 'Owner', scope: '/' }),
      403, 'AuthorizationFailed', { messageIncludes: 'Owner on / is required' });
    expectError(await rc.put('/users/esc-user', { password: `Pw-${randomString(20)}` }), 403, 'AuthorizationFailed',
      { messageIncludes: 'Owner on / is required' });
    for (const id of ['esc-1', 'esc-2', 'esc-3']) expectError(await h.admin.get(`/role-assignments/${id}`), 404, 'ResourceNotFound');
    expectStatus(await h.admin.get('/users/esc-user'), 404, 'no user was created');
  });

  h.test('escalation: an Owner of one group manages it, and nothing beside or above it', async () => {
    const oa = users['owner-a'];
    await assign(oa, 'oa-grants', 'user:plain', 'Reader', '/groups/a');
    await assign(oa, 'oa-grants-net', 'user:plain', 'Owner', '/groups/a/networks/n');
    const refused = [
      ['/groups/b', 403], ['/', 403], ['/groups/ab', 403], ['/groups/B', 403],
      ['/groups/a/../b', 400], ['/groups/a%2F..%2Fb', 400], ['/groups/a/', 400], ['/Groups/a', 400],
    ];
    for (const [scope, status] of refused) {
      const r = await oa.put('/role-assignments/oa-esc', { principal: 'user:owner-a', role: 'Owner', scope });
      expectError(r, status, status === 403 ? 'AuthorizationFailed' : 'InvalidRequest', { what: scope });
      if (status === 403) assert.match(r.json.error.message, new RegExp(`Owner on ${scope.replace(/[/.]/g, '\\$&')} is required`));
    }
    // moving its own assignment upwards, or taking over another's id
    expectError(await oa.put('/role-assignments/ra-owner-a', { principal: 'user:owner-a', role: 'Owner', scope: '/' }),
      403, 'AuthorizationFailed', { messageIncludes: 'Owner on / is required' });
    expectError(await oa.put('/role-assignments/bootstrap-admin-owner', { principal: 'user:owner-a', role: 'Owner', scope: '/groups/a' }),
      409, 'Conflict', { messageIncludes: 'id' });
    expectError(await oa.put('/role-assignments/ra-owner-b', { principal: 'user:owner-a', role: 'Owner', scope: '/groups/a' }),
      409, 'Conflict', { messageIncludes: 'id' });
    // assignments it cannot see are "not found" for reading and deleting
    for (const id of ['ra-owner-b', 'ra-net-b', 'bootstrap-admin-owner', 'ra-root-contrib']) {
      expectError(await oa.get(`/role-assignments/${id}`), 404, 'ResourceNotFound', { what: id });
      expectError(await oa.del(`/role-assignments/${id}`), 404, 'ResourceNotFound', { what: id });
    }
    // resources of the other group: no reading, no writing
    expectError(await oa.get('/groups/b'), 404, 'ResourceNotFound');
    expectError(await oa.put('/groups/b/networks/x', { address_prefixes: ['198.18.204.0/24'] }), 403, 'AuthorizationFailed',
      { messageIncludes: 'Contributor on /groups/b/networks/x is required' });
    expectError(await oa.del('/groups/b'), 403, 'AuthorizationFailed');
    for (const path of ['/groups/a%2F..%2Fb', '/groups/b%2Fnetworks', '/groups/A', '/groups/a/../b']) {
      const r = await oa.get(path);
      assert.ok([400, 404].includes(r.status), `${path}: ${r.status} ${r.text}`);
    }
    const trail = await oa.put('/groups/b/', {});
    assert.ok([400, 404].includes(trail.status), `trailing slash: ${trail.status}`);
    // nothing changed anywhere
    const all = await h.admin.get('/role-assignments');
    assert.deepEqual(all.json.value.find((a) => a.name === 'ra-owner-b').principal, 'user:owner-b');
    assert.deepEqual(all.json.value.find((a) => a.name === 'bootstrap-admin-owner').principal, 'user:admin');
    assert.equal(all.json.value.find((a) => a.name === 'ra-owner-a').scope, '/groups/a');
    assert.ok(!all.json.value.some((a) => a.name === 'oa-esc'));
    // and what it granted works, then goes
    expectStatus(await users.plain.get('/groups/a/networks/n'), 200, 'granted Reader works');
    expectStatus(await oa.del('/role-assignments/oa-grants'), 204, 'owner-a removes its grant');
    expectStatus(await oa.del('/role-assignments/oa-grants-net'), 204, 'owner-a removes its grant');
    expectError(await users.plain.get('/groups/a/networks/n'), 404, 'ResourceNotFound');
  });

  h.test('lists: only assignments whose scope the caller may read, or its own', async () => {
    const all = await h.admin.get('/role-assignments');
    expectStatus(all, 200, 'admin list');
    for (const id of ['bootstrap-admin-owner', 'ra-reader-a', 'ra-owner-b', 'ra-net-b']) {
      assert.ok(names(all).includes(id), `admin sees ${id}`);
    }
    assert.deepEqual(names(await users['reader-a'].get('/role-assignments')),
      ['ra-contrib-a', 'ra-owner-a', 'ra-reader-a']);
    assert.deepEqual(names(await users['owner-b'].get('/role-assignments')), ['ra-net-b', 'ra-owner-b']);
    assert.deepEqual(names(await users['net-b'].get('/role-assignments')), ['ra-net-b']);
    assert.deepEqual(names(await users.plain.get('/role-assignments')), []);
    // filters: scope (at, above and below it) and principal
    const atB = names(await h.admin.get('/role-assignments?scope=/groups/b'));
    assert.ok(atB.includes('ra-owner-b') && atB.includes('ra-net-b') && atB.includes('bootstrap-admin-owner'), atB.join());
    assert.ok(!atB.includes('ra-reader-a'), atB.join());
    assert.deepEqual(names(await h.admin.get('/role-assignments?scope=%2Fgroups%2Fb%2Fnetworks%2Fn&principal=user%3Anet-b')), ['ra-net-b']);
    assert.deepEqual(names(await users['owner-b'].get('/role-assignments?scope=/')), ['ra-net-b', 'ra-owner-b']);
    for (const q of ['scope=/groups/b/', 'scope=/Groups/b', 'principal=net-b', 'foo=1', 'scope=/&scope=/groups/a']) {
      const r = await h.admin.get(`/role-assignments?${q}`);
      expectError(r, 400, 'InvalidRequest', { what: q });
    }
    // group list filtering
    const groups = await users['reader-a'].get('/groups');
    assert.deepEqual(groups.json.value.map((g) => g.name), ['a']);
    expectError(await users['reader-a'].get('/groups/b/networks'), 404, 'ResourceNotFound');
  });

  h.test('GET /auth/session lists the caller\'s own assignments', async () => {
    const r = await users['owner-a'].get('/auth/session');
    expectStatus(r, 200, 'session');
    assert.deepEqual(r.json.roles, [{ role: 'Owner', scope: '/groups/a' }]);
  });

  h.test('the last enabled Owner at / cannot be removed or demoted (409)', async () => {
    expectError(await h.admin.del('/role-assignments/bootstrap-admin-owner'), 409, 'Conflict', { messageIncludes: 'Owner on /' });
    expectError(await h.admin.put('/role-assignments/bootstrap-admin-owner', { principal: 'user:admin', role: 'Contributor', scope: '/' }),
      409, 'Conflict', { messageIncludes: 'Owner on /' });
    expectError(await h.admin.put('/role-assignments/bootstrap-admin-owner', { principal: 'user:admin', role: 'Owner', scope: '/groups/a' }),
      409, 'Conflict');
    // with a second root Owner it can go; and the second one cannot then remove itself
    await assign(h.admin, 'root2-owner', 'user:root2', 'Owner', '/');
    expectStatus(await h.admin.del('/role-assignments/bootstrap-admin-owner'), 204, 'delete admin owner');
    const root2 = users.root2;
    expectError(await root2.del('/role-assignments/root2-owner'), 409, 'Conflict');
    expectError(await h.admin.get('/users/root2'), 403, 'AuthorizationFailed', { what: 'admin is no Owner any more' });
    await assign(root2, 'bootstrap-admin-owner', 'user:admin', 'Owner', '/');
    expectStatus(await h.admin.get('/users/root2'), 200, 'admin is Owner again');
  });

  h.test('no password in any response or log line', async () => {
    h.assertNoLeaks();
  });

  h.testCleanExit('SIGTERM: exits 0 within 10 s (under ASan: no leak, no report)');
});
