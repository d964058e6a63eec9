// The CLI for the vault (issue 4 item 6, docs/cli.md, docs/vault.md):
// `bastion vault create|list|show|delete|policy|rotate-master-key` and
// `bastion secret set|list|show|versions|delete|recover`, run as a real
// process against the real daemon and checked against what the API itself
// answers. Values go in from a file or stdin and come back byte-exact with
// `show --value`; they never appear anywhere else: not in a list, not in
// `show` without --value, not on stderr, not in the daemon's log.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import { runCli, expectCode, noTrailingSpaces, tableRows } from './lib/cli.mjs';
import { Client, expectStatus, putOk } from './lib/api.mjs';
import { randomString } from './lib/util.mjs';

const h = fileHarness({ label: 'cli-vault', daemon: true });
const G = 'cliv';
const KV = `/groups/${G}/vaults/kv`;

function cli(args, opts) {
  return runCli(h, args, opts);
}

// The API's error, exactly as the CLI must print it.
function apiErrorLine(res) {
  assert.ok(res.json && res.json.error, `an API error: ${res.status} ${res.text}`);
  return `bastion: ${res.json.error.code}: ${res.json.error.message}\n`;
}

function url() { return `https://127.0.0.1:${h.daemon.port}`; }
function caFile() { return path.join(h.daemon.dataDir, 'tls-cert.pem'); }

async function login(user, password, xdg) {
  const r = await cli(['login', url(), '--username', user, '--password-stdin', '--ca-file', caFile()],
    { input: `${password}\n`, xdg });
  expectCode(r, 0, `login ${user}`);
  const cfg = JSON.parse(fs.readFileSync(path.join(h.dir, xdg, 'bastion', 'config.json'), 'utf8'));
  h.secrets.add(cfg.token, `the CLI token of ${user}`);
}

// A value the test stores: registered as a secret (whole, and its
// distinctive line) so that any copy outside `show --value` is caught.
function secretValue(label, { trailingNewline = true, crlf = false } = {}) {
  const line = `Vault-${label}-${randomString(32)}`;
  const nl = crlf ? '\r\n' : '\n';
  const v = `-----BEGIN TEST SECRET-----${nl}${line}${nl}ünïcødé ✓ "quotes" \\ back\tslash${nl}-----END TEST SECRET-----${trailingNewline ? nl : ''}`;
  h.secrets.add(v, `value ${label}`);
  h.secrets.add(line, `value line ${label}`);
  return v;
}

// Reads audit entries without the client's secret scan (they hold no values).
async function auditCount(action, target) {
  const r = await h.admin.get(`/audit?limit=1000&action=${encodeURIComponent(action)}&target=${encodeURIComponent(target)}`);
  expectStatus(r, 200, 'GET /audit');
  return r.json.value.length;
}

