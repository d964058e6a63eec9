// The portal in a real browser (SPEC §5): sign in, pick the VM, Connect with
// an SSH key, type into the terminal and read the answer back from xterm.
// Debian's chromium driven by playwright-core.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { fileHarness } from './lib/harness.mjs';
import { createTopology, addVm, ids } from './lib/api.mjs';
import { waitFor } from './lib/util.mjs';

const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
const h = fileHarness({ label: 'browser', block: 40, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }] });
const G = 'e2e';
const VM_ID = ids.vm(G, 'vm-web');
let browser; let context; let page;
const pageErrors = [];

async function screenshot(name) {
  if (!page || !h.dir) return null;
  const file = path.join(h.dir, `${name}.png`);
  try { await page.screenshot({ path: file, fullPage: true, timeout: 5000 }); return file; } catch { return null; }
}

// Lines of the xterm buffer (window.bastionTerm, an @xterm/xterm Terminal).
function termLines() {
  return page.evaluate(() => {
    const t = window.bastionTerm;
    if (!t || !t.buffer || !t.buffer.active) return null;
    const b = t.buffer.active;
    const out = [];
    for (let i = 0; i < b.length; i++) {
      const line = b.getLine(i);
      if (line) out.push(line.translateToString(true));
    }
    return out;
  });
}

describe('browser portal', () => {
  before(async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set E2E_CHROMIUM)`);
    await h.up();
    const sshd = await h.sshd({ name: 'main', port: 22, addrs: [h.net.addr(2)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: 'vm-web', ip: h.net.addr(2), port: sshd.port });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', '--disable-default-apps', '--disable-extensions'],
    });
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
    // nothing but our daemon: any other request is aborted
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (u.hostname === '127.0.0.1' && u.port === String(h.daemon.port)) return route.continue();
      return route.abort();
    });
    page = await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // what the server sends the page is scanned for secrets too
    page.on('response', async (r) => {
      if (!r.url().includes('/api/')) return;
      try { h.secrets.scan(await r.text(), `browser ${r.request().method()} ${r.url()}`); } catch { /* no body */ }
    });
    page.on('websocket', (ws) => {
      ws.on('framereceived', (f) => { if (typeof f.payload === 'string') h.secrets.scan(f.payload, 'browser websocket text frame'); });
    });
  }, { timeout: 120000 });

  after(async () => {
    try { if (browser) await browser.close(); } catch { /* already gone */ }
    await h.down();
  }, { timeout: 60000 });

  h.test('sign in, Connect with an SSH key, run a command in the terminal', { timeout: 90000 }, async () => {
    try {
      await page.goto(h.daemon.origin + '/', { waitUntil: 'domcontentloaded' });
      await page.fill('#login-username', 'admin');
      await page.fill('#login-password', h.daemon.adminPassword);
      await page.click('#login-submit');

      const connectButton = page.locator(`#vm-list [data-vm="${VM_ID}"]`);
      await connectButton.waitFor({ state: 'visible', timeout: 15000 });
      await connectButton.click();

      await page.fill('#connect-username', h.user.name);
      await page.selectOption('#connect-auth-type', 'ssh-key');
      await page.fill('#connect-key', h.keys['ed25519-openssh'].private);
      await page.click('#connect-submit');

      await page.locator('#terminal').waitFor({ state: 'visible', timeout: 20000 });
      await page.waitForFunction(() => !!(window.bastionTerm && window.bastionTerm.buffer), null, { timeout: 15000 });
      // wait for the shell to draw something (the prompt) before typing
      await waitFor(async () => {
        const lines = await termLines();
        return lines && lines.some((l) => l.trim().length > 0);
      }, { timeoutMs: 15000, intervalMs: 200, what: 'the shell prompt in the terminal' });

      await page.click('#terminal');
      await page.keyboard.type('echo browser-$((40+2))');
      await page.keyboard.press('Enter');
      let last = [];
      await waitFor(async () => {
        last = (await termLines()) || [];
        return last.some((l) => l.includes('browser-42'));
      }, { timeoutMs: 20000, intervalMs: 200, what: '"browser-42" in the terminal buffer' }).catch((e) => {
        e.message += `\nterminal buffer:\n${last.filter((l) => l.trim()).join('\n')}`;
        throw e;
      });
      // the typed command line shows the unexpanded text; only the shell's output has "browser-42"
      assert.ok(last.some((l) => l.includes('browser-$((40+2))')), 'the typed command was echoed');
      assert.deepEqual(pageErrors, [], 'no uncaught page errors');
    } catch (e) {
      const shot = await screenshot('failure');
      if (shot) e.message += `\nscreenshot: ${shot}`;
      if (pageErrors.length) e.message += `\npage errors: ${pageErrors.join('\n')}`;
      throw e;
    }
  });

  h.test('the private key typed into the page never comes back from the server', async () => {
    h.assertNoLeaks();
  });
});
