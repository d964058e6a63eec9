// The portal in a real browser (issue 5): sign-in with its errors and the
// lock-out message, sign-out, change password; the administration pages by
// role with the API's validation messages; the idle warning in the
// terminal; a narrow phone screen. Saves screenshots to docs/screenshots/.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import { createTopology, addVm, ids, putOk } from './lib/api.mjs';
import { randomString, waitFor } from './lib/util.mjs';
import { launch, newContext, waitForShell, run, signIn, shot, failShot } from './lib/browser.mjs';

// A short idle timeout for the warning test (read by the daemon this file starts).
process.env.BASTION_IDLE_TIMEOUT = '16s';
process.env.BASTION_IDLE_WARNING = '12s';

const h = fileHarness({ label: 'portal', block: 50, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }] });
const G = 'e2e';
const carol = { name: 'carol', password: `Carol-${randomString(16)}` };
const dave = { name: 'dave', password: `Dave-${randomString(16)}` };
const daveNew = `DaveNew-${randomString(16)}`;
let browser;
const contexts = [];

async function step(name, p, fn) {
  try { await fn(); } catch (e) { throw await failShot(p, h, name, e); }
}

async function fresh(opts) {
  const c = await newContext(browser, h, opts);
  contexts.push(c);
  return c.context.newPage();
}

