// The portal in a real browser (docs/portal.md, issue 5): the VM list, Connect →
// Bastion by each of the four methods, the vault picker, a denied connect,
// the terminal (resize reaching the VM, copy and paste, round-trip time,
// huge output, a new browser tab) and an admin's disconnect seen by the user.
// Debian's chromium driven by playwright-core.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileHarness } from './lib/harness.mjs';
import { createTopology, addVm, ids, putOk, connect, keyAuth, expectSession } from './lib/api.mjs';
import { attach } from './lib/term.mjs';
import { randomString, waitFor } from './lib/util.mjs';
import { launch, newContext, waitForShell, run, signIn, shot, failShot, waitTermText, termLines } from './lib/browser.mjs';

const h = fileHarness({
  label: 'browser', block: 40, net: true,
  keys: [{ id: 'ed25519-openssh', type: 'ed25519' }, { id: 'rsa-pem-pass', type: 'rsa', format: 'PEM', pass: true }],
});
const G = 'e2e';
const VM = 'vm-web';
const VM_ID = ids.vm(G, VM);
const VAULT = (v) => `/groups/${G}/vaults/${v}`;
const alice = { name: 'alice', password: `Alice-${randomString(16)}` };
const bob = { name: 'bob', password: `Bob-${randomString(16)}` };
let browser;
let A; // alice's context {context, rec}
let page; // alice's page
const contexts = [];

async function step(name, p, fn) {
  try {
    await fn();
  } catch (e) {
    throw await failShot(p, h, name, e);
  }
}

async function openConnect(p) {
  // via the list, so that the form is drawn afresh even when it is shown already
  await p.goto(`${h.daemon.origin}/#/`, { waitUntil: 'domcontentloaded' });
  await p.locator('#vm-list').waitFor();
  await p.goto(`${h.daemon.origin}/#/vms/${G}/${VM}/connect`, { waitUntil: 'domcontentloaded' });
  await p.locator('#connect-form').waitFor();
  assert.equal(await p.isChecked('#connect-new-tab'), false);
  // the bastion list is filled in once the VM has been read
  await waitFor(async () => !/Loading/.test(await p.locator('#connect-bastion').innerText()), { what: 'the bastion list', timeoutMs: 15000 });
}

