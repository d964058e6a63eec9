// The terminal view (SPEC §3): xterm.js on the session's WebSocket with the
// subprotocol bastion.v1. Binary frames carry terminal bytes both ways; text
// frames carry JSON control messages (resize out; exit and closed in).

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { del } from './api.js';
import { debounce, h } from './dom.js';
import { connectRoute, state } from './state.js';

export const FONT_FAMILY = 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace';
export const FONT_SIZE = 14;
const BAR_HEIGHT = 36; // .term-bar in app.css
const PADDING = 6; // #terminal .xterm padding in app.css, each side
const MAX_FRAME = 16 * 1024;
const SUBPROTOCOL = 'bastion.v1';

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
  const cellH = rect.height || FONT_SIZE * 1.2;
  const width = window.innerWidth - 2 * PADDING - 14; // 14: xterm's scroll bar
  const height = window.innerHeight - BAR_HEIGHT - 2 * PADDING;
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  return {
    cols: clamp(Math.floor(width / cellW), 20, 500),
    rows: clamp(Math.floor(height / cellH), 5, 200),
  };
}

function webSocketUrl(terminal) {
  if (/^wss?:\/\//i.test(terminal)) return terminal;
  const scheme = location.protocol === 'http:' ? 'ws://' : 'wss://';
  return scheme + location.host + terminal;
}

export function renderTerminal(root, { group, name }) {
  const session = state.pendingSession;
  state.pendingSession = null;
  if (!session || session.vm.group !== group || session.vm.name !== name) {
    // A reload or a pasted link: the session (if any) is gone with the page.
    location.replace(connectRoute(group, name));
    return () => {};
  }
  document.title = `${name} · bastion`;
  document.body.classList.add('terminal-mode');

  const status = h('span', { id: 'terminal-status', role: 'status', 'aria-live': 'polite' }, 'Connecting…');
  const reconnect = h('button', { id: 'terminal-reconnect', type: 'button', class: 'primary small', hidden: true }, 'Reconnect');
  const disconnect = h('button', { id: 'terminal-disconnect', type: 'button', class: 'small' }, 'Disconnect');
  const bar = h(
    'div',
    { class: 'term-bar', role: 'toolbar', 'aria-label': 'Session' },
    h('a', { href: '#/', class: 'term-back', title: 'Back to the virtual machines' }, '← VMs'),
    h(
      'span',
      { class: 'term-title' },
      h('strong', null, name),
      session.vm.ip ? ` ${session.vm.ip}` : '',
      ` as ${session.username}`,
    ),
    status,
    h('span', { class: 'term-spacer' }),
    reconnect,
    disconnect,
  );
  const host = h('div', { id: 'terminal', class: 'term-host' });
  root.appendChild(h('div', { class: 'term-view' }, bar, host));

  const term = new Terminal({
    allowProposedApi: true, // the unicode API of the unicode11 addon
    scrollback: 5000,
    cursorBlink: true,
    fontFamily: FONT_FAMILY,
    fontSize: FONT_SIZE,
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
  let disposed = false;
  let lastSent = null;

  const ws = new WebSocket(webSocketUrl(session.terminal), SUBPROTOCOL);
  ws.binaryType = 'arraybuffer';

  function safeFit() {
    try {
      fit.fit();
    } catch {
      // Not laid out yet (e.g. zero size): the next resize fits again.
    }
  }

  function sendBytes(bytes) {
    if (ws.readyState !== WebSocket.OPEN) return;
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

  function end(message) {
    if (ended) return;
    ended = true;
    sendResizeSoon.cancel();
    status.textContent = message;
    bar.classList.add('ended');
    reconnect.hidden = false;
    disconnect.hidden = true;
    term.options.disableStdin = true;
    term.options.cursorBlink = false;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    if (!disposed) reconnect.focus();
  }

  ws.addEventListener('open', () => {
    if (ended) return;
    status.textContent = 'Connected';
    safeFit();
    sendResize(true);
  });
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data !== 'string') {
      term.write(new Uint8Array(ev.data));
      return;
    }
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'exit') {
      const code = Number.isInteger(msg.exit_status) ? msg.exit_status : '?';
      end(`Session ended (exit status ${code})`);
    } else if (msg.type === 'closed') {
      end(`Session closed: ${typeof msg.reason === 'string' && msg.reason ? msg.reason : 'closed by the bastion'}`);
    }
  });
  ws.addEventListener('close', (ev) => {
    if (ended) return;
    let text = 'Connection closed';
    if (ev.reason) text += `: ${ev.reason}`;
    else if (ev.code !== 1000 && ev.code !== 1005) text += ` (code ${ev.code})`;
    end(text);
  });

  const subs = [
    term.onData((data) => sendBytes(encoder.encode(data))),
    term.onBinary((data) => {
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
      sendBytes(bytes);
    }),
    term.onResize(() => sendResizeSoon()),
  ];
  const observer = new ResizeObserver(() => fitSoon());
  observer.observe(host);

  reconnect.addEventListener('click', () => {
    location.hash = connectRoute(group, name);
  });
  disconnect.addEventListener('click', () => {
    // Ask the bastion to end the session, then close our side.
    del(`/sessions/${encodeURIComponent(session.id)}`).catch(() => {});
    end('Disconnected');
  });

  return () => {
    disposed = true;
    if (!ended) {
      ended = true;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    }
    observer.disconnect();
    fitSoon.cancel();
    sendResizeSoon.cancel();
    for (const s of subs) s.dispose();
    term.dispose();
    if (window.bastionTerm === term) window.bastionTerm = null;
    document.body.classList.remove('terminal-mode');
  };
}
