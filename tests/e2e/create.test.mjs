// Create-only writes (issue 19 item 7, docs/api.md "Conventions"): a PUT
// with If-None-Match: * creates and never replaces — 412
// PreconditionFailed when the group, resource, user or role assignment
// exists, which stays as it was — and the audit record of a replacing PUT
// names the top-level properties that changed.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import { expectError, expectStatus } from './lib/api.mjs';
import { randomString } from './lib/util.mjs';

const h = fileHarness({ label: 'create' });
const NEW = { headers: { 'If-None-Match': '*' } };

describe('create-only PUT', () => {
  before(() => h.up(), { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('groups and resources: 201 once, then 412 and left as they were; without the header a replace', async () => {
    expectStatus(await h.admin.put('/groups/cr', {}, NEW), 201, 'group create-only');
    expectError(await h.admin.put('/groups/cr', {}, NEW), 412, 'PreconditionFailed');
    expectStatus(await h.admin.put('/groups/cr', {}), 200, 'group replace');

    const net = '/groups/cr/networks/n1';
    expectStatus(await h.admin.put(net, { address_prefixes: ['10.7.0.0/16'] }, NEW), 201, 'network create-only');
    const refused = await h.admin.put(net, { address_prefixes: ['10.8.0.0/16'] }, NEW);
    expectError(refused, 412, 'PreconditionFailed', { messageIncludes: net });
    assert.deepEqual((await h.admin.get(net)).json.address_prefixes, ['10.7.0.0/16'], 'unchanged');
    // Only "*" means create-only; an ETag-like value is not a precondition here.
    expectStatus(await h.admin.put(net, { address_prefixes: ['10.9.0.0/16'] }, { headers: { 'If-None-Match': '"abc"' } }), 200, 'replace');
    assert.deepEqual((await h.admin.get(net)).json.address_prefixes, ['10.9.0.0/16']);
  });

  h.test('the audit record of a replacing PUT names the properties that changed', async () => {
    const vm = '/groups/cr/vms/v1';
    expectStatus(await h.admin.put('/groups/cr/nics/nic1', { network: '/groups/cr/networks/n1', private_ip: '10.9.0.5' }), 201, 'nic');
    expectStatus(await h.admin.put(vm, { nic: '/groups/cr/nics/nic1' }), 201, 'vm');
    expectStatus(await h.admin.put(vm, { nic: '/groups/cr/nics/nic1', ssh_port: 2222 }), 200, 'vm replaced');
    expectStatus(await h.admin.put(vm, { nic: '/groups/cr/nics/nic1', ssh_port: 2222 }), 200, 'vm replaced, same');
    const r = expectStatus(await h.admin.get(`/audit?action=resource.put&target=${encodeURIComponent(vm)}`), 200, 'audit');
    const [same, changed, created] = r.json.value; // newest first
    assert.equal(created.result, 'created');
    assert.equal(created.detail, null);
    assert.equal(changed.result, 'replaced');
    assert.deepEqual(changed.detail, { changed: ['ssh_port'] });
    assert.equal(same.result, 'replaced');
    assert.deepEqual(same.detail, { changed: [] });
  });

  h.test('users and role assignments: 412 when they exist; the user keeps its password', async () => {
    const pw = `Pw-${randomString(20)}`;
    const other = `Pw-${randomString(20)}`;
    h.secrets.add(pw, 'cr-user password');
    h.secrets.add(other, 'cr-user other password');
    expectStatus(await h.admin.put('/users/cr-user', { password: pw }, NEW), 201, 'user create-only');
    expectError(await h.admin.put('/users/cr-user', { password: other }, NEW), 412, 'PreconditionFailed');
    await h.client('cr-user').login('cr-user', pw);

    const ra = { principal: 'user:cr-user', role: 'Reader', scope: '/groups/cr' };
    expectStatus(await h.admin.put('/role-assignments/cr-ra', ra, NEW), 201, 'role create-only');
    expectError(await h.admin.put('/role-assignments/cr-ra', { ...ra, role: 'Owner' }, NEW), 412, 'PreconditionFailed');
    assert.equal((await h.admin.get('/role-assignments/cr-ra')).json.role, 'Reader');
    // A replace (without the header) names what changed.
    expectStatus(await h.admin.put('/role-assignments/cr-ra', { ...ra, role: 'Contributor' }), 200, 'role replaced');
    const au = expectStatus(await h.admin.get('/audit?action=role.put&target=%2Frole-assignments%2Fcr-ra'), 200, 'audit');
    assert.deepEqual(au.json.value[0].detail.changed, ['role']);
    assert.equal(au.json.value[1].detail.changed, undefined, 'a create has no "changed"');
 
    // A user's replacing PUT names what changed too (never the password's value).
    expectStatus(await h.admin.put('/users/cr-user', { disabled: true }), 200, 'user disabled');
    expectStatus(await h.admin.put('/users/cr-user', { password: other }), 200, 'user password, enabled again');
    expectStatus(await h.admin.put('/users/cr-user', {}), 200, 'user unchanged');
    const uu = expectStatus(await h.admin.get('/audit?action=user.update&target=user%3Acr-user'), 200, 'user audit');
    const [unchanged, pwd, dis] = uu.json.value; // newest first
    assert.deepEqual(dis.detail.changed, ['disabled']);
    assert.deepEqual(pwd.detail.changed, ['password', 'disabled']);
    assert.deepEqual(unchanged.detail.changed, []);
  });
});