describe('browser portal: connect and terminal', () => {
  before(async () => {
    await h.up();
    const sshd = await h.sshd({ name: 'main', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: VM, ip: h.net.addr(2), port: sshd.port });
    for (const u of [alice, bob]) {
      h.secrets.add(u.password, `password of ${u.name}`);
      await putOk(h.admin, `/users/${u.name}`, { password: u.password });
    }
    await putOk(h.admin, '/role-assignments/alice-g', { principal: 'user:alice', role: 'Reader', scope: ids.group(G) });
    await putOk(h.admin, '/role-assignments/bob-vm', { principal: 'user:bob', role: 'Reader', scope: VM_ID });
    for (const v of ['v-ok', 'v-getonly', 'v-none']) await putOk(h.admin, VAULT(v), {});
    await putOk(h.admin, `${VAULT('v-ok')}/access-policies/user:admin`, { secret_permissions: ['set'] });
    await putOk(h.admin, `${VAULT('v-ok')}/secrets/vm-key`, { value: h.keys['ed25519-openssh'].private });
    await putOk(h.admin, `${VAULT('v-ok')}/access-policies/user:alice`, { secret_permissions: ['list', 'get'] });
    await putOk(h.admin, `${VAULT('v-getonly')}/access-policies/user:alice`, { secret_permissions: ['get'] });
    browser = await launch();
    A = await newContext(browser, h, { clipboard: true });
    contexts.push(A);
    page = await A.context.newPage();
    await signIn(page, h, alice.name, alice.password);
  }, { timeout: 180000 });

  after(async () => {
    try { if (browser) await browser.close(); } catch { /* already gone */ }
    await h.down();
  }, { timeout: 60000 });

  h.test('the VM list shows what alice may read, with search; the VM page offers Connect → Bastion', async () => {
    await step('vm-list', page, async () => {
      const row = page.locator(`#vm-list [data-vm-row="${VM_ID}"]`);
      await row.waitFor();
      assert.match(await row.innerText(), /vm-web[\s\S]*e2e[\s\S]*198\.18\.[\s\S]*n1/);
      await page.fill('#vm-search', 'no-such-vm');
      await waitFor(async () => (await page.locator('#vm-list tbody tr').count()) === 0, { what: 'search hides the VM' });
      assert.match(await page.locator('#vm-list-status').innerText(), /0 of 1/);
      await page.fill('#vm-search', 'web n1');
      await waitFor(async () => (await page.locator('#vm-list tbody tr').count()) === 1, { what: 'search finds the VM' });
      await page.fill('#vm-search', '');
      await shot(page, 'vm-list');
      await row.locator('a').click();
      await page.locator('#vm-facts dd').first().waitFor();
      await page.click('#vm-connect-menu');
      await page.locator('#vm-connect-bastion').waitFor({ state: 'visible' });
      await shot(page, 'vm-page');
      await page.keyboard.press('Enter'); // the menu item has the focus
      await page.locator('#connect-form').waitFor();
      assert.equal(await page.title(), `Connect to ${VM} · bastion`);
    });
  });

  h.test('the vault picker lists only vaults where alice has "list"; connect with a key from the vault', { timeout: 90000 }, async () => {
    await step('vault', page, async () => {
      await openConnect(page);
      await page.fill('#connect-username', h.user.name);
      await page.selectOption('#connect-auth-type', 'vault-key');
      await waitFor(async () => (await page.locator('#connect-vault option').count()) > 1, { what: 'the vault list' });
      const vaults = await page.locator('#connect-vault option').evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
      assert.deepEqual(vaults, [VAULT('v-ok')], 'only the vault with "list" is offered (not v-getonly, not v-none)');
      await page.selectOption('#connect-vault', VAULT('v-ok'));
      const secrets = await page.locator('#connect-secret option').evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
      assert.deepEqual(secrets, ['vm-key']);
      await page.selectOption('#connect-secret', 'vm-key');
      await shot(page, 'connect-vault');
      await page.click('#connect-submit');
      await waitForShell(page);
      await run(page, 'echo vault-$((40+2))', 'vault-42');
      await page.locator('#terminal-status', { hasText: 'Connected' }).waitFor();
    });
  });

  h.test('SSH Private Key (pasted): resize reaches the VM, round-trip time, copy and paste, 256 colours', { timeout: 120000 }, async () => {
    await step('paste-key', page, async () => {
      await openConnect(page);
      await page.fill('#connect-username', h.user.name);
      await page.selectOption('#connect-auth-type', 'ssh-key');
      await page.fill('#connect-key', h.keys['ed25519-openssh'].private);
      await page.click('#connect-submit');
      await waitForShell(page);
      // the status bar: VM, user, round-trip time (ping/pong)
      assert.match(await page.locator('#terminal-title').innerText(), new RegExp(`${VM}.*as ${h.user.name}`));
      await waitFor(async () => /RTT \d/.test(await page.locator('#terminal-rtt').innerText()), { what: 'a round-trip time', timeoutMs: 15000 });

      // resize: the PTY follows the window
      await page.setViewportSize({ width: 900, height: 560 });
      await waitFor(() => page.evaluate(() => window.bastionTerm.cols < 120), { what: 'the terminal to refit' });
      await new Promise((r) => setTimeout(r, 400)); // the debounced resize message
      const size = await page.evaluate(() => [window.bastionTerm.rows, window.bastionTerm.cols]);
      await run(page, 'stty size', (l) => l.trim() === `${size[0]} ${size[1]}`);
      await page.setViewportSize({ width: 1280, height: 800 });
      await waitFor(() => page.evaluate(() => window.bastionTerm.cols > 120), { what: 'the terminal to refit back' });
      await new Promise((r) => setTimeout(r, 400));
      const size2 = await page.evaluate(() => [window.bastionTerm.rows, window.bastionTerm.cols]);
      await run(page, 'clear; stty size', (l) => l.trim() === `${size2[0]} ${size2[1]}`);

      // copy on select: selecting output puts it on the clipboard
      await run(page, 'echo copy-$((6*7))-me', 'copy-42-me');
      const row = await page.evaluate(() => {
        const b = window.bastionTerm.buffer.active;
        for (let i = b.length - 1; i >= 0; i--) {
          const t = b.getLine(i).translateToString(true);
          if (t.trim() === 'copy-42-me') return i;
        }
        return -1;
      });
      assert.ok(row >= 0);
      await page.evaluate((r) => window.bastionTerm.select(0, r, 10), row);
      await waitFor(async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'copy-42-me', { what: 'the selection on the clipboard' });
      // Ctrl+Shift+C copies the selection too
      await page.evaluate(() => navigator.clipboard.writeText('other'));
      await page.locator('#terminal .xterm-helper-textarea').focus();
      await page.keyboard.press('Control+Shift+C');
      await waitFor(async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'copy-42-me', { what: 'Ctrl+Shift+C to copy' });
      // Ctrl+Shift+V pastes
      await page.evaluate(() => { window.bastionTerm.clearSelection(); return navigator.clipboard.writeText('echo pasted-$((5*5))'); });
      await page.locator('#terminal .xterm-helper-textarea').focus();
      await page.keyboard.press('Control+Shift+V');
      await waitTermText(page, (l) => l.endsWith('echo pasted-$((5*5))'), 'the pasted command line');
      await page.keyboard.press('Enter');
      await waitTermText(page, (l) => l.trim() === 'pasted-25', 'Ctrl+Shift+V pasted the command');
      // the context menu: Paste
      await page.evaluate(() => navigator.clipboard.writeText('echo menu-$((3*3))'));
      await page.locator('#terminal').click({ button: 'right', position: { x: 200, y: 200 } });
      await page.locator('#terminal-menu').waitFor({ state: 'visible' });
      await page.click('#term-menu-paste');
      await waitTermText(page, (l) => l.endsWith('echo menu-$((3*3))'), 'the pasted command line');
      await page.keyboard.press('Enter');
      await waitTermText(page, (l) => l.trim() === 'menu-9', 'the context menu pasted the command');

      // 256 colours and wide characters, for the screenshot
      await run(page, 'clear; for i in $(seq 16 231); do printf "\\e[48;5;%sm  " $i; [ $(( (i-15) % 54 )) = 0 ] && printf "\\e[0m\\n"; done; printf "\\e[0m"; '
        + 'printf "\\346\\274\\242\\345\\255\\227 \\342\\234\\223 \\360\\237\\231\\202 https://example.test/docs\\n"; ls --color=always -F /etc | head -8',
        (l) => l.startsWith('漢字'));
      const wide = await page.evaluate(() => {
        const b = window.bastionTerm.buffer.active;
        for (let i = 0; i < b.length; i++) {
          const line = b.getLine(i);
          if (line.translateToString(true).startsWith('漢字')) return line.getCell(0).getWidth();
        }
        return 0;
      });
      assert.equal(wide, 2, 'CJK takes two cells (unicode11)');
      await shot(page, 'terminal');
    });
  });

  h.test('SSH Private Key from Local File with a passphrase; a wrong passphrase is explained', { timeout: 90000 }, async () => {
    await step('key-file', page, async () => {
      const key = h.keys['rsa-pem-pass'];
      await openConnect(page);
      await page.fill('#connect-username', h.user.name);
      await page.selectOption('#connect-auth-type', 'ssh-key-file');
      await page.setInputFiles('#connect-key-file', key.file);
      await page.fill('#connect-passphrase', 'not-the-passphrase');
      await page.click('#connect-submit');
      const err = page.locator('#connect-error');
      await err.waitFor({ state: 'visible' });
      assert.equal(await err.getAttribute('data-code'), 'InvalidPrivateKey');
      assert.match(await err.innerText(), /passphrase is wrong or missing/);
      // the form dropped the key and passphrase: pick the file again
      assert.equal(await page.inputValue('#connect-passphrase'), '');
      await page.setInputFiles('#connect-key-file', key.file);
      await page.fill('#connect-passphrase', key.passphrase);
      await page.click('#connect-submit');
      await waitForShell(page);
      await run(page, 'echo file-$((40+3))', 'file-43');
    });
  });

  h.test('Password; a refused password is explained', { timeout: 90000 }, async (t) => {
    if (!h.user.password) { t.skip('not root: the test user has no password'); return; }
    await step('password', page, async () => {
      await openConnect(page);
      await page.fill('#connect-username', h.user.name);
      await page.selectOption('#connect-auth-type', 'password');
      await page.fill('#connect-password', 'wrong-password-123');
      await page.click('#connect-submit');
      const err = page.locator('#connect-error');
      await err.waitFor({ state: 'visible', timeout: 30000 });
      assert.equal(await err.getAttribute('data-code'), 'SshAuthenticationFailed');
      assert.match(await err.innerText(), /refused the username or credential/);
      await page.fill('#connect-password', h.user.password);
      await page.click('#connect-submit');
      await waitForShell(page);
      await run(page, 'echo pw-$((40+4))', 'pw-44');
      // exit: the reason and Reconnect
      await run(page, 'exit 3', () => true);
      await page.locator('#terminal-reconnect').waitFor({ state: 'visible' });
      assert.match(await page.locator('#terminal-status').innerText(), /exited \(status 3\)/);
      await page.click('#terminal-reconnect');
      await page.locator('#connect-form').waitFor();
      assert.equal(await page.inputValue('#connect-username'), h.user.name, 'Reconnect keeps the username');
    });
  });

  h.test('a denied connect names the missing role and scope', async () => {
    const B = await newContext(browser, h);
    contexts.push(B);
    const p = await B.context.newPage();
    await step('denied', p, async () => {
      await signIn(p, h, bob.name, bob.password);
      await openConnect(p);
      await p.fill('#connect-username', 'someone');
      await p.selectOption('#connect-auth-type', 'password');
      await p.fill('#connect-password', 'whatever-123');
      await p.click('#connect-submit');
      const err = p.locator('#connect-error');
      await err.waitFor({ state: 'visible' });
      assert.equal(await err.getAttribute('data-code'), 'AuthorizationFailed');
      const text = await err.innerText();
      assert.match(text, /not allowed to connect/);
      assert.ok(text.includes(`Reader on ${ids.nic(G, `${VM}-nic`)} is required`), text);
      await shot(p, 'connect-denied');
    });
    await p.close();
  });

  h.test('"Open in new browser tab" attaches the session in the new tab', { timeout: 90000 }, async () => {
    await step('new-tab', page, async () => {
      await openConnect(page);
      await page.fill('#connect-username', h.user.name);
      await page.selectOption('#connect-auth-type', 'ssh-key');
      await page.fill('#connect-key', h.keys['ed25519-openssh'].private);
      await page.check('#connect-new-tab');
      const [tab] = await Promise.all([A.context.waitForEvent('page'), page.click('#connect-submit')]);
      await tab.waitForURL(/\/terminal\//, { timeout: 20000 });
      await waitForShell(tab);
      await run(tab, 'echo tab-$((40+5))', 'tab-45');
      await page.locator('#connect-note', { hasText: 'new browser tab' }).waitFor();
      await tab.close();
    });
  });

  h.test('huge output never freezes the tab and nothing is dropped', { timeout: 150000 }, async () => {
    await step('huge', page, async () => {
      await openConnect(page);
      await page.fill('#connect-username', h.user.name);
      await page.selectOption('#connect-auth-type', 'ssh-key');
      await page.fill('#connect-key', h.keys['ed25519-openssh'].private);
      await page.click('#connect-submit');
      await waitForShell(page);
      const N = 300000;
      await page.locator('#terminal .xterm-helper-textarea').focus();
      await page.keyboard.type(`seq 1 ${N}; echo done-$((1+1))`);
      await page.keyboard.press('Enter');
      // while the output streams, the page answers within a bound
      let worst = 0;
      const deadline = Date.now() + 120000;
      for (;;) {
        const t0 = Date.now();
        const [bytes, done] = await page.evaluate(() => {
          const b = window.bastionTerm.buffer.active;
          let seen = false;
          for (let i = Math.max(0, b.length - 40); i < b.length; i++) if (b.getLine(i).translateToString(true) === 'done-2') seen = true;
          return [window.bastionTermStats.bytes, seen];
        });
        worst = Math.max(worst, Date.now() - t0);
        if (done) break;
        assert.ok(Date.now() < deadline, `output not finished after 120 s (${bytes} bytes)`);
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(worst < 3000, `the page answered within 3 s while drawing (worst ${worst} ms)`);
      // every line arrived, in order: the last 5000 are still in the scrollback
      const lines = (await termLines(page)).map((l) => l.trim());
      const at = lines.lastIndexOf(String(N));
      assert.ok(at > 0, 'the last number is in the buffer');
      for (let k = 0; k < 1000; k++) assert.equal(lines[at - k], String(N - k));
      const stats = await page.evaluate(() => window.bastionTermStats);
      assert.ok(stats.bytes > N * 6, `all bytes arrived (${stats.bytes})`);
      assert.equal(stats.backlog, 0);
      assert.ok(stats.maxBacklog < 1024 * 1024, `the flow-control window bounds the backlog (${stats.maxBacklog})`);
    });
  });

  h.test("an admin's disconnect on the Sessions page is seen by the user", { timeout: 90000 }, async () => {
    await step('disconnect', page, async () => {
      await openConnect(page);
      await page.fill('#connect-username', h.user.name);
      await page.selectOption('#connect-auth-type', 'ssh-key');
      await page.fill('#connect-key', h.keys['ed25519-openssh'].private);
      await page.click('#connect-submit');
      await waitForShell(page);
      const session = decodeURIComponent(/\/terminal\/([^?]+)/.exec(page.url())[1]);

      const D = await newContext(browser, h);
      contexts.push(D);
      const admin = await D.context.newPage();
      await signIn(admin, h, 'admin', h.daemon.adminPassword);
      await admin.goto(`${h.daemon.origin}/#/sessions`, { waitUntil: 'domcontentloaded' });
      const btn = admin.locator(`#sessions-table button[data-session="${session}"]`);
      await btn.waitFor();
      await shot(admin, 'admin-sessions');
      await btn.click();
      await admin.click('#confirm-ok');
      await admin.locator('#sessions-msg', { hasText: 'Disconnected alice' }).waitFor();

      await page.locator('#terminal-reconnect').waitFor({ state: 'visible' });
      assert.match(await page.locator('#terminal-status').innerText(), /Session closed: disconnected by admin/);
      await shot(page, 'terminal-closed');
      await admin.close();
    });
  });

  h.test('ping → pong on the terminal stream (the RTT control message)', async () => {
    const c = h.client('pinger');
    await c.login('admin', h.daemon.adminPassword);
    const s = expectSession(await connect(c, G, VM, { username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private) }));
    const a = await attach(h.daemon, c, s.terminal);
    assert.ok(a.ok);
    const t = a.term;
    t.sendControl({ type: 'ping', id: 7 });
    const pong = await t.waitForControl('pong');
    assert.deepEqual(pong, { type: 'pong', id: 7 });
    t.sendControl({ type: 'ping', id: 'x' });
    const err = await t.waitForControl('error');
    assert.match(err.message, /ping needs an integer id/);
    t.sendControl({ type: 'ping', id: 2 ** 53 });
    await waitFor(() => t.controls.filter((m) => m.type === 'error').length === 2, { what: 'a second error' });
    t.close();
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