describe('browser portal: sign-in, account, administration', () => {
  before(async () => {
    await h.up();
    const sshd = await h.sshd({ name: 'main', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm-web', ip: h.net.addr(2), port: sshd.port });
    await addVm(h.admin, { group: G, name: 'vm-db', ip: h.net.addr(3), port: sshd.port });
    for (const u of [carol, dave]) {
      h.secrets.add(u.password, `password of ${u.name}`);
      await putOk(h.admin, `/users/${u.name}`, { password: u.password });
    }
    h.secrets.add(daveNew, 'new password of dave');
    await putOk(h.admin, '/role-assignments/dave-g', { principal: 'user:dave', role: 'Reader', scope: ids.group(G) });
    browser = await launch();
  }, { timeout: 180000 });

  after(async () => {
    try { if (browser) await browser.close(); } catch { /* gone */ }
    await h.down();
  }, { timeout: 60000 });

  h.test('sign-in: a wrong password is explained; five failures lock the account with a time to retry', { timeout: 90000 }, async () => {
    const p = await fresh();
    await step('lockout', p, async () => {
      await p.goto(`${h.daemon.origin}/`, { waitUntil: 'domcontentloaded' });
      await p.locator('#login-form').waitFor();
      await shot(p, 'sign-in');
      const err = p.locator('#login-error');
      for (let i = 1; i <= 5; i++) {
        await p.fill('#login-username', carol.name);
        await p.fill('#login-password', `wrong-${i}-password`);
        await p.click('#login-submit');
        await waitFor(async () => (await err.getAttribute('data-code')) === 'Unauthenticated' && (await p.inputValue('#login-password')) === '',
          { what: `failure ${i} shown` });
        assert.equal(await err.innerText(), 'The username or password is not correct.');
        await p.evaluate(() => { document.getElementById('login-error').dataset.code = ''; });
      }
      await p.fill('#login-username', carol.name);
      await p.fill('#login-password', carol.password);
      await p.click('#login-submit');
      await waitFor(async () => (await err.getAttribute('data-code')) === 'TooManyRequests', { what: 'the lock-out message' });
      const text = await err.innerText();
      assert.match(text, /Sign-in is locked after too many failed attempts\. Try again in \d+ (second|minute)/, text);
      assert.equal(await p.evaluate(() => document.activeElement.id), 'login-password', 'focus back on the password');
      await shot(p, 'sign-in-locked');
    });
  });

  h.test('sign in, change the password, sign out, sign in with the new one', { timeout: 90000 }, async () => {
    const p = await fresh();
    await step('password', p, async () => {
      await signIn(p, h, dave.name, dave.password);
      // a Reader sees no administration of users, roles or the audit log
      const nav = await p.locator('#main-nav').innerText();
      assert.ok(!/Users|Audit|Role assignments/.test(nav), nav);
      await p.click('#user-name');
      await p.locator('#pw-form').waitFor();
      await p.fill('#pw-current', 'not-my-password');
      await p.fill('#pw-new', daveNew);
      await p.fill('#pw-again', daveNew);
      await p.click('#pw-submit');
      await p.locator('#pw-error', { hasText: 'The current password is not correct.' }).waitFor();
      await p.fill('#pw-current', dave.password);
      await p.fill('#pw-new', 'short');
      await p.fill('#pw-again', 'short');
      await p.click('#pw-submit');
      assert.equal(await p.evaluate(() => document.getElementById('pw-new').validity.valid), false, 'at least 12 characters');
      await p.fill('#pw-current', dave.password);
      await p.fill('#pw-new', daveNew);
      await p.fill('#pw-again', daveNew);
      await p.click('#pw-submit');
      await p.locator('#pw-done', { hasText: 'Your password was changed.' }).waitFor();
      await p.click('#logout');
      await p.locator('#login-form').waitFor();
      await p.fill('#login-username', dave.name);
      await p.fill('#login-password', dave.password);
      await p.click('#login-submit');
      await p.locator('#login-error[data-code="Unauthenticated"]').waitFor();
      await p.fill('#login-password', daveNew);
      await p.click('#login-submit');
      await p.locator('#vm-list').waitFor();
    });
  });

  h.test('administration: groups and resources with the API\'s validation messages, roles, users, vaults, audit', { timeout: 120000 }, async () => {
    const p = await fresh();
    await step('admin', p, async () => {
      await signIn(p, h, 'admin', h.daemon.adminPassword);
      const nav = await p.locator('#main-nav').innerText();
      for (const item of ['Virtual machines', 'Sessions', 'Resources', 'Vaults', 'Role assignments', 'Users', 'Audit log']) assert.ok(nav.includes(item), nav);

      // groups: a bad name is refused with the API's words, a good one created
      await p.click('#main-nav >> text=Resources');
      await p.locator('#groups-table').waitFor();
      await p.fill('#group-new-name', 'bad name!');
      await p.click('#group-create');
      await p.locator('#groups-msg[data-code]').waitFor();
      assert.match(await p.locator('#groups-msg').innerText(), /name/i);
      await p.fill('#group-new-name', 'staging');
      await p.click('#group-create');
      await p.locator('#groups-table >> text=staging').waitFor();
      await p.click('#groups-table >> text=staging');

      // a network: an invalid prefix is refused (the message names the field), then fixed
      await p.click('#add-networks');
      await p.fill('#res-name', 'vnet1');
      await p.fill('#res-address_prefixes', '10.1.0.1/16');
      await p.click('#res-save');
      await p.locator('#res-error[data-code="InvalidRequest"]').waitFor();
      assert.match(await p.locator('#res-error').innerText(), /address_prefixes/);
      await p.fill('#res-address_prefixes', '10.1.0.0/16\n10.2.0.0/16');
      await p.click('#res-save');
      await p.locator('#table-networks >> text=10.1.0.0/16, 10.2.0.0/16').waitFor();
      // edit it
      await p.click('#table-networks button[aria-label="Edit vnet1"]');
      await p.fill('#res-address_prefixes', '10.1.0.0/16');
      await p.click('#res-save');
      await p.locator('#resources-msg', { hasText: 'Saved network vnet1' }).waitFor();
      // a NIC outside the network is refused
      await p.click('#add-nics');
      await p.fill('#res-name', 'nic1');
      await p.fill('#res-network', '/groups/staging/networks/vnet1');
      await p.fill('#res-private_ip', '192.168.1.1');
      await p.click('#res-save');
      await p.locator('#res-error[data-code]').waitFor();
      assert.match(await p.locator('#res-error').innerText(), /private_ip/);
      await p.click('#res-cancel');
      await p.click('#add-vaults');
      await p.fill('#res-name', 'keys');
      await p.click('#res-save');
      await p.locator('#table-vaults >> text=keys').waitFor();
      await shot(p, 'admin-resources');
      // delete the network
      await p.click('#table-networks button[aria-label="Delete vnet1"]');
      await p.click('#confirm-ok');
      await p.locator('#resources-msg', { hasText: 'Deleted network vnet1' }).waitFor();

      // role assignments per scope
      await p.goto(`${h.daemon.origin}/#/admin/roles`, { waitUntil: 'domcontentloaded' });
      await p.locator('#roles-table').waitFor();
      await p.fill('#role-principal', 'user:carol');
      await p.selectOption('#role-role', 'Contributor');
      await p.fill('#role-scope', '/groups/staging');
      await p.click('#role-create');
      await p.locator('#roles-msg', { hasText: 'Assigned Contributor on /groups/staging to user:carol' }).waitFor();
      await p.fill('#roles-scope', '/groups/staging');
      await p.click('#roles-filter button');
      await p.locator('#roles-table >> text=user:carol').waitFor();
      await p.fill('#role-principal', 'user:nobody');
      await p.click('#role-create');
      await p.locator('#roles-msg[data-code]').waitFor();
      await shot(p, 'admin-roles');

      // users
      await p.goto(`${h.daemon.origin}/#/admin/users`, { waitUntil: 'domcontentloaded' });
      await p.locator('#users-table').waitFor();
      const erin = `Erin-${randomString(16)}`;
      h.secrets.add(erin, 'password of erin');
      await p.fill('#user-new-name', 'erin');
      await p.fill('#user-new-password', erin);
      await p.click('#user-create');
      await p.locator('#users-table >> text=erin').waitFor();
      await p.click('#users-table button[aria-label="Disable erin"]');
      await p.locator('#users-msg', { hasText: 'Disabled erin' }).waitFor();
      await shot(p, 'admin-users');

      // a vault: a secret and an access policy
      await p.goto(`${h.daemon.origin}/#/admin/vaults`, { waitUntil: 'domcontentloaded' });
      await p.click('#vaults-table >> text=keys');
      await p.locator('#secrets-denied').waitFor(); // admin has no policy yet
      await p.fill('#policy-principal', 'user:admin');
      for (const perm of ['list', 'set', 'delete']) await p.check(`#policy-${perm}`);
      await p.click('#policy-save');
      await p.locator('#policies-table >> text=user:admin').waitFor();
      await p.reload();
      await p.fill('#secret-name', 'deploy-key');
      await p.fill('#secret-value', h.keys['ed25519-openssh'].private);
      await p.click('#secret-save');
      await p.locator('#secrets-table >> text=deploy-key').waitFor();
      await shot(p, 'admin-vault');

      // the audit log with a filter
      await p.goto(`${h.daemon.origin}/#/admin/audit`, { waitUntil: 'domcontentloaded' });
      await p.locator('#audit-table').waitFor();
      await p.fill('#audit-action', 'auth.login');
      await p.fill('#audit-result', 'failure');
      await p.click('#audit-apply');
      await waitFor(async () => {
        const rows = await p.locator('#audit-table tbody tr.audit-rec').allInnerTexts();
        return rows.length >= 5 && rows.every((r) => /auth\.login/.test(r) && /failure/.test(r));
      }, { what: 'only failed sign-ins listed' });
      await shot(p, 'admin-audit');
    });
  });

  h.test('the idle warning, "Stay connected", then the idle close with its reason and Reconnect', { timeout: 120000 }, async () => {
    const p = await fresh();
    await step('idle', p, async () => {
      await signIn(p, h, 'admin', h.daemon.adminPassword);
      await p.goto(`${h.daemon.origin}/#/vms/${G}/vm-web/connect`, { waitUntil: 'domcontentloaded' });
      await p.fill('#connect-username', h.user.name);
      await p.selectOption('#connect-auth-type', 'ssh-key');
      await p.fill('#connect-key', h.keys['ed25519-openssh'].private);
      await p.click('#connect-submit');
      await waitForShell(p);
      await run(p, 'echo idle-$((1+1))', 'idle-2');
      // pings (every 5 s) are not activity: the warning still comes
      await p.locator('#terminal-warning').waitFor({ state: 'visible', timeout: 20000 });
      assert.match(await p.locator('#terminal-warning-text').innerText(), /\d+ s left/);
      await shot(p, 'terminal-idle-warning');
      await p.click('#terminal-stay');
      await p.locator('#terminal-warning').waitFor({ state: 'hidden' });
      await p.locator('#terminal-warning').waitFor({ state: 'visible', timeout: 20000 });
      await p.locator('#terminal-reconnect').waitFor({ state: 'visible', timeout: 30000 });
      assert.match(await p.locator('#terminal-status').innerText(), /Session closed: idle timeout/);
    });
  });

  h.test('a narrow phone screen: the menu, the list and the connect form fit', { timeout: 60000 }, async () => {
    const p = await fresh({ viewport: { width: 390, height: 780 } });
    await step('phone', p, async () => {
      await signIn(p, h, 'admin', h.daemon.adminPassword);
      await p.locator('#vm-list tbody tr').first().waitFor();
      assert.equal(await p.isVisible('#main-nav'), false, 'the nav folds into a menu');
      await p.click('#nav-toggle');
      assert.equal(await p.isVisible('#main-nav'), true);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scrolling (${overflow}px)`);
      await shot(p, 'phone-vm-list');
      await p.goto(`${h.daemon.origin}/#/vms/${G}/vm-web/connect`, { waitUntil: 'domcontentloaded' });
      await p.locator('#connect-form').waitFor();
      assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
      // keyboard: Tab reaches the form's fields in order, with a visible focus ring
      await p.focus('#connect-username');
      await p.keyboard.press('Tab');
      assert.equal(await p.evaluate(() => document.activeElement.id), 'connect-auth-type');
      const outline = await p.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.notEqual(outline, 'none');
    });
  });

  h.test('no page errors, no CSP violations, nothing fetched from elsewhere, no secret leaked', async () => {
    for (const c of contexts) {
      assert.deepEqual(c.rec.errors, [], 'uncaught page errors');
      assert.deepEqual(c.rec.csp, [], 'CSP violations');
      assert.deepEqual(c.rec.foreign, [], 'requests to other origins');
    }
    h.assertNoLeaks();
  });
});
