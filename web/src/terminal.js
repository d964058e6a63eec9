// The terminal view (SPEC §3): xterm.js on the session's WebSocket with the
// subprotocol bastion.v1. Binary frames carry terminal bytes both ways; text
// frames carry JSON control messages (resize and ping out; exit, closed,
// warning, pong and error in).
//
// The session id is in the URL (#/vms/g/vm/terminal/{id}?user=U), so a new
// browser tab can attach to a session that another tab created: a session
// may be attached once, by its creator, within 30 s of the connect, and the
// cookie is shared between tabs.
//
// Flow control (docs/api.md, as in the xterm.js flow-control guide): the
// browser's WebSocket cannot be paused, and the bastion's watermark only sees
// what the browser has not read from the socket — a slow page has long read
// megabytes it has not drawn. So the page asks for a window at open,
// {"type":"window","bytes":FLOW_WINDOW}, and acknowledges what xterm has
// drawn (the term.write() callback) with {"type":"ack","bytes":N} every
// ACK_EVERY bytes; the bastion sends at most FLOW_WINDOW bytes ahead of the
// acknowledgements and otherwise stops reading the SSH channel, so the VM
// blocks on its PTY. The backlog (bytes given to xterm and not yet drawn) is
// thus bounded by the window, and Ctrl+C stops the output once what the VM
// already sent (the SSH channel window) is drawn. Against a bastion without
// it the backlog is unbounded as before (shown in the status bar above
// BACKLOG_NOTICE bytes). See docs/portal.md.
//
// Flush on interrupt (docs/api.md), as a tty drops its output queue on
// INTR: the page keeps what it has not drawn in its own queue and gives
// xterm at most FEED_MAX at a time, so that it can drop it. When the user
// types Ctrl+C, Ctrl+\ or Ctrl+Z while FLUSH_ABOVE bytes or more wait, the
// page drops its queue, sends {"type":"flush"} and the keystroke, drops
// every frame until {"type":"flushed","bytes":N} (the bastion's part: what
// the VM sent before it read the keystroke), acknowledges all it dropped,
// and writes a dim one-line notice. A full-screen program may need Ctrl+L
// to redraw. Output the page could draw at once is never dropped.
//
// Stall: a ping unanswered for STALL_AFTER_MS (the bastion frozen, the
// network gone) turns the bar to "Stalled"; the next pong says it recovered.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { del, get } from './api.js';
import { debounce, h } from './dom.js';
import { connectRoute, state, vmId, vmRoute } from './state.js';

export const FONT_FAMILY = 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace';
export const FONT_SIZE = 14;
// Rows taller than the font's own height: at 14 px and line height 1 the
// row is the font's ascent + descent rounded, and the underscore of DejaVu
// Sans Mono and Liberation Mono (drawn at the bottom of the descent) fell
// outside it at device pixel ratio 1 ("ssh_config" read "ssh config").
// The browser test checks the pixels of '_' in both fonts.
export const LINE_HEIGHT = 1.2;
const BAR_HEIGHT = 32; // .term-bar in app.css
const PADDING = 6; // #terminal .xterm padding in app.css, each side
const MAX_FRAME = 16 * 1024;
const SUBPROTOCOL = 'bastion.v1';
const FLOW_WINDOW = 256 * 1024; // bytes the bastion may send ahead of our acks
const ACK_EVERY = 32 * 1024;
const BACKLOG_NOTICE = 4 * 1024 * 1024;
const FEED_MAX = 16 * 1024; // bytes inside xterm (not droppable) at a time: one frame
const FLUSH_ABOVE = 64 * 1024; // held back: a backlog this large is flushed on Ctrl+C
const FLUSH_WAIT_MS = 5000; // no "flushed" by then: show output again
const INTERRUPTS = /[\x03\x1a\x1c]/; // INTR, SUSP, QUIT
const PING_EVERY_MS = 5000;
const STALL_AFTER_MS = 4000; // a ping older than this without its pong
const STALL_CHECK_MS = 1000;

const THEME = {
  background: '#15171a',
  foreground: '#e6e6e6',
  cursor: '#f0f0f0',
  cursorAccent: '#15171a',
  selectionBackground: '#3a5a80',
};

