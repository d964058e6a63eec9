// Test networks (docs/testing.md).
//
// Preferred: a network namespace per test file with a veth pair:
//   host side 198.18.X.1/24  <->  namespace side 198.18.X.2/24 ("the VM")
// X is distinct per file (each file passes its own block of ten values and
// the first X with no address on this host is taken), so files can run in
// parallel. The namespace holds 198.18.X.2 .. 198.18.X.8 (one address per
// "VM", so no two NICs share an address); 198.18.X.9 is inside the prefix but has no host: connecting to it
// times out / gets EHOSTUNREACH, and no packet leaves the veth.
//
// Fallback (not root, or no `ip netns`): the "VM" is sshd on 127.0.X.2 with
// its own ports, the served prefix is 127.0.0.0/8, and there is no silent
// address (tests that need one skip).
import fs from 'node:fs';
import { run, isRoot, which, execSyncQuiet, onExitCleanup, isAlive, freePort } from './util.mjs';

// Host numbers that exist as "VM" addresses (198.18.X.<n> or 127.0.X.<n>).
export const VM_HOSTS = [2, 3, 4, 5, 6, 7, 8];
// Host number that exists but where nothing listens: connecting is refused at once.
export const CLOSED_HOST = 5;

let nsCounter = 0;

async function netnsUsable() {
  if (process.env.E2E_NO_NETNS === '1') return false;
  if (!isRoot || !which('ip')) return false;
  const probe = `bste2e-${process.pid}-probe`;
  const r = await run('ip', ['netns', 'add', probe], { allowFail: true });
  if (r.code !== 0) return false;
  await run('ip', ['netns', 'del', probe], { allowFail: true });
  return true;
}

// Namespaces named bste2e-<pid>-<n> whose creating process is gone and which
// hold no process any more are leftovers of a crashed run: remove them.
async function removeStaleNamespaces() {
  const r = await run('ip', ['netns', 'list'], { allowFail: true });
  for (const line of r.stdout.split('\n')) {
    const m = /^(bste2e-(\d+)-\S+)/.exec(line.trim());
    if (!m) continue;
    const owner = Number(m[2]);
    if (owner === process.pid || isAlive(owner)) continue;
    const pids = await run('ip', ['netns', 'pids', m[1]], { allowFail: true });
    if (pids.stdout.trim() !== '') continue;
    await run('ip', ['netns', 'del', m[1]], { allowFail: true });
  }
}

// A subnet is claimed by a file in /run before its address appears, so that
// two runs of one file (the plain and the sanitized pass go side by side)
// never take the same X. A claim whose process is gone is taken over.
const claimPath = (x) => `/run/bste2e-subnet-${x}`;
function claimSubnet(x) {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(claimPath(x), String(process.pid), { flag: 'wx', mode: 0o600 });
      return true;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const holder = Number(fs.readFileSync(claimPath(x), 'utf8')) || 0;
      if (holder === process.pid || isAlive(holder)) return false;
      fs.rmSync(claimPath(x), { force: true });
    }
  }
  return false;
}
function releaseSubnet(x) {
  try {
    if (Number(fs.readFileSync(claimPath(x), 'utf8')) === process.pid) fs.rmSync(claimPath(x), { force: true });
  } catch { /* already gone */ }
}

async function hostHasSubnet(x) {
  const r = await run('ip', ['-4', '-o', 'addr', 'show'], { allowFail: true });
  return r.stdout.includes(` 198.18.${x}.`);
}

/**
 * Create the test network for one test file.
 * @param {number} block base of the file's block of X values (e.g. 20 -> 20..29)
 * @returns {Promise<Net>}
 */
export async function createNet(block) {
  if (!(await netnsUsable())) return createLoopbackNet(block);
  await removeStaleNamespaces();
  let x = -1;
  for (let c = block; c < block + 10; c++) {
    if (!(await hostHasSubnet(c)) && claimSubnet(c)) { x = c; break; }
  }
  if (x < 0) throw new Error(`no free 198.18.X.0/24 subnet in ${block}..${block + 9}`);
  const n = nsCounter++;
  const ns = `bste2e-${process.pid}-${n}`;
  const hostIf = `bsh${process.pid}x${n}`.slice(0, 15);
  const nsIf = `bsn${process.pid}x${n}`.slice(0, 15);
  const netObj = {
    mode: 'netns',
    ns,
    hostIf,
    nsIf,
    x,
    prefix: `198.18.${x}.0/24`,
    hostAddr: `198.18.${x}.1`,
    vmAddr: `198.18.${x}.2`,
    // inside the prefix, nobody there: SYNs get no answer (ARP fails)
    silentAddr: `198.18.${x}.9`,
    addr: (n) => `198.18.${x}.${n}`,
    // an address of the namespace where nothing listens: the kernel answers RST at once
    closedTarget: async () => ({ ip: `198.18.${x}.${CLOSED_HOST}`, port: 22 }),
    // wrap a command so that it runs inside the namespace
    wrap: (cmd, args) => ['ip', ['netns', 'exec', ns, cmd, ...args]],
    async destroy() {
      // Deleting the host end of the veth removes both ends.
      await run('ip', ['link', 'del', hostIf], { allowFail: true });
      await run('ip', ['netns', 'del', ns], { allowFail: true });
      releaseSubnet(x);
      removeExitHook();
    },
  };
  const removeExitHook = onExitCleanup(() => {
    execSyncQuiet('ip', ['link', 'del', hostIf]);
    execSyncQuiet('ip', ['netns', 'del', ns]);
    releaseSubnet(x);
  });
  try {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    // No IPv6 link-local address: the kernel would add it a second or two
    // after the link came up, and Chromium, in a browser test running then,
    // aborts what it loads on any address change (ERR_NETWORK_CHANGED).
    await run('ip', ['link', 'set', hostIf, 'addrgenmode', 'none']);
    await run('ip', ['link', 'set', nsIf, 'netns', ns]);
    await run('ip', ['addr', 'add', `${netObj.hostAddr}/24`, 'dev', hostIf]);
    await run('ip', ['link', 'set', hostIf, 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    for (const n of VM_HOSTS) await run('ip', ['-n', ns, 'addr', 'add', `198.18.${x}.${n}/24`, 'dev', nsIf]);
    await run('ip', ['-n', ns, 'link', 'set', nsIf, 'up']);
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  } catch (e) {
    await netObj.destroy();
    throw e;
  }
  return netObj;
}

function createLoopbackNet(block) {
  const x = block; // 127.0.X.2: a per-file loopback address (all of 127/8 is local on Linux)
  return {
    mode: 'loopback',
    ns: null,
    x,
    prefix: '127.0.0.0/8',
    hostAddr: '127.0.0.1',
    vmAddr: `127.0.${x}.2`,
    silentAddr: null,
    addr: (n) => `127.0.${x}.${n}`,
    closedTarget: async () => {
      const ip = `127.0.${x}.${CLOSED_HOST}`;
      return { ip, port: await freePort(ip) };
    },
    wrap: (cmd, args) => [cmd, args],
    async destroy() {},
  };
}