describe('cli-vault', () => {
  let bobPassword;
  let bobApi;

  before(async () => {
    await h.up();
    fs.mkdirSync(path.join(h.dir, 'home'), { recursive: true, mode: 0o700 });
    await putOk(h.admin, `/groups/${G}`, {});
    bobPassword = `Bob-${randomString(20)}`;
    h.secrets.add(bobPassword, 'cv-bob password');
    expectStatus(await h.admin.put('/users/cv-bob', { password: bobPassword }), 201, 'create cv-bob');
    bobApi = h.client('cv-bob');
    await bobApi.login('cv-bob', bobPassword);
    await login('admin', h.daemon.adminPassword, 'xdg');
    await login('cv-bob', bobPassword, 'xdg-bob');
  }, { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('vault create/list/show/delete go through the generic resource commands', async () => {
    let r = await cli(['vault', 'create', G, 'kv', '--retention-days', '30', '-o', 'json']);
    expectCode(r, 0, 'vault create');
    const api = (await h.admin.get(KV)).json;
    assert.deepEqual(JSON.parse(r.stdout), api, 'create prints the resource');
    assert.deepEqual(api, { id: KV, type: 'vaults', name: 'kv', soft_delete_retention_days: 30 });
    // set is create's alias, and a PUT: without the flag the default comes back.
    expectCode(await cli(['vault', 'set', G, 'tmp']), 0, 'vault set');
    assert.equal((await h.admin.get(`/groups/${G}/vaults/tmp`)).json.soft_delete_retention_days, 7);

    r = await cli(['vault', 'list', G, '-o', 'json']);
    expectCode(r, 0, 'vault list json');
    assert.deepEqual(JSON.parse(r.stdout), (await h.admin.get(`/groups/${G}/vaults`)).json.value);
    r = await cli(['vault', 'list', G]);
    expectCode(r, 0, 'vault list');
    noTrailingSpaces(r.stdout, 'vault list');
    assert.deepEqual(tableRows(r.stdout), [['NAME', 'RETENTION_DAYS'], ['kv', '30'], ['tmp', '7']]);
    r = await cli(['vault', 'show', G, 'kv']);
    expectCode(r, 0, 'vault show');
    assert.match(r.stdout, /^PROPERTY\s+VALUE\n/);
    assert.match(r.stdout, /\nsoft_delete_retention_days\s+30\n/);

    // The API checks the range; its message comes through with exit 1.
    const bad = await h.admin.put(`/groups/${G}/vaults/bad`, { soft_delete_retention_days: 1 });
    r = await cli(['vault', 'set', G, 'bad', '--retention-days', '1']);
    expectCode(r, 1, 'retention out of range');
    assert.equal(r.stderr, apiErrorLine(bad));
    expectCode(await cli(['vault', 'set', G, 'bad', '--retention-days', 'week']), 2, 'not a number');

    expectCode(await cli(['vault', 'delete', G, 'tmp']), 0, 'vault delete');
    expectStatus(await h.admin.get(`/groups/${G}/vaults/tmp`), 404, 'vault gone');
    r = await cli(['vault', 'delete', G, 'tmp']);
    expectCode(r, 4, 'delete again');
    assert.match(r.stderr, /^bastion: ResourceNotFound: /);
    r = await cli(['vault', '--help']);
    expectCode(r, 0, 'vault --help');
    assert.match(r.stdout, /--retention-days N/);
    assert.match(r.stdout, /vault policy/);
    assert.match(r.stdout, /rotate-master-key/);
  });

  h.test('vault policy set/list/show/delete match the API', async () => {
    let r = await cli(['vault', 'policy', 'set', G, 'kv', 'admin', '--permissions', 'delete,set,get,list', '-o', 'json']);
    expectCode(r, 0, 'policy set admin');
    const api = (await h.admin.get(`${KV}/access-policies/user:admin`)).json;
    assert.deepEqual(JSON.parse(r.stdout), api);
    assert.deepEqual(api.secret_permissions, ['list', 'get', 'set', 'delete']);
    r = await cli(['vault', 'policy', 'set', G, 'kv', 'user:cv-bob', '--permissions', 'list']);
    expectCode(r, 0, 'policy set bob');
    assert.match(r.stdout, /\nsecret_permissions\s+list\n/);

    r = await cli(['vault', 'policy', 'list', G, 'kv', '-o', 'json']);
    expectCode(r, 0, 'policy list json');
    assert.deepEqual(JSON.parse(r.stdout), (await h.admin.get(`${KV}/access-policies`)).json.value);
    r = await cli(['vault', 'policy', 'list', G, 'kv']);
    expectCode(r, 0, 'policy list');
    noTrailingSpaces(r.stdout, 'policy list');
    const rows = tableRows(r.stdout);
    assert.deepEqual(rows[0], ['PRINCIPAL', 'PERMISSIONS']);
    assert.deepEqual(rows.slice(1).sort(), [['user:admin', 'list,get,set,delete'], ['user:cv-bob', 'list']]);
    r = await cli(['vault', 'policy', 'show', G, 'kv', 'cv-bob', '-o', 'json']);
    expectCode(r, 0, 'policy show');
    assert.deepEqual(JSON.parse(r.stdout), (await h.admin.get(`${KV}/access-policies/user:cv-bob`)).json);

    // Errors: the API's code and message, its exit code; bad flags send nothing.
    const apiBad = await h.admin.put(`${KV}/access-policies/user:nobody`, { secret_permissions: ['get'] });
    r = await cli(['vault', 'policy', 'set', G, 'kv', 'nobody', '--permissions', 'get']);
    expectCode(r, 1, 'policy for a missing user');
    assert.equal(r.stderr, apiErrorLine(apiBad));
    const apiOwner = await bobApi.put(`${KV}/access-policies/user:cv-bob`, { secret_permissions: ['get'] });
    r = await cli(['vault', 'policy', 'set', G, 'kv', 'cv-bob', '--permissions', 'get'], { xdg: 'xdg-bob' });
    expectCode(r, 1, 'bob may not change policies');
    assert.equal(r.stderr, apiErrorLine(apiOwner));
    for (const perms of ['read', 'get,get', 'get,', ',get', 'GET', 'get,,set']) {
      r = await cli(['vault', 'policy', 'set', G, 'kv', 'cv-bob', '--permissions', perms]);
      expectCode(r, 2, `--permissions ${perms}`);
      assert.match(r.stderr, /^bastion: --permissions must be/);
    }
    expectCode(await cli(['vault', 'policy', 'set', G, 'kv', 'cv-bob']), 2, 'set without --permissions');
    expectCode(await cli(['vault', 'policy', 'list', G, 'kv', '--permissions', 'get']), 2, '--permissions on list');
    expectCode(await cli(['vault', 'policy', 'frob', G, 'kv']), 2, 'unknown policy action');
    expectCode(await cli(['vault', 'policy', 'show', G, 'kv']), 2, 'show without a principal');

    // An empty list is a policy that grants nothing.
    r = await cli(['vault', 'policy', 'set', G, 'kv', 'cv-bob', '--permissions', '', '-o', 'json']);
    expectCode(r, 0, 'policy set with no permissions');
    assert.deepEqual(JSON.parse(r.stdout).secret_permissions, []);

    // Delete, then it is gone; a second delete is a 404.
    expectCode(await cli(['vault', 'policy', 'set', G, 'kv', 'cv-bob', '--permissions', 'get']), 0, 'policy set get');
    r = await cli(['vault', 'policy', 'delete', G, 'kv', 'cv-bob']);
    expectCode(r, 0, 'policy delete');
    assert.equal(r.stdout, `Deleted the access policy of user:cv-bob on ${KV}\n`);
    expectStatus(await h.admin.get(`${KV}/access-policies/user:cv-bob`), 404, 'policy gone');
    r = await cli(['vault', 'policy', 'delete', G, 'kv', 'cv-bob']);
    expectCode(r, 4, 'delete again');
    assert.match(r.stderr, /^bastion: ResourceNotFound: /);
  });

  h.test('secret set from a file and from stdin; show --value is byte-exact; list and show carry no value', async () => {
    const fromFile = secretValue('file', { crlf: true });
    const fromStdin = secretValue('stdin', { trailingNewline: false });
    const file = path.join(h.dir, 'value.pem');
    fs.writeFileSync(file, fromFile, { mode: 0o600 });

    let r = await cli(['secret', 'set', G, 'kv', 'from-file', '--file', file, '--content-type', 'application/x-pem-file', '-o', 'json']);
    expectCode(r, 0, 'secret set --file');
    const meta = JSON.parse(r.stdout);
    assert.equal(meta.name, 'from-file');
    assert.equal(meta.content_type, 'application/x-pem-file');
    assert.equal(meta.versions, 1);
    assert.match(meta.version, /^[0-9a-f]{32}$/);
    assert.ok(!('value' in meta), 'set prints no value');
    assert.equal(r.stderr, '');

    r = await cli(['secret', 'set', G, 'kv', 'from-stdin', '--value-stdin'], { input: Buffer.from(fromStdin, 'utf8') });
    expectCode(r, 0, 'secret set --value-stdin');
    assert.match(r.stdout, /^PROPERTY\s+VALUE\n/);
    assert.match(r.stdout, /\nname\s+from-stdin\n/);

    for (const [name, want] of [['from-file', fromFile], ['from-stdin', fromStdin]]) {
      r = await cli(['secret', 'show', G, 'kv', name, '--value'], { valueOut: true });
      expectCode(r, 0, `show --value ${name}`);
      assert.ok(r.out.equals(Buffer.from(want, 'utf8')), `${name}: byte-exact, got ${JSON.stringify(r.stdout)}`);
      assert.equal(r.stderr, '', 'nothing on stderr');
    }

    // A second version; --version reads the first one back.
    const v2 = secretValue('file-v2');
    r = await cli(['secret', 'set', G, 'kv', 'from-file', '--value-stdin', '-o', 'json'], { input: v2 });
    expectCode(r, 0, 'second version');
    assert.equal(JSON.parse(r.stdout).versions, 2);
    r = await cli(['secret', 'show', G, 'kv', 'from-file', '--value'], { valueOut: true });
    assert.equal(r.stdout, v2, 'the newest version');
    r = await cli(['secret', 'show', G, 'kv', 'from-file', '--value', '--version', meta.version], { valueOut: true });
    expectCode(r, 0, 'show --version --value');
    assert.ok(r.out.equals(Buffer.from(fromFile, 'utf8')), 'the first version, byte-exact');

    // versions: newest first, as the API lists them.
    r = await cli(['secret', 'versions', G, 'kv', 'from-file', '-o', 'json']);
    expectCode(r, 0, 'versions json');
    const apiVersions = (await h.admin.get(`${KV}/secrets/from-file/versions`)).json.value;
    assert.deepEqual(JSON.parse(r.stdout), apiVersions);
    assert.equal(apiVersions.length, 2);
    assert.equal(apiVersions[1].version, meta.version);
    r = await cli(['secret', 'versions', G, 'kv', 'from-file']);
    noTrailingSpaces(r.stdout, 'versions');
    assert.deepEqual(tableRows(r.stdout)[0], ['VERSION', 'CREATED_AT', 'CONTENT_TYPE']);
    assert.equal(tableRows(r.stdout)[2][0], meta.version);
    assert.equal(tableRows(r.stdout)[2][2], 'application/x-pem-file');

    // list: names and metadata, never a value.
    const apiList = (await h.admin.get(`${KV}/secrets`)).json.value;
    r = await cli(['secret', 'list', G, 'kv', '-o', 'json']);
    expectCode(r, 0, 'list json');
    assert.deepEqual(JSON.parse(r.stdout), apiList);
    assert.ok(JSON.parse(r.stdout).every((s) => !('value' in s)), 'no value in the list');
    r = await cli(['secret', 'list', G, 'kv']);
    expectCode(r, 0, 'list');
    noTrailingSpaces(r.stdout, 'list');
    const rows = tableRows(r.stdout);
    assert.deepEqual(rows[0], ['NAME', 'VERSION', 'VERSIONS', 'CONTENT_TYPE', 'UPDATED_AT']);
    assert.deepEqual(rows.slice(1).map((row) => [row[0], row[2]]), [['from-file', '2'], ['from-stdin', '1']]);

    // show without --value: the metadata only, and no read is audited.
    const reads = await auditCount('secret.get', `${KV}/secrets/from-file`);
    r = await cli(['secret', 'show', G, 'kv', 'from-file', '-o', 'json']);
    expectCode(r, 0, 'show json');
    const shown = JSON.parse(r.stdout);
    assert.deepEqual(shown, apiList.find((s) => s.name === 'from-file'));
    assert.ok(!('value' in shown));
    r = await cli(['secret', 'show', G, 'kv', 'from-file', '--version', meta.version, '-o', 'json']);
    expectCode(r, 0, 'show --version json');
    const old = JSON.parse(r.stdout);
    assert.equal(old.version, meta.version);
    assert.equal(old.content_type, 'application/x-pem-file');
    assert.equal(old.version_created_at, apiVersions[1].created_at);
    assert.ok(!('value' in old));
    r = await cli(['secret', 'show', G, 'kv', 'from-file']);
    expectCode(r, 0, 'show table');
    assert.match(r.stdout, /^PROPERTY\s+VALUE\n/);
    assert.ok(!/\nvalue\s/.test(r.stdout), 'no value row');
    assert.equal(await auditCount('secret.get', `${KV}/secrets/from-file`), reads, 'show without --value reads no value');
    expectCode(await cli(['secret', 'show', G, 'kv', 'from-file', '--value'], { valueOut: true }), 0, 'show --value');
    assert.equal(await auditCount('secret.get', `${KV}/secrets/from-file`), reads + 1, 'show --value is audited');
  });

  h.test('delete, list --deleted, recover, purge', async () => {
    const v = secretValue('temp');
    expectCode(await cli(['secret', 'set', G, 'kv', 'temp', '--value-stdin'], { input: v }), 0, 'set temp');
    let r = await cli(['secret', 'delete', G, 'kv', 'temp']);
    expectCode(r, 0, 'soft delete');
    assert.match(r.stdout, /^Deleted secret \/groups\/cliv\/vaults\/kv\/secrets\/temp \(recoverable: bastion secret recover cliv kv temp\)\n$/);
    const gone = await h.admin.get(`${KV}/secrets/temp`);
    r = await cli(['secret', 'show', G, 'kv', 'temp', '--value'], { valueOut: true });
    expectCode(r, 4, 'show --value of a deleted secret');
    assert.equal(r.stderr, apiErrorLine(gone));
    assert.equal(r.stdout, '');
    r = await cli(['secret', 'show', G, 'kv', 'temp']);
    expectCode(r, 4, 'show of a deleted secret');
    assert.equal(r.stderr, apiErrorLine(gone), 'the same message as the API');

    r = await cli(['secret', 'list', G, 'kv', '--deleted', '-o', 'json']);
    expectCode(r, 0, 'list --deleted');
    const deleted = JSON.parse(r.stdout);
    assert.deepEqual(deleted, (await h.admin.get(`${KV}/secrets?deleted=true`)).json.value);
    assert.deepEqual(deleted.map((s) => s.name), ['temp']);
    assert.equal(typeof deleted[0].scheduled_purge_at, 'number');
    r = await cli(['secret', 'list', G, 'kv', '--deleted']);
    assert.deepEqual(tableRows(r.stdout)[0], ['NAME', 'VERSION', 'VERSIONS', 'DELETED_AT', 'SCHEDULED_PURGE_AT']);
    assert.equal(tableRows(r.stdout)[1][0], 'temp');

    // Setting a deleted name is the API's 409 Conflict.
    const conflict = await new Client(h.daemon, { label: 'admin-plain' });
    conflict.cookies = h.admin.cookies;
    conflict.csrf = h.admin.csrf;
    const apiConflict = await conflict.put(`${KV}/secrets/temp`, { value: 'x' });
    r = await cli(['secret', 'set', G, 'kv', 'temp', '--value-stdin'], { input: v });
    expectCode(r, 1, 'set a deleted name');
    assert.equal(r.stderr, apiErrorLine(apiConflict));

    r = await cli(['secret', 'recover', G, 'kv', 'temp', '-o', 'json']);
    expectCode(r, 0, 'recover');
    assert.equal(JSON.parse(r.stdout).name, 'temp');
    r = await cli(['secret', 'show', G, 'kv', 'temp', '--value'], { valueOut: true });
    expectCode(r, 0, 'readable after recover');
    assert.equal(r.stdout, v);
    expectCode(await cli(['secret', 'recover', G, 'kv', 'temp']), 4, 'recover a live secret');

    r = await cli(['secret', 'delete', G, 'kv', 'temp', '--purge']);
    expectCode(r, 0, 'purge');
    assert.equal(r.stdout, `Purged secret ${KV}/secrets/temp\n`);
    r = await cli(['secret', 'list', G, 'kv', '--deleted', '-o', 'json']);
    assert.deepEqual(JSON.parse(r.stdout), [], 'purged: not even deleted');
    expectCode(await cli(['secret', 'recover', G, 'kv', 'temp']), 4, 'nothing to recover');
    expectCode(await cli(['secret', 'delete', G, 'kv', 'temp']), 4, 'nothing to delete');
  });

  h.test('rotate-master-key, then every secret still reads', async () => {
    const before = await cli(['secret', 'show', G, 'kv', 'from-stdin', '--value'], { valueOut: true });
    expectCode(before, 0, 'read before');
    let r = await cli(['vault', 'rotate-master-key', '-o', 'json']);
    expectCode(r, 0, 'rotate');
    const out = JSON.parse(r.stdout);
    assert.ok(Number.isInteger(out.rotated_data_keys) && out.rotated_data_keys >= 1, r.stdout);
    r = await cli(['vault', 'rotate-master-key']);
    expectCode(r, 0, 'rotate (table)');
    assert.match(r.stdout, /^PROPERTY\s+VALUE\nrotated_data_keys\s+\d+\n$/);
    const after = await cli(['secret', 'show', G, 'kv', 'from-stdin', '--value'], { valueOut: true });
    expectCode(after, 0, 'read after');
    assert.ok(after.out.equals(before.out), 'the same bytes after rotation');
    expectCode(await cli(['vault', 'rotate-master-key', 'now']), 2, 'rotate takes no arguments');

    const apiDenied = await bobApi.post('/vault/rotate-master-key', {});
    r = await cli(['vault', 'rotate-master-key'], { xdg: 'xdg-bob' });
    expectCode(r, 1, 'bob may not rotate');
    assert.equal(r.stderr, apiErrorLine(apiDenied));
  });

  h.test('API errors print the code and message with their exit code', async () => {
    // No policy: VaultAccessDenied, 403, exit 1, the API's own words.
    const denied = await bobApi.get(`${KV}/secrets/from-file`);
    let r = await cli(['secret', 'show', G, 'kv', 'from-file', '--value'], { xdg: 'xdg-bob', valueOut: true });
    expectCode(r, 1, 'no get policy');
    assert.equal(r.stderr, apiErrorLine(denied));
    assert.match(r.stderr, /^bastion: VaultAccessDenied: get on secrets of \/groups\/cliv\/vaults\/kv is required\n$/);
    assert.equal(r.stdout, '');
    const deniedList = await bobApi.get(`${KV}/secrets`);
    r = await cli(['secret', 'show', G, 'kv', 'from-file'], { xdg: 'xdg-bob' });
    expectCode(r, 1, 'show needs list');
    assert.equal(r.stderr, apiErrorLine(deniedList));
    r = await cli(['secret', 'set', G, 'kv', 'bobs', '--value-stdin'], { xdg: 'xdg-bob', input: 'some value' });
    expectCode(r, 1, 'no set policy');
    assert.match(r.stderr, /^bastion: VaultAccessDenied: set on secrets of /);

    // Missing secret, version and vault: exit 4.
    const missing = await h.admin.get(`${KV}/secrets/nope`);
    r = await cli(['secret', 'show', G, 'kv', 'nope', '--value'], { valueOut: true });
    expectCode(r, 4, 'missing secret');
    assert.equal(r.stderr, apiErrorLine(missing));
    r = await cli(['secret', 'show', G, 'kv', 'nope']);
    expectCode(r, 4, 'missing secret (metadata)');
    assert.equal(r.stderr, apiErrorLine(missing));
    r = await cli(['secret', 'show', G, 'kv', 'from-file', '--value', '--version', '0'.repeat(32)], { valueOut: true });
    expectCode(r, 4, 'missing version');
    assert.match(r.stderr, /^bastion: SecretNotFound: /);
    r = await cli(['secret', 'show', G, 'kv', 'from-file', '--version', '0'.repeat(32)]);
    expectCode(r, 4, 'missing version (metadata)');
    assert.match(r.stderr, /^bastion: SecretNotFound: /);
    r = await cli(['secret', 'versions', G, 'kv', 'nope']);
    expectCode(r, 4, 'versions of a missing secret');
    r = await cli(['secret', 'list', G, 'novault']);
    expectCode(r, 4, 'missing vault');
    assert.match(r.stderr, /^bastion: ResourceNotFound: /);

    // Too long for the API: its 400 comes through, exit 1.
    const big = `Big-${randomString(24)}-${'x'.repeat(40 * 1024)}`;
    h.secrets.add(big.slice(0, 40), 'the big value');
    r = await cli(['secret', 'set', G, 'kv', 'big', '--value-stdin'], { input: big });
    expectCode(r, 1, 'value too long');
    assert.match(r.stderr, /^bastion: InvalidRequest: value: at most 32768 bytes\n$/);
  });

  h.test('usage errors exit 2 and send nothing', async () => {
    const file = path.join(h.dir, 'value.pem');
    const binary = path.join(h.dir, 'binary.bin');
    fs.writeFileSync(binary, Buffer.from([0x41, 0xff, 0xfe, 0x42]));
    const nul = path.join(h.dir, 'nul.bin');
    fs.writeFileSync(nul, Buffer.from('ab\0cd'));
    const empty = path.join(h.dir, 'empty');
    fs.writeFileSync(empty, '');
    const cases = [
      [['secret'], ''],
      [['secret', 'frob', G, 'kv'], ''],
      [['secret', 'list', G], ''],
      [['secret', 'show', G, 'kv'], ''],
      [['secret', 'set', G, 'kv', 'x'], 'one of --file'],
      [['secret', 'set', G, 'kv', 'x', '--file', file, '--value-stdin'], 'one of --file'],
      [['secret', 'set', G, 'kv', 'x', '--file', path.join(h.dir, 'missing')], 'cannot read'],
      [['secret', 'set', G, 'kv', 'x', '--file', binary], 'UTF-8'],
      [['secret', 'set', G, 'kv', 'x', '--file', nul], 'NUL'],
      [['secret', 'set', G, 'kv', 'x', '--file', empty], 'empty'],
      [['secret', 'set', G, 'kv', 'x', '--value-stdin'], 'empty'],
      [['secret', 'list', G, 'kv', '--value'], 'does not go with list'],
      [['secret', 'show', G, 'kv', 'x', '--purge'], 'does not go with show'],
      [['secret', 'show', G, 'kv', 'x', '--version', 'abc'], '--version'],
      [['secret', 'show', G, 'kv', 'x', '--value', '-o', 'json'], '--value'],
      [['secret', 'delete', G, 'kv', 'x', '--deleted'], ''],
      [['secret', 'set', G, 'kv', 'x', '--value', 'literal'], ''],
      [['vault', 'frob', G], 'unknown action'],
      [['vault', 'list'], ''],
      [['vault', 'list', G, '--permissions', 'get'], ''],
    ];
    const audits = (await h.admin.get('/audit?limit=1000')).json.value.length;
    for (const [args, text] of cases) {
      const r = await cli(args);
      expectCode(r, 2, args.join(' '));
      assert.match(r.stderr, /^bastion: /, args.join(' '));
      if (text) assert.ok(r.stderr.includes(text), `${args.join(' ')}: ${r.stderr}`);
    }
    assert.equal((await h.admin.get('/audit?limit=1000')).json.value.length, audits, 'nothing reached the API');
    expectStatus(await h.admin.get(`${KV}/secrets/x/versions`), 404, 'no secret x');
    const help = await cli(['secret', '--help']);
    expectCode(help, 0, 'secret --help');
    assert.match(help.stdout, /--value-stdin/);
  });

  h.test('no value, password or token in any CLI stderr, output or the daemon log', async () => {
    h.assertNoLeaks();
  });
});