// Columns and rows that the terminal will get in this window, measured with
// the terminal's font, so that the PTY starts at the right size.
export function estimateTerminalSize() {
  const probe = h('span', { class: 'term-probe', 'aria-hidden': 'true' }, 'W'.repeat(100));
  probe.style.fontFamily = FONT_FAMILY;
  probe.style.fontSize = `${FONT_SIZE}px`;
  document.body.appendChild(probe);
  const rect = probe.getBoundingClientRect();
  probe.remove();
  const cellW = rect.width / 100 || FONT_SIZE * 0.6;
  const cellH = (rect.height || FONT_SIZE * 1.2) * LINE_HEIGHT;
  const width = window.innerWidth - 2 * PADDING - 14; // 14: xterm's scroll bar
  const height = window.innerHeight - BAR_HEIGHT - 2 * PADDING;
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  return {
    cols: clamp(Math.floor(width / cellW), 20, 500),
    rows: clamp(Math.floor(height / cellH), 5, 200),
  };
}

function webSocketUrl(terminal) {
  const scheme = location.protocol === 'http:' ? 'ws://' : 'wss://';
  return scheme + location.host + terminal;
}

function human(n) {
  if (n >= 1000 * 1000) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1000) return `${Math.round(n / 1000)} kB`;
  return `${n} bytes`;
}

