// Session recordings (SPEC §8): the list (GET /recordings with filters,
// paged by "next"), a player for one recording, and the live view of a
// session being watched (GET /sessions/{id}/watch).
//
// The player is asciinema-player, on a page of its own (player.html,
// src/player/page.js) shown here in an <iframe>: its terminal emulator is
// WebAssembly, which needs 'wasm-unsafe-eval', and the server allows that
// on that page alone. This page keeps the controls that are the portal's
// (speed, search, download) and tells the player what to do with
// postMessage (seek to a search hit, a new speed); the player's own bar
// plays, pauses and seeks. The live view stays on xterm.js.

import { Terminal } from '@xterm/xterm';
import { get, lastSegment } from '../api.js';
import { field, h } from '../dom.js';
import { button, messageLine, page, replace, table, when } from './common.js';

const FILTERS = [
  ['user', 'User', 'alice'],
  ['vm', 'VM', '/groups/g/vms/web1'],
  ['bastion', 'Bastion', '/groups/g/bastions/b1'],
  ['since', 'Since', ''],
  ['until', 'Until', ''],
];

function size(n) {
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function clock(s) {
  const t = Math.max(0, Math.floor(s || 0));
  const mm = Math.floor(t / 60);
  const ss = String(t % 60).padStart(2, '0');
  return `${mm}:${ss}`;
}

function toUnix(v) {
  const t = Date.parse(v);
  return Number.isFinite(t) ? String(Math.floor(t / 1000)) : v;
}

export function renderRecordings(root) {
  const controller = new AbortController();
  const msg = messageLine('recordings-msg');
  const holder = h('div', { id: 'recordings-holder' });
  const inputs = {};
  const fields = FILTERS.map(([key, label, ph]) => {
    const type = key === 'since' || key === 'until' ? 'datetime-local' : 'text';
    inputs[key] = h('input', { id: `rec-f-${key}`, type, placeholder: ph || null });
    return field(label, inputs[key]);
  });
  const more = button('Older recordings', () => load(true), { id: 'recordings-more', hidden: true });
  let next = null;
  let rows = [];
  const form = h('form', { id: 'recordings-filters', class: 'filters' }, fields,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary small', id: 'recordings-apply' }, 'Filter')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load(false);
  });
  page(root, 'Recordings',
    h('p', { class: 'muted' }, 'Sessions recorded through the bastions you own or audit. Open one to play it, search what was shown, or download it as an asciicast file.'),
    form, msg.el, holder, more);

  async function load(older) {
    const q = new URLSearchParams();
    for (const [key] of FILTERS) {
      const v = inputs[key].value.trim();
      if (v) q.set(key, key === 'since' || key === 'until' ? toUnix(v) : v);
    }
    if (older && next) q.set('cursor', next);
    try {
      msg.clear();
      const data = await get(`/recordings?${q}`, { signal: controller.signal });
      rows = older ? rows.concat(data.value || []) : data.value || [];
      next = data.next || null;
      more.hidden = !next;
      replace(holder, table('recordings-table', 'Recordings', [
        ['Started', (r) => h('a', { href: `#/recordings/${encodeURIComponent(r.id)}`, class: 'rec-link', dataset: { recording: r.id } }, when(r.started_at))],
        ['User', (r) => r.user],
        ['VM', (r) => h('span', { title: r.vm }, lastSegment(r.vm))],
        ['Bastion', (r) => h('span', { title: r.bastion }, lastSegment(r.bastion))],
        ['Mode', (r) => r.mode],
        ['Duration', (r) => clock(r.duration_s)],
        ['Size', (r) => size(r.bytes)],
        ['State', (r) => (r.error ? h('span', { title: r.error }, r.state) : r.state)],
        // A recording still being written is a live session: watch it.
        ['', (r) => (r.ended_at ? '' : h('a', { href: `#/sessions/${encodeURIComponent(r.session)}/watch`, class: 'button small watch', dataset: { session: r.session } }, 'Watch'))],
      ], rows, 'No recordings you can read match.'));
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  }
  load(false);
  return () => controller.abort();
}

function makeTerm(host, cols, rows) {
  const term = new Terminal({ cols, rows, disableStdin: true, scrollback: 5000, convertEol: false, cursorBlink: false, fontSize: 14 });
  term.open(host);
  window.bastionTerm = term; // the browser tests read its buffer
  return term;
}

// One recording: its facts, the player (player.html in a frame, see the
// top of this file), speed, search, download.
export function renderRecording(root, { id }) {
  const controller = new AbortController();
  const msg = messageLine('player-msg');
  const meta = h('p', { id: 'player-meta', class: 'muted' }, 'Loading…');
  const frame = h('iframe', {
    id: 'player-frame',
    class: 'player-frame',
    title: 'Recording player (Space plays and pauses, arrows seek, ? lists the keys)',
    src: `/player.html#${encodeURIComponent(id)}`,
    allow: 'fullscreen',
  });
  const speedSel = h('select', { id: 'player-speed', disabled: true },
    ['0.5', '1', '2', '4', '8'].map((s) => h('option', { value: s, selected: s === '1' }, `${s}×`)));
  const download = h('a', { id: 'player-download', class: 'button small', href: `/api/v1/recordings/${encodeURIComponent(id)}/cast`, download: `${id}.cast` }, 'Download .cast');
  const qInput = h('input', { id: 'player-q', type: 'search', placeholder: 'Text shown on screen' });
  const hitsEl = h('ol', { id: 'player-hits', class: 'hits' });
  const searchForm = h('form', { id: 'player-search', class: 'filters' }, field('Search', qInput),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'small', id: 'player-search-go' }, 'Find')));
  page(root, 'Recording', meta, msg.el, frame,
    h('div', { class: 'actions player-controls' }, field('Speed', speedSel), download),
    searchForm, hitsEl);

  // To the player's page only: same origin, that frame.
  function tell(m) {
    if (frame.contentWindow) frame.contentWindow.postMessage(m, location.origin);
  }
  function onMessage(ev) {
    if (ev.origin !== location.origin || ev.source !== frame.contentWindow || !ev.data) return;
    const m = ev.data;
    if (m.type === 'ready') {
      speedSel.disabled = false;
      if (speedSel.value !== '1') tell({ type: 'speed', speed: Number(speedSel.value) });
    } else if (m.type === 'error') {
      msg.fail(new Error(String(m.message)));
    } else if (m.type === 'size' && Number.isFinite(m.height)) {
      frame.style.height = `${Math.min(Math.max(Math.ceil(m.height), 80), 4000)}px`;
    }
  }
  window.addEventListener('message', onMessage);

  speedSel.addEventListener('change', () => tell({ type: 'speed', speed: Number(speedSel.value) }));
  searchForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = qInput.value.trim();
    if (!q) return;
    try {
      msg.clear();
      const data = await get(`/recordings/${encodeURIComponent(id)}/search?q=${encodeURIComponent(q)}`, { signal: controller.signal });
      replace(hitsEl, ...(data.value || []).map((hit) => h('li', null,
        button(`${clock(hit.time)}  ${hit.line}`, () => tell({ type: 'seek', time: hit.time }),
          { class: 'small hit', dataset: { time: String(hit.time) } }))));
      if (!(data.value || []).length) replace(hitsEl, h('li', { class: 'muted' }, 'Not found in what was shown.'));
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  });

  (async () => {
    try {
      const r = await get(`/recordings/${encodeURIComponent(id)}`, { signal: controller.signal });
      meta.textContent = `${r.user} on ${lastSegment(r.vm)} through ${lastSegment(r.bastion)}, ${r.mode}, ${new Date(r.started_at * 1000).toLocaleString()}, ${clock(r.duration_s)} (${r.state}${r.error ? `: ${r.error}` : ''})`;
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  })();
  return () => {
    controller.abort();
    window.removeEventListener('message', onMessage);
  };
}

// Watching a live session: its output, read-only, as it happens.
export function renderWatch(root, { session }) {
  const msg = messageLine('watch-msg');
  const host = h('div', { id: 'watch-term', class: 'player-term' });
  page(root, 'Watching a session', h('p', { class: 'muted' }, 'Read-only: the user sees that you are watching.'), msg.el, host);
  const term = makeTerm(host, 120, 32);
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/sessions/${encodeURIComponent(session)}/watch`, 'bastion.v1');
  ws.binaryType = 'arraybuffer';
  let opened = false;
  ws.addEventListener('open', () => {
    opened = true;
    msg.ok('Watching: what the session shows appears here.');
  });
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data === 'string') {
      try {
        const m = JSON.parse(ev.data);
        if (m.type === 'closed') msg.ok(`Watching ended: ${m.reason}`);
      } catch { /* not ours */ }
      return;
    }
    term.write(new Uint8Array(ev.data));
  });
  ws.addEventListener('close', () => {
    if (!opened) msg.fail(new Error('This session cannot be watched: it ended, or you are not an Owner or Auditor of its bastion.'));
    else if (!/ended/.test(msg.el.textContent)) msg.ok('Watching ended.');
  });
  return () => {
    ws.close();
    term.dispose();
  };
}
