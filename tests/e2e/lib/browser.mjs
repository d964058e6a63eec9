// Debian's chromium driven by playwright-core, for the portal tests: launch
// with the harness's flags, contexts that reach nothing but our daemon,
// page-error / CSP bookkeeping, the xterm buffer, screenshots.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_DIR, waitFor } from './util.mjs';

export const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
export const SHOTS_DIR = path.join(REPO_DIR, 'docs', 'screenshots');

export async function launch() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set E2E_CHROMIUM)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-default-apps', '--disable-extensions'],
  });
}

/**
 * A context whose pages reach only the daemon; records page errors, CSP
 * violations and requests to anything else (which are aborted).
 */
export async function newContext(browser, h, { viewport = { width: 1280, height: 800 }, clipboard = false } = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  if (clipboard) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.daemon.origin });
  const rec = { errors: [], csp: [], foreign: [] };
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname === '127.0.0.1' && u.port === String(h.daemon.port)) return route.continue();
    rec.foreign.push(u.href);
    return route.abort();
  });
  const watch = (page) => {
    page.setDefaultTimeout(30000);
    page.on('pageerror', (e) => rec.errors.push(String(e)));
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) rec.csp.push(m.text());
    });
    page.on('response', async (r) => {
      if (!r.url().includes('/api/')) return;
      try { h.secrets.scan(await r.text(), `browser ${r.request().method()} ${r.url()}`); } catch { /* no body */ }
    });
    page.on('websocket', (ws) => {
      ws.on('framereceived', (f) => { if (typeof f.payload === 'string') h.secrets.scan(f.payload, 'browser websocket text frame'); });
    });
  };
  context.on('page', watch);
  return { context, rec };
}

// Lines of the xterm buffer (window.bastionTerm, an @xterm/xterm Terminal).
export function termLines(page) {
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

export async function waitTermText(page, pred, what, timeoutMs = 20000) {
  let last = [];
  const test = typeof pred === 'string' ? (l) => l.includes(pred) : pred;
  try {
    return await waitFor(async () => {
      last = (await termLines(page)) || [];
      return last.find(test);
    }, { timeoutMs, intervalMs: 200, what });
  } catch (e) {
    e.message += `\nterminal buffer:\n${last.filter((l) => l.trim()).slice(-30).join('\n')}`;
    throw e;
  }
}

// Waits for the terminal to attach and the shell to draw its prompt.
export async function waitForShell(page) {
  await page.locator('#terminal').waitFor({ state: 'visible', timeout: 20000 });
  await page.waitForFunction(() => !!(window.bastionTerm && window.bastionTerm.buffer), null, { timeout: 15000 });
  await waitTermText(page, (l) => l.trim().length > 0, 'the shell prompt in the terminal');
}

// Types a command into the terminal and waits for `expect` in the output.
export async function run(page, command, expect, timeoutMs = 20000) {
  await page.locator('#terminal .xterm-helper-textarea').focus();
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
  return waitTermText(page, expect, `the output of ${JSON.stringify(command)}`, timeoutMs);
}

export async function signIn(page, h, user, password) {
  await page.goto(`${h.daemon.origin}/#/login`, { waitUntil: 'domcontentloaded' });
  // The first page of a fresh browser can be slow on a loaded 2-core machine
  // (seen: over 15 s while another file's daemon and browser were busy).
  await page.locator('#login-username').waitFor({ state: 'visible', timeout: 60000 });
  await page.fill('#login-username', user);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.locator('#logout').waitFor({ state: 'visible' });
}

/** Saves docs/screenshots/NAME.png (the viewport, not the full page). */
export async function shot(page, name) {
  if (process.env.E2E_SCREENSHOTS === '0') return;
  fs.mkdirSync(SHOTS_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS_DIR, `${name}.png`), timeout: 10000 });
}

/** On failure: a screenshot into the test's artefact dir, named in the error. */
export async function failShot(page, h, name, e) {
  try {
    const file = path.join(h.dir, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
    e.message += `\nscreenshot: ${file}`;
  } catch { /* no page */ }
  return e;
}