function mib(n) {
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

export function renderTerminal(root, { group, name, session, username }) {
  if (!session) {
    location.replace(connectRoute(group, name));
    return () => {};
  }
  document.title = `${name} · bastion`;
  document.body.classList.add('terminal-mode');
  // Reconnect fills the form in with what is known here.
  const id = vmId(group, name);
  if (!state.lastConnect.has(id) && username) state.lastConnect.set(id, { username });

  const status = h('span', { id: 'terminal-status', role: 'status', 'aria-live': 'polite' }, 'Connecting…');
  const rtt = h('span', { id: 'terminal-rtt', class: 'term-rtt', title: 'Round-trip time between this browser and the bastion' }, 'RTT …');
  // Who is watching this session (SPEC §8): {"type":"notice"} from the bastion.
  const watchers = new Set();
  const noticeEl = h('span', { id: 'terminal-notice', class: 'term-notice', role: 'status', 'aria-live': 'polite', hidden: true });
  const ipEl = h('span', { class: 'term-ip' });
  const reconnect = h('button', { id: 'terminal-reconnect', type: 'button', class: 'primary small', hidden: true }, 'Reconnect');
  const disconnect = h('button', { id: 'terminal-disconnect', type: 'button', class: 'small' }, 'Disconnect');
  const warnText = h('span', { id: 'terminal-warning-text' });
  const stay = h('button', { id: 'terminal-stay', type: 'button', class: 'small' }, 'Stay connected');
  const warning = h('div', { id: 'terminal-warning', class: 'term-warning', role: 'alert', hidden: true }, warnText, stay);
  const bar = h(
    'div',
    { class: 'term-bar', role: 'toolbar', 'aria-label': 'Session' },
    h('a', { href: '#/', class: 'term-back', title: 'Back to the virtual machines' }, '← VMs'),
    h(
      'span',
      { class: 'term-title', id: 'terminal-title' },
      h('a', { href: vmRoute(group, name), class: 'term-vm' }, h('strong', null, name)),
      ipEl,
      username ? h('span', { class: 'term-user' }, ` as ${username}`) : null,
    ),
    status,
    h('span', { class: 'term-spacer' }),
    noticeEl,
    rtt,
    reconnect,
    disconnect,
  );
  const host = h('div', { id: 'terminal', class: 'term-host' });
  const menu = h('div', { id: 'terminal-menu', class: 'menu term-menu', role: 'menu', hidden: true, 'aria-label': 'Terminal' });
  root.appendChild(h('div', { class: 'term-view' }, bar, warning, host, menu));

  get(`/groups/${encodeURIComponent(group)}/vms/${encodeURIComponent(name)}`, { quiet401: true })
    .then((vm) => (vm && vm.nic ? get(vm.nic, { quiet401: true }) : null))
    .then((nic) => {
      if (nic && nic.private_ip) ipEl.textContent = ` ${nic.private_ip}`;
    })
    .catch(() => {});

  const term = new Terminal({
    allowProposedApi: true, // the unicode API of the unicode11 addon
    scrollback: 5000,
    cursorBlink: true,
    fontFamily: FONT_FAMILY,
    fontSize: FONT_SIZE,
    lineHeight: LINE_HEIGHT,
    theme: THEME,
    macOptionIsMeta: true,
    rightClickSelectsWord: true,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.loadAddon(new WebLinksAddon());
  term.loadAddon(new Unicode11Addon());
  term.unicode.activeVersion = '11';
  term.open(host);
  window.bastionTerm = term;
  safeFit();
  term.focus();

  const encoder = new TextEncoder();
  let ended = false;
  let opened = false;
  let disposed = false;
  let lastSent = null;

  const ws = new WebSocket(webSocketUrl(`/api/v1/sessions/${encodeURIComponent(session)}/terminal`), SUBPROTOCOL);
  ws.binaryType = 'arraybuffer';

  // ---- output with flow control ----
  // backlog: bytes given to term.write() whose callback has not fired.
  // The times (performance.now()) are for tests: the last frame received,
  // the last chunk drawn, the last keystroke sent (and `bytes` then).
  const stats = {
    backlog: 0, maxBacklog: 0, bytes: 0, acked: 0, stalled: false, rttMs: null,
    lastOutputAt: 0, lastDrawnAt: 0, lastInputAt: 0, bytesAtInput: 0,
    flushes: 0, dropped: 0, flushedAt: 0, notice: '', afterFlushed: 0,
  };
  window.bastionTermStats = stats;
  let flowSupported = true;
  let flowSent = false; // the window went out (to read a refusal)
  let drawnUnacked = 0;
  let backlogShown = false;
  function sendWindow() {
    flowSent = true;
    ws.send(JSON.stringify({ type: 'window', bytes: FLOW_WINDOW }));
  }
  // queue: received, not yet given to xterm (droppable); inXterm: given
  // to term.write() and not yet drawn. backlog = both.
  const queue = [];
  let queued = 0;
  let inXterm = 0;
  let flushing = 0; // flush messages sent and not yet answered
  let flushDropped = 0; // dropped by the page for the current flush
  let flushTimer = null;
  let flushSupported = true;
  function acknowledge(n, force) {
    drawnUnacked += n;
    if (flowSupported && (force || drawnUnacked >= ACK_EVERY) && drawnUnacked > 0 && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: 'ack', bytes: drawnUnacked }));
      stats.acked += drawnUnacked;
      drawnUnacked = 0;
    }
  }
  function written(n) {
    inXterm -= n;
    stats.backlog -= n;
    stats.lastDrawnAt = performance.now();
    acknowledge(n, false);
    feed();
    showBacklog();
  }
  function feed() {
    while (queue.length && inXterm < FEED_MAX) {
      const chunk = queue.shift();
      queued -= chunk.length;
      inXterm += chunk.length;
      term.write(chunk, () => written(chunk.length));
    }
  }
  function output(chunk) {
    stats.lastOutputAt = performance.now();
    stats.bytes += chunk.length;
    stats.afterFlushed += chunk.length;
    if (flushing) {
      // Sent before the VM read the interrupt: dropped, and acknowledged
      // so that the window does not hold back what follows.
      flushDropped += chunk.length;
      stats.dropped += chunk.length;
      acknowledge(chunk.length, true);
      return;
    }
    stats.backlog += chunk.length;
    if (stats.backlog > stats.maxBacklog) stats.maxBacklog = stats.backlog;
    queue.push(chunk);
    queued += chunk.length;
    feed();
    showBacklog();
  }
  // Before the keystroke goes out: held back, drop the queue and ask the
  // bastion to drop its part. True when a flush was started.
  function flushBefore(text) {
    if (!flowSupported || !flushSupported || !INTERRUPTS.test(text) || stats.backlog < FLUSH_ABOVE) return false;
    const n = queued;
    queue.length = 0;
    queued = 0;
    stats.backlog -= n;
    stats.dropped += n;
    if (!flushing) flushDropped = 0;
    flushDropped += n;
    flushing += 1;
    stats.flushes += 1;
    acknowledge(n, true);
    clearTimeout(flushTimer);
    flushTimer = setTimeout(() => flushed(null), FLUSH_WAIT_MS);
    showBacklog();
    return true;
  }
  function flushed(bytes) {
    if (!flushing) return;
    if (bytes === null) flushing = 0; // no answer: show output again
    else flushing -= 1;
    if (flushing) return;
    clearTimeout(flushTimer);
    stats.flushedAt = performance.now();
    const total = flushDropped + (Number.isInteger(bytes) ? bytes : 0);
    flushDropped = 0;
    // Dim, on a line of its own; the VM's echo of ^C and its prompt follow.
    stats.notice = `^C — ${human(total)} of output discarded`;
    stats.afterFlushed = 0;
    term.write(`\r\n\x1b[2m${stats.notice}\x1b[0m\r\n`);
  }
  function showBacklog() {
    if (stats.backlog > BACKLOG_NOTICE && !ended) {
      backlogShown = true;
      status.textContent = `Output is arriving faster than it can be shown: ${mib(stats.backlog)} waiting (Ctrl+C still reaches the VM)`;
    } else if (backlogShown && stats.backlog < FLOW_WINDOW) {
      backlogShown = false;
      if (!ended) status.textContent = 'Connected';
    }
  }

  function safeFit() {
    try {
      fit.fit();
    } catch {
      // Not laid out yet (e.g. zero size): the next resize fits again.
    }
  }

  function sendBytes(bytes, flush) {
    if (ws.readyState !== WebSocket.OPEN || ended) return;
    stats.lastInputAt = performance.now();
    stats.bytesAtInput = stats.bytes;
    // Right before the keystroke: the bastion marks the VM's output behind it.
    if (flush) ws.send(JSON.stringify({ type: 'flush' }));
    for (let off = 0; off < bytes.length; off += MAX_FRAME) {
      ws.send(bytes.subarray(off, Math.min(off + MAX_FRAME, bytes.length)));
    }
  }

  function sendResize(force) {
    if (ws.readyState !== WebSocket.OPEN || ended) return;
    const cols = term.cols;
    const rows = term.rows;
    if (!force && lastSent && lastSent.cols === cols && lastSent.rows === rows) return;
    lastSent = { cols, rows };
    ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }
  const sendResizeSoon = debounce(() => sendResize(false), 100);
  const fitSoon = debounce(safeFit, 60);

  // ---- round-trip time: {"type":"ping","id":N} -> {"type":"pong","id":N} ----
  // and the stall: the oldest unanswered ping is older than STALL_AFTER_MS.
  let pingId = 0;
  const pings = new Map();
  let pingTimer = null;
  let stallTimer = null;
  let stalledSince = 0;
  let pingSupported = true;
  function ping() {
    if (!pingSupported || ended || ws.readyState !== WebSocket.OPEN) return;
    pingId += 1;
    pings.set(pingId, performance.now());
    // Keep the oldest: it is the one that says how long the link is quiet.
    if (pings.size > 10) {
      const ids = [...pings.keys()];
      pings.delete(ids[1]);
    }
    ws.send(JSON.stringify({ type: 'ping', id: pingId }));
  }
  function checkStall() {
    if (!pingSupported || ended || !pings.size) return;
    const oldest = pings.values().next().value;
    const quiet = performance.now() - oldest;
    if (quiet < STALL_AFTER_MS) return;
    if (!stats.stalled) {
      stats.stalled = true;
      stalledSince = oldest;
      bar.classList.add('stalled');
      rtt.textContent = 'RTT —';
    }
    status.textContent = `Stalled: no answer from the bastion for ${Math.round(quiet / 1000)} s (keystrokes may not arrive)`;
  }
  function pong(id) {
    const t0 = pings.get(id);
    if (t0 === undefined) return;
    // Older pings without their pong are lost or answered out of order.
    for (const k of [...pings.keys()]) if (k <= id) pings.delete(k);
    stats.rttMs = performance.now() - t0;
    rtt.textContent = `RTT ${stats.rttMs < 10 ? stats.rttMs.toFixed(1) : Math.round(stats.rttMs)} ms`;
    if (stats.stalled && !ended) {
      stats.stalled = false;
      bar.classList.remove('stalled');
      const secs = Math.round((performance.now() - stalledSince) / 1000);
      status.textContent = `Connected (the link recovered after ${secs} s)`;
    }
  }

  // ---- the idle warning ----
  let warnTimer = null;
  function showWarning(msg) {
    const secs = Number.isFinite(msg.closes_in_s) ? msg.closes_in_s : null;
    const until = secs != null ? Date.now() + secs * 1000 : null;
    const text = typeof msg.message === 'string' && msg.message ? msg.message : 'This session will be closed soon.';
    stay.hidden = !/idle|input/i.test(text);
    const tick = () => {
      const left = until ? Math.max(0, Math.round((until - Date.now()) / 1000)) : null;
      warnText.textContent = left != null ? `${text} (${left} s left)` : text;
    };
    tick();
    clearInterval(warnTimer);
    warnTimer = setInterval(tick, 1000);
    warning.hidden = false;
    safeFit();
  }
  function hideWarning() {
    if (warning.hidden) return;
    clearInterval(warnTimer);
    warning.hidden = true;
    safeFit();
  }
  stay.addEventListener('click', () => {
    sendResize(true); // any resize counts as input for the idle clock
    hideWarning();
    term.focus();
  });

  function end(message) {
    if (ended) return;
    ended = true;
    sendResizeSoon.cancel();
    clearInterval(pingTimer);
    clearInterval(stallTimer);
    bar.classList.remove('stalled');
    hideWarning();
    status.textContent = message;
    rtt.textContent = '';
    bar.classList.add('ended');
    reconnect.hidden = false;
    disconnect.hidden = true;
    term.options.disableStdin = true;
    term.options.cursorBlink = false;
    document.title = `${name} (ended) · bastion`;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    window.removeEventListener('beforeunload', onBeforeUnload);
    // The focus stays where it was (the terminal, now without input): a
    // focused Reconnect took the next Enter typed for the shell, and the
    // end reason went with the page.
  }

  // Reloading or closing the tab ends the session: ask first while it runs.
  function onBeforeUnload(ev) {
    if (ended) return;
    ev.preventDefault();
    ev.returnValue = ''; // older browsers need it set
  }
  window.addEventListener('beforeunload', onBeforeUnload);

  ws.addEventListener('open', () => {
    if (ended) return;
    opened = true;
    status.textContent = 'Connected';
    safeFit();
    sendWindow();
    sendResize(true);
    ping();
    pingTimer = setInterval(ping, PING_EVERY_MS);
    stallTimer = setInterval(checkStall, STALL_CHECK_MS);
  });
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data !== 'string') {
      if (!disposed) output(new Uint8Array(ev.data));
      return;
    }
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'pong') {
      pong(msg.id);
    } else if (msg.type === 'exit') {
      const code = Number.isInteger(msg.exit_status) ? msg.exit_status : '?';
      end(`Session ended: the shell exited (status ${code})`);
    } else if (msg.type === 'closed') {
      end(`Session closed: ${typeof msg.reason === 'string' && msg.reason ? msg.reason : 'closed by the bastion'}`);
    } else if (msg.type === 'flushed') {
      flushed(Number.isInteger(msg.bytes) && msg.bytes >= 0 ? msg.bytes : 0);
    } else if (msg.type === 'warning') {
      showWarning(msg);
    } else if (msg.type === 'notice' && typeof msg.message === 'string') {
      const m = /^(.*) (is watching|stopped watching)$/.exec(msg.message);
      if (m && m[2] === 'is watching') watchers.add(m[1]);
      else if (m) watchers.delete(m[1]);
      noticeEl.textContent = watchers.size ? `👁 ${[...watchers].join(', ')} ${watchers.size > 1 ? 'are' : 'is'} watching` : msg.message;
      noticeEl.title = msg.message;
      noticeEl.hidden = false;
    } else if (msg.type === 'error' && typeof msg.message === 'string' && /unknown control message/.test(msg.message)) {
      // An older bastion (answers in order: the window went first). Without flow control: the backlog is unbounded, as it
      // was. Without ping: no round-trip time and no stall indicator.
      if (flowSent && flowSupported && !flushing) {
        flowSupported = false;
      } else if (flushing && flushSupported) {
        // A bastion with flow control but without flush: show output again.
        flushSupported = false;
        flushed(null);
      } else if (pings.size) {
        pingSupported = false;
        pings.clear();
        clearInterval(pingTimer);
        clearInterval(stallTimer);
        rtt.textContent = 'RTT n/a';
      }
    }
  });
  ws.addEventListener('close', (ev) => {
    if (ended) return;
    if (!opened) {
      end('Could not attach to this session: it was already opened elsewhere, or it expired (a session must be opened within 30 s of Connect)');
      return;
    }
    let text = 'Connection to the bastion lost';
    if (ev.reason) text += `: ${ev.reason}`;
    else if (ev.code !== 1000 && ev.code !== 1005) text += ` (code ${ev.code})`;
    end(text);
  });

  // ---- clipboard: copy on select, Ctrl+Shift+C / Ctrl+Shift+V, menu ----
  function copySelection() {
    const text = term.getSelection();
    if (!text || !navigator.clipboard) return Promise.resolve(false);
    return navigator.clipboard.writeText(text).then(() => true, () => false);
  }
  async function pasteClipboard() {
    if (ended) return;
    try {
      const text = await navigator.clipboard.readText();
      if (text) term.paste(text);
    } catch {
      status.textContent = 'The browser did not allow reading the clipboard: allow it for this site, or paste with the browser\'s own menu.';
    }
    term.focus();
  }
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type !== 'keydown' || !ev.ctrlKey || !ev.shiftKey || ev.altKey || ev.metaKey) return true;
    const k = ev.key.toLowerCase();
    if (k === 'c') {
      ev.preventDefault();
      copySelection();
      return false;
    }
    if (k === 'v') {
      ev.preventDefault();
      pasteClipboard();
      return false;
    }
    return true;
  });

  function closeMenu(refocus) {
    if (menu.hidden) return;
    menu.hidden = true;
    if (refocus) term.focus();
  }
  function openMenu(x, y) {
    const hasSel = term.hasSelection();
    const item = (label, idAttr, fn, disabled) => {
      const b = h('button', { type: 'button', role: 'menuitem', id: idAttr, disabled: !!disabled }, label);
      b.addEventListener('click', () => {
        closeMenu(false);
        fn();
        term.focus();
      });
      return b;
    };
    menu.replaceChildren(
      item('Copy', 'term-menu-copy', copySelection, !hasSel),
      item('Paste', 'term-menu-paste', pasteClipboard, ended),
      item('Select all', 'term-menu-select-all', () => term.selectAll()),
      item('Clear scrollback', 'term-menu-clear', () => term.clear()),
    );
    menu.hidden = false;
    const r = menu.getBoundingClientRect();
    menu.style.left = `${Math.max(0, Math.min(x, window.innerWidth - r.width - 4))}px`;
    menu.style.top = `${Math.max(0, Math.min(y, window.innerHeight - r.height - 4))}px`;
    const first = menu.querySelector('button:not([disabled])');
    if (first) first.focus();
  }
  host.addEventListener('contextmenu', (ev) => {
    ev.preventDefault();
    let x = ev.clientX;
    let y = ev.clientY;
    if (!x && !y) {
      const r = host.getBoundingClientRect();
      x = r.left + 40;
      y = r.top + 40;
    }
    openMenu(x, y);
  });
  menu.addEventListener('keydown', (ev) => {
    const items = [...menu.querySelectorAll('button:not([disabled])')];
    const i = items.indexOf(document.activeElement);
    if (ev.key === 'Escape' || ev.key === 'Tab') {
      ev.preventDefault();
      closeMenu(true);
    } else if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      const n = items.length;
      items[(i + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n].focus();
    }
  });
  const onDocDown = (ev) => {
    if (!menu.hidden && !menu.contains(ev.target)) closeMenu(false);
  };
  document.addEventListener('mousedown', onDocDown);

  const subs = [
    term.onData((data) => {
      if (!warning.hidden) hideWarning();
      sendBytes(encoder.encode(data), flushBefore(data));
    }),
    term.onBinary((data) => {
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
      sendBytes(bytes);
    }),
    term.onResize(() => sendResizeSoon()),
    term.onSelectionChange(() => {
      if (term.hasSelection()) copySelection();
    }),
  ];
  const observer = new ResizeObserver(() => fitSoon());
  observer.observe(host);

  reconnect.addEventListener('click', () => {
    location.hash = connectRoute(group, name);
  });
  disconnect.addEventListener('click', () => {
    // Ask the bastion to end the session, then close our side.
    del(`/sessions/${encodeURIComponent(session)}`).catch(() => {});
    end('Disconnected');
  });

  return () => {
    disposed = true;
    if (!ended) {
      ended = true;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    }
    window.removeEventListener('beforeunload', onBeforeUnload);
    clearInterval(pingTimer);
    clearInterval(stallTimer);
    clearInterval(warnTimer);
    clearTimeout(flushTimer);
    document.removeEventListener('mousedown', onDocDown);
    observer.disconnect();
    fitSoon.cancel();
    sendResizeSoon.cancel();
    for (const s of subs) s.dispose();
    term.dispose();
    if (window.bastionTerm === term) window.bastionTerm = null;
    if (window.bastionTermStats === stats) window.bastionTermStats = null;
    document.body.classList.remove('terminal-mode');
  };
}
