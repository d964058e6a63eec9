// The portal in a real browser, issue 12: flow control under a slow
// renderer (CPU throttled tenfold), the stalled-link indicator (the daemon
// frozen with SIGSTOP), underscores at device pixel ratio 1, the VM list
// for a user with Reader on one VM only, and the small things (Enter after
// the end, the reload warning, the host-key page, the audit details).
// It measures time under a slowed renderer (Ctrl+C's bound), so
// scripts/test.sh runs it alone, with nothing else on the CPU:
// e2e: runs alone
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { fileHarness } from './lib/harness.mjs';
import { createTopology, addVm, ids, putOk, connect, keyAuth, expectError, expectStatus } from './lib/api.mjs';
import { randomString, waitFor, sleep } from './lib/util.mjs';
import { launch, newContext, waitForShell, run, signIn, failShot } from './lib/browser.mjs';

const h = fileHarness({ label: 'portal2', block: 210, net: true, keys: [{ id: 'ed25519-openssh', type: 'ed25519' }] });
const G = 'e2e';
const VM = 'vm-web';
const VM_ID = ids.vm(G, VM);
const NIC_ID = ids.nic(G, `${VM}-nic`);
// erin: Reader on the VM, its NIC and its bastion only (least privilege);
// frank: Reader on the VM and its NIC only.
const erin = { name: 'erin', password: `Erin-${randomString(16)}` };
const frank = { name: 'frank', password: `Frank-${randomString(16)}` };
let browser;
let tofu; // an sshd whose host key is replaced mid-test
let mainSshd;
const contexts = [];

// "SHA256:…" as ssh-keygen -l prints it, for "type base64".
function fingerprint(pub) {
  return `SHA256:${crypto.createHash('sha256').update(Buffer.from(pub.split(' ')[1], 'base64')).digest('base64').replace(/=+$/, '')}`;
}

async function step(name, p, fn) {
  try { await fn(); } catch (e) { throw await failShot(p, h, name, e); }
}

async function fresh(opts) {
  const c = await newContext(browser, h, opts);
  contexts.push(c);
  return c.context.newPage();
}

async function adminPage(opts) {
  const p = await fresh(opts);
  await signIn(p, h, 'admin', h.daemon.adminPassword);
  return p;
}

// Connect → Bastion with the test key; waits for the prompt.
async function openTerminal(p, vm = VM) {
  await p.goto(`${h.daemon.origin}/#/`, { waitUntil: 'domcontentloaded' });
  await p.locator('#vm-list').waitFor();
  await p.goto(`${h.daemon.origin}/#/vms/${G}/${vm}/connect`, { waitUntil: 'domcontentloaded' });
  await p.locator('#connect-form').waitFor();
  await waitFor(async () => !/Loading/.test(await p.locator('#connect-bastion').innerText()), { what: 'the bastion list', timeoutMs: 15000 });
  await p.fill('#connect-username', h.user.name);
  await p.selectOption('#connect-auth-type', 'ssh-key');
  await p.fill('#connect-key', h.keys['ed25519-openssh'].private);
  await p.click('#connect-submit');
  await waitForShell(p);
}

const termStats = (p) => p.evaluate(() => ({ ...window.bastionTermStats }));

describe('browser portal: flow control, stalls, glyphs, least privilege, small things', () => {
  before(async () => {
    await h.up();
    const sshd = await h.sshd({ name: 'main', port: 22, addrs: [h.net.addr(2)] });
    mainSshd = sshd;
    tofu = await h.sshd({ name: 'tofu', port: 22, addrs: [h.net.addr(3)] });
    await createTopology(h.admin, { group: G, network: 'n1', prefix: h.net.prefix, bastion: 'b1' });
    await addVm(h.admin, { group: G, name: VM, ip: h.net.addr(2), port: sshd.port });
    await addVm(h.admin, { group: G, name: 'vm-tofu', ip: h.net.addr(3), port: tofu.port });
    // A second group erin holds nothing in: never listed to her.
    await putOk(h.admin, ids.group('other'), {});
    await putOk(h.admin, ids.network('other', 'n9'), { address_prefixes: ['10.99.0.0/24'] });
    await putOk(h.admin, ids.nic('other', 'x-nic'), { network: ids.network('other', 'n9'), private_ip: '10.99.0.5' });
    await putOk(h.admin, ids.vm('other', 'x'), { nic: ids.nic('other', 'x-nic') });
    for (const u of [erin, frank]) {
      h.secrets.add(u.password, `password of ${u.name}`);
      await putOk(h.admin, `/users/${u.name}`, { password: u.password });
    }
    for (const [who, scope, n] of [['erin', VM_ID, 1], ['erin', NIC_ID, 2], ['erin', ids.bastion(G, 'b1'), 3],
      ['frank', VM_ID, 1], ['frank', NIC_ID, 2]]) {
      await putOk(h.admin, `/role-assignments/${who}-${n}`, { principal: `user:${who}`, role: 'Reader', scope });
    }
    browser = await launch();
  }, { timeout: 180000 });

  after(async () => {
    try { if (browser) await browser.close(); } catch { /* gone */ }
    await h.down();
  }, { timeout: 60000 });

  h.test('flow control: with the renderer slowed tenfold the backlog stays bounded and Ctrl+C stops the flood', { timeout: 150000 }, async () => {
    const p = await adminPage();
    await step('flow', p, async () => {
      await openTerminal(p);
      const cdp = await p.context().newCDPSession(p);
      await cdp.send('Emulation.setCPUThrottlingRate', { rate: 10 });
      try {
        await p.locator('#terminal .xterm-helper-textarea').focus();
        await p.keyboard.type('yes\n');
        // 25 s of `yes`: unthrottled, the VM prints hundreds of MiB in that time.
        const BOUND = 1024 * 1024;
        let worst = 0;
        const t0 = Date.now();
        while (Date.now() - t0 < 25000) {
          await sleep(1000);
          const s = await termStats(p);
          worst = Math.max(worst, s.maxBacklog);
          assert.ok(s.maxBacklog < BOUND, `the page's backlog reached ${s.maxBacklog} bytes (bound ${BOUND})`);
          assert.equal(s.stalled, false, 'a slow page is not a stalled link: pongs pass the output');
        }
        const mid = await termStats(p);
        assert.ok(mid.bytes > 1024 * 1024, `output flowed (${mid.bytes} bytes)`);
        assert.ok(mid.acked > 0, 'the page acknowledged what it drew');
        const held = await termStats(p);
        assert.ok(held.backlog >= 64 * 1024, `held back before Ctrl+C (backlog ${held.backlog})`);
        await p.keyboard.press('Control+C');
        // The end of the flood: no frame for 2 s and nothing left to draw.
        await waitFor(async () => {
          const s = await termStats(p);
          return s.backlog === 0 && s.lastInputAt > 0
            && (await p.evaluate(() => performance.now())) - s.lastOutputAt > 2000;
        }, { timeoutMs: 30000, intervalMs: 500, what: 'the output to stop after Ctrl+C' });
        const s = await termStats(p);
        const after = s.bytes - s.bytesAtInput;
        const lastDrawn = s.lastDrawnAt - s.lastInputAt;
        const rate = s.bytesAtInput / 25; // bytes drawn per second of the flood, roughly
        console.log(`flow: ${s.bytes} bytes (≈ ${Math.round(rate / 1024)} KiB/s drawn), max backlog ${s.maxBacklog}, acked ${s.acked}; `
          + `after Ctrl+C: ${after} bytes received, ${s.dropped} dropped by the page, flushed after ${Math.round(s.flushedAt - s.lastInputAt)} ms, `
          + `last drawn ${Math.round(lastDrawn)} ms`);
        // Flush on interrupt (docs/api.md): the page dropped its queue and
        // what came before the VM read the ^C; the bastion dropped its part.
        assert.equal(s.flushes, 1, 'Ctrl+C while held back flushed');
        assert.ok(s.flushedAt > s.lastInputAt && s.flushedAt - s.lastInputAt < 1000,
          `"flushed" came ${Math.round(s.flushedAt - s.lastInputAt)} ms after Ctrl+C`);
        // Everything the VM printed before the prompt is drawn before the
        // prompt, and nothing follows it: the last draw is the bound for
        // every `y` line.
        assert.ok(lastDrawn < 1000, `output kept being drawn ${Math.round(lastDrawn)} ms after Ctrl+C`);
        // The notice, then the flood's last lines (what the PTY held when ^C
        // arrived, and what sshd read from it before it wrote the ^C there:
        // a few KiB to two reads of 32 KiB, never the SSH window's
        // 1,280,000 bytes), the echo and the new prompt, last.
        assert.match(s.notice, /^\^C — [\d.]+ (MB|kB|bytes) of output discarded$/, `the notice: ${s.notice}`);
        console.log(`flow: ${s.afterFlushed} bytes after "flushed"`);
        assert.ok(s.afterFlushed < 96 * 1024, `${s.afterFlushed} bytes came after "flushed"`);
        const tail = await p.evaluate(() => {
          const b = window.bastionTerm.buffer.active;
          const lines = [];
          for (let i = b.length - 1; i >= 0 && lines.length < 3; i--) {
            const t = b.getLine(i).translateToString(true);
            if (t.trim()) lines.unshift(t);
          }
          return lines;
        });
        assert.match(tail[tail.length - 1], /[$#] ?$/, `the new prompt is the last line: ${JSON.stringify(tail)}`);
        // (after a `y` when yes was cut mid-line)
        assert.match(tail[tail.length - 2], /^y?\^C$/, `the echo of ^C before it: ${JSON.stringify(tail)}`);
      } finally {
        await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
      }
      await run(p, 'echo after-flood-$((5+5))', 'after-flood-10');
    });
    await p.close();
  });

  h.test('Reader on one VM, its NIC and its bastion: the API and the portal list that VM, and connect works', { timeout: 120000 }, async () => {
    const api = h.client('erin');
    await api.login(erin.name, erin.password);
    const groups = await api.get('/groups');
    expectStatus(groups, [200], 'GET /groups');
    assert.deepEqual(groups.json.value.map((g) => g.name), [G], 'the group of the VM, not the other group');
    const vms = await api.get(`/groups/${G}/vms`);
    expectStatus(vms, [200], 'GET vms');
    assert.deepEqual(vms.json.value.map((v) => v.id), [VM_ID]);
    expectStatus(await api.get(ids.group(G)), [404], 'the group itself stays unreadable');
    expectStatus(await api.get('/groups/other/vms'), [404], 'nothing in the other group');
    const p = await fresh();
    await step('least-privilege', p, async () => {
      await signIn(p, h, erin.name, erin.password);
      const row = p.locator(`#vm-list [data-vm-row="${VM_ID}"]`);
      await row.waitFor({ timeout: 20000 });
      assert.equal(await p.locator('#vm-list tbody tr').count(), 1);
      assert.match(await row.innerText(), /vm-web[\s\S]*e2e[\s\S]*198\.18\./);
      await openTerminal(p);
      await run(p, 'echo least-$((1+2))', 'least-3');
    });
    await p.close();
  });

  h.test('no Reader on the bastion: 403 naming the role and the bastion (one serves the network, then two)', async () => {
    const api = h.client('frank');
    await api.login(frank.name, frank.password);
    const body = { username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private) };
    let r = await connect(api, G, VM, body);
    expectError(r, 403, 'AuthorizationFailed', { messageIncludes: `Reader on ${ids.bastion(G, 'b1')} is required` });
    await putOk(h.admin, ids.bastion(G, 'b2'), { networks: [ids.network(G, 'n1')] });
    try {
      r = await connect(api, G, VM, body);
      expectError(r, 403, 'AuthorizationFailed', { messageIncludes: 'Reader on one of the 2 bastions' });
      assert.match(r.json.error.message, /e\.g\. \/groups\/e2e\/bastions\/b1/);
      // Reader on one of them: that one is taken.
      await putOk(h.admin, '/role-assignments/frank-b2', { principal: 'user:frank', role: 'Reader', scope: ids.bastion(G, 'b2') });
      const ok = await connect(api, G, VM, body);
      expectStatus(ok, [201], 'connect through b2');
      assert.equal(ok.json.session.bastion, ids.bastion(G, 'b2'));
      expectStatus(await api.del(`/sessions/${encodeURIComponent(ok.json.session.id)}`), [204], 'end it');
    } finally {
      await h.admin.del('/role-assignments/frank-b2');
      await h.admin.del(ids.bastion(G, 'b2'));
    }
  });

  h.test('a frozen bastion (SIGSTOP) turns the bar to "Stalled"; SIGCONT says it recovered', { timeout: 120000 }, async () => {
    const p = await adminPage();
    await step('stall', p, async () => {
      await openTerminal(p);
      await p.locator('#terminal-rtt', { hasText: /RTT [\d.]+ ms/ }).waitFor({ timeout: 15000 });
      const pid = h.daemon.pid;
      process.kill(pid, 'SIGSTOP');
      try {
        await p.locator('#terminal-status', { hasText: /^Stalled: no answer from the bastion for \d+ s/ }).waitFor({ timeout: 20000 });
        assert.equal(await p.locator('.term-bar.stalled').count(), 1);
        assert.equal(await p.locator('#terminal-rtt').innerText(), 'RTT —', 'the last RTT is not shown as current');
        assert.equal((await termStats(p)).stalled, true);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      await p.locator('#terminal-status', { hasText: /^Connected \(the link recovered after \d+ s\)/ }).waitFor({ timeout: 20000 });
      assert.equal(await p.locator('.term-bar.stalled').count(), 0);
      await p.locator('#terminal-rtt', { hasText: /RTT [\d.]+ ms/ }).waitFor({ timeout: 15000 });
      await run(p, 'echo alive-$((4+5))', 'alive-9');
    });
    await p.close();
  });

  // Light pixels in each '_' cell of the rows that show `words`, from a
  // screenshot of the page (device pixel ratio 1), decoded on a blank page.
  async function underscorePixels(p, words) {
    // xterm.js draws its rows on the next animation frame: a row the
    // buffer already holds may not be in the DOM yet; ask again.
    let boxes = null;
    for (let tries = 0; tries < 50 && !boxes; tries++) {
      if (tries) await sleep(100);
      boxes = await rowBoxes(p, words);
    }
    assert.ok(boxes, `the rows of ${words.join(', ')} were drawn`);
    return pixelsIn(p, boxes);
  }

  async function rowBoxes(p, words) {
    return p.evaluate((ws) => {
      const t = window.bastionTerm;
      const b = t.buffer.active;
      const rows = document.querySelectorAll('#terminal .xterm-rows > div');
      const got = ws.map((word) => {
        let y = -1;
        for (let i = b.length - 1; i >= 0 && y < 0; i--) if (b.getLine(i).translateToString(true) === word) y = i;
        const row = rows[y - b.viewportY];
        if (y < 0 || !row) return null;
        const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
        let at = null;
        let seen = 0;
        for (let n = walker.nextNode(); n && !at; n = walker.nextNode()) {
          const k = word.indexOf('_') - seen;
          if (k >= 0 && k < n.data.length) {
            const r = document.createRange();
            r.setStart(n, k);
            r.setEnd(n, k + 1);
            at = r.getBoundingClientRect();
          }
          seen += n.data.length;
        }
        if (!at) return null;
        const rr = row.getBoundingClientRect();
        return { word, x: Math.round(at.left), w: Math.max(1, Math.round(at.width)), y: Math.round(rr.top), h: Math.round(rr.height), dpr: window.devicePixelRatio };
      });
      return got.includes(null) ? null : got;
    }, words);
  }

  async function pixelsIn(p, boxes) {
    const out = [];
    for (const bx of boxes) {
      assert.equal(bx.dpr, 1);
      const png = await p.screenshot({ clip: { x: bx.x, y: bx.y, width: bx.w, height: bx.h } });
      const blank = await p.context().newPage();
      try {
        const light = await blank.evaluate(async ([b64, w, hgt]) => {
          const img = new Image();
          img.src = `data:image/png;base64,${b64}`;
          await img.decode();
          const c = document.createElement('canvas');
          c.width = w;
          c.height = hgt;
          const g = c.getContext('2d');
          g.drawImage(img, 0, 0);
          const d = g.getImageData(0, 0, w, hgt).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 3 * 110) n += 1;
          return n;
        }, [png.toString('base64'), bx.w, bx.h]);
        out.push({ ...bx, light });
      } finally {
        await blank.close();
      }
    }
    return out;
  }

  h.test('underscores are drawn inside their row at device pixel ratio 1 (pixel check)', { timeout: 90000 }, async () => {
    const p = await adminPage();
    await step('underscore', p, async () => {
      await openTerminal(p);
      await run(p, 'printf "%s\\n" ssh_config x86_64 a_b', (l) => l.trim() === 'a_b');
      // The portal's first choice, and the fonts Debian and most Linux
      // desktops have (fonts-dejavu-core, fonts-liberation).
      const fonts = [null, '"DejaVu Sans Mono", monospace', '"Liberation Mono", monospace'];
      for (const font of fonts) {
        if (font) {
          await p.evaluate((f) => { window.bastionTerm.options.fontFamily = f; }, font);
          await sleep(500); // re-measured and redrawn
        }
        const got = await underscorePixels(p, ['ssh_config', 'x86_64', 'a_b']);
        for (const g of got) assert.ok(g.light > 0, `font ${font || 'default'}: no light pixel where the '_' of ${g.word} is drawn: ${JSON.stringify(g)}`);
      }
    });
    await p.close();
  });

  h.test('reload asks first while connected; after the end, Enter does not reach Reconnect and the reason stays', { timeout: 90000 }, async () => {
    const p = await adminPage();
    await step('end-keys', p, async () => {
      await openTerminal(p);
      await run(p, 'echo typed-$((2+2))', 'typed-4'); // the page has had a user gesture
      // Closing (or reloading) the tab while connected: the browser asks.
      const dialogs = [];
      p.on('dialog', (d) => { dialogs.push(d.type()); d.dismiss().catch(() => {}); });
      await p.close({ runBeforeUnload: true });
      await waitFor(() => dialogs.length > 0, { what: 'the beforeunload prompt', timeoutMs: 10000 });
      assert.deepEqual(dialogs, ['beforeunload']);
      assert.equal(p.isClosed(), false, 'staying keeps the page');
      await run(p, 'echo still-$((3+3))', 'still-6');
      // The shell ends; Enter typed afterwards goes nowhere.
      await run(p, 'exit 4', () => true);
      await p.locator('#terminal-reconnect').waitFor({ state: 'visible' });
      assert.notEqual(await p.evaluate(() => document.activeElement && document.activeElement.id), 'terminal-reconnect');
      const url = p.url();
      await p.keyboard.press('Enter');
      await p.keyboard.type('ls');
      await p.keyboard.press('Enter');
      await sleep(500);
      assert.equal(p.url(), url, 'still on the terminal');
      assert.match(await p.locator('#terminal-status').innerText(), /Session ended: the shell exited \(status 4\)/);
      // Ended: closing asks nothing.
      dialogs.length = 0;
      await p.close({ runBeforeUnload: true });
      await waitFor(() => p.isClosed(), { what: 'the page to close without a prompt', timeoutMs: 10000 });
      assert.deepEqual(dialogs, []);
    });
  });

  h.test('the audit page shows details as readable pairs across the table, not JSON in a narrow column', { timeout: 60000 }, async () => {
    const p = await adminPage();
    await step('audit', p, async () => {
      await p.goto(`${h.daemon.origin}/#/admin/audit`, { waitUntil: 'domcontentloaded' });
      await p.locator('#audit-table').waitFor();
      await p.fill('#audit-action', 'session.end');
      await p.click('#audit-apply');
      // a session.end record has six details (session, reason, bytes, …)
      const cell = p.locator('#audit-table tbody td[data-label="Detail"]').first();
      await waitFor(async () => /bytes_from_vm\s+\d+/.test(await cell.innerText()), { what: 'a session.end detail' });
      const text = await cell.innerText();
      assert.doesNotMatch(text, /[{}"]/, `no raw JSON: ${text}`);
      for (const k of ['session', 'reason', 'bastion', 'duration_s', 'bytes_to_vm']) assert.match(text, new RegExp(`${k}\\s`), text);
      // record and detail together stay compact at 1280 px
      const heights = await p.evaluate(() => [...document.querySelectorAll('#audit-table tbody tr')].slice(0, 2)
        .map((tr) => tr.getBoundingClientRect().height));
      const total = heights[0] + heights[1];
      assert.ok(total < 110, `a record with its detail is ${total} px tall (${heights})`);
    });
    await p.close();
  });

  h.test('the connect form starts with a key from a vault when one is offered, then with the method last used', { timeout: 90000 }, async () => {
    const V = `/groups/${G}/vaults/v-keys`;
    await putOk(h.admin, V, {});
    await putOk(h.admin, `${V}/access-policies/user:admin`, { secret_permissions: ['list', 'get', 'set'] });
    await putOk(h.admin, `${V}/secrets/vm-key`, { value: h.keys['ed25519-openssh'].private });
    const p = await adminPage();
    await step('auth-default', p, async () => {
      const form = async () => {
        await p.goto(`${h.daemon.origin}/#/vms/${G}/${VM}/connect`, { waitUntil: 'domcontentloaded' });
        await p.reload({ waitUntil: 'domcontentloaded' }); // nothing kept in the tab's memory
        await p.locator('#connect-form').waitFor();
        await waitFor(async () => !/Loading/.test(await p.locator('#connect-vault').innerText()), { what: 'the vault list' });
      };
      await form();
      await waitFor(async () => (await p.inputValue('#connect-auth-type')) === 'vault-key', { what: 'a key from the vault by default' });
      assert.equal(await p.inputValue('#connect-vault'), V);
      assert.equal(await p.inputValue('#connect-secret'), 'vm-key');
      await p.fill('#connect-username', h.user.name);
      await p.click('#connect-submit');
      await waitForShell(p);
      // connect once with a pasted key: the next form starts with that
      await openTerminal(p);
      await form();
      await sleep(500); // the vault list is in: nothing switches any more
      assert.equal(await p.inputValue('#connect-auth-type'), 'ssh-key', 'the method last used');
    });
    await p.close();
  });

  h.test('a changed host key: the message says how the key came to be trusted, both fingerprints and how to accept; the VM page forgets it', { timeout: 120000 }, async () => {
    const body = { bastion: ids.bastion(G, 'b1'), username: h.user.name, auth: keyAuth(h.keys['ed25519-openssh'].private) };
    const HK = `/groups/${G}/vms/vm-tofu/host-keys`;
    const end = async (r) => expectStatus(await h.admin.del(`/sessions/${encodeURIComponent(r.json.session.id)}`), [204], 'end');
    let hk = await h.admin.get(HK);
    expectStatus(hk, [200], 'GET host-keys');
    assert.deepEqual(hk.json, { pinned: [], recorded: [] });
    let r = await connect(h.admin, G, 'vm-tofu', body);
    expectStatus(r, [201], 'first connect records the key');
    await end(r);
    const oldFp = fingerprint(tofu.hostKeyPublic);
    await waitFor(async () => ((await h.admin.get(HK)).json.recorded || []).length === 1, { what: 'the key recorded' });
    hk = await h.admin.get(HK);
    assert.deepEqual(hk.json.recorded, [{ key: tofu.hostKeyPublic, type: 'ssh-ed25519', fingerprint: oldFp }]);
    // who may see and forget it
    const frank2 = h.client('frank2');
    await frank2.login(frank.name, frank.password);
    expectStatus(await frank2.get(HK), [404], 'no Reader on vm-tofu: as if missing');
    expectStatus(await frank2.get(`/groups/${G}/vms/${VM}/host-keys`), [200], 'Reader on vm-web reads its keys');
    expectError(await frank2.del(`/groups/${G}/vms/${VM}/host-keys`), 403, 'AuthorizationFailed', { messageIncludes: 'Contributor on' });

    await tofu.restart({ newHostKey: true });
    const newFp = fingerprint(tofu.hostKeyPublic);
    r = await connect(h.admin, G, 'vm-tofu', body);
    expectError(r, 502, 'HostKeyMismatch');
    const m = r.json.error.message;
    assert.match(m, /recorded on its first connect/, m);
    assert.doesNotMatch(m, /pinned/, m);
    assert.ok(m.includes(oldFp) && m.includes(newFp), `both fingerprints in: ${m}`);
    assert.ok(m.includes(`DELETE /api/v1${ids.vm(G, 'vm-tofu')}/host-keys`), m);

    // The VM page shows the recorded key; Forget, then the next connect records the new one.
    const p = await adminPage();
    await step('host-keys', p, async () => {
      await p.goto(`${h.daemon.origin}/#/vms/${G}/vm-tofu`, { waitUntil: 'domcontentloaded' });
      await p.locator(`#vm-host-keys li[data-fingerprint="${oldFp}"]`).waitFor();
      assert.match(await p.locator('#vm-host-keys').innerText(), /recorded on the first connect/);
      await p.click('#vm-host-keys-forget');
      await p.click('#confirm-ok');
      await p.locator('#vm-host-keys-msg', { hasText: 'Forgotten' }).waitFor();
      await p.locator('#vm-host-keys', { hasText: 'None recorded yet' }).waitFor();
    });
    await p.close();
    r = await connect(h.admin, G, 'vm-tofu', body);
    expectStatus(r, [201], 'the new key is accepted and recorded');
    await end(r);
    await waitFor(async () => ((await h.admin.get(HK)).json.recorded || []).some((k) => k.fingerprint === newFp), { what: 'the new key recorded' });
    const audit = await h.admin.get(`/audit?action=vm.host_keys.clear&target=${encodeURIComponent(ids.vm(G, 'vm-tofu'))}`);
    assert.equal(audit.json.value.length, 1, 'the forget is audited');
    assert.equal(audit.json.value[0].principal, 'user:admin');

    // Pinned: the message says so and points at host_keys.
    await putOk(h.admin, ids.vm(G, 'vm-pinned'), { nic: ids.nic(G, 'vm-tofu-nic'), ssh_port: tofu.port, host_keys: [mainSshd.hostKeyPublic] });
    try {
      r = await connect(h.admin, G, 'vm-pinned', body);
      expectError(r, 502, 'HostKeyMismatch');
      assert.match(r.json.error.message, /pinned in its host_keys/, r.json.error.message);
      assert.ok(r.json.error.message.includes(fingerprint(mainSshd.hostKeyPublic)), r.json.error.message);
      hk = await h.admin.get(`/groups/${G}/vms/vm-pinned/host-keys`);
      assert.equal(hk.json.pinned[0].fingerprint, fingerprint(mainSshd.hostKeyPublic));
    } finally {
      await h.admin.del(ids.vm(G, 'vm-pinned'));
    }
  });

  h.test('no page errors, no CSP violations, nothing fetched from elsewhere, no secret leaked', async () => {
    for (const c of contexts) {
      assert.deepEqual(c.rec.errors, [], 'uncaught page errors');
      assert.deepEqual(c.rec.csp, [], 'CSP violations');
      assert.deepEqual(c.rec.foreign, [], 'requests to other origins');
    }
    h.assertNoLeaks();
  });

  h.testCleanExit('SIGTERM: exits 0 within 10 s (under ASan: no leak, no report)');
});
