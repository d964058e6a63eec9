// Session recordings (SPEC §8): the list (GET /recordings with filters,
// paged by "next"), a player for one recording, and the live view of a
// session being watched (GET /sessions/{id}/watch).
//
// The player replays the asciicast into the same xterm.js the terminal
// uses, rather than asciinema-player: that one renders through a
// WebAssembly terminal emulator, which the portal's Content-Security-Policy
// (script-src 'self', no 'wasm-unsafe-eval') rightly refuses, and xterm.js
// is already in the bundle. Seeking resets the terminal and writes every
// output up to that time at once; search asks the server
// (/recordings/{id}/search), and each hit seeks to its time.

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

// The cast's lines: the header and [time, type, data] events.
function parseCast(text) {
  const lines = text.split('\n').filter((l) => l.length);
  const header = JSON.parse(lines[0]);
  const events = [];
  for (const l of lines.slice(1)) {
    const e = JSON.parse(l);
    if (Array.isArray(e) && e.length === 3) events.push(e);
  }
  return { header, events };
}

function makeTerm(host, cols, rows) {
  const term = new Terminal({ cols, rows, disableStdin: true, scrollback: 5000, convertEol: false, cursorBlink: false, fontSize: 14 });
  term.open(host);
  window.bastionTerm = term; // the browser tests read its buffer
  return term;
}

export function renderRecording(root, { id }) {
  const controller = new AbortController();
  const msg = messageLine('player-msg');
  const meta = h('p', { id: 'player-meta', class: 'muted' }, 'Loading…');
  const host = h('div', { id: 'player-term', class: 'player-term' });
  const playBtn = button('Play', () => (playing ? pause() : play()), { id: 'player-play', class: 'primary small' });
  const speedSel = h('select', { id: 'player-speed', 'aria-label': 'Speed' },
    ['0.5', '1', '2', '4', '8'].map((s) => h('option', { value: s, selected: s === '1' }, `${s}×`)));
  const seekBar = h('input', { id: 'player-seek', type: 'range', min: '0', max: '0', step: '0.1', value: '0', 'aria-label': 'Position' });
  const timeLbl = h('span', { id: 'player-time', class: 'muted' }, '0:00 / 0:00');
  const download = h('a', { id: 'player-download', class: 'button small', href: `/api/v1/recordings/${encodeURIComponent(id)}/cast`, download: `${id}.cast` }, 'Download .cast');
  const qInput = h('input', { id: 'player-q', type: 'search', placeholder: 'Text shown on screen' });
  const hitsEl = h('ol', { id: 'player-hits', class: 'hits' });
  const searchForm = h('form', { id: 'player-search', class: 'filters' }, field('Search', qInput),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'small', id: 'player-search-go' }, 'Find')));
  page(root, 'Recording', meta, msg.el,
    h('div', { class: 'actions player-controls' }, playBtn, speedSel, seekBar, timeLbl, download),
    host, searchForm, hitsEl);

  let term = null;
  let cast = null;
  let idx = 0; // the next event to apply
  let pos = 0; // seconds shown
  let playing = false;
  let startWall = 0;
  let startPos = 0;
  let timer = null;
  let duration = 0;

  function apply(upTo) {
    let out = '';
    while (idx < cast.events.length && cast.events[idx][0] <= upTo) {
      const [, type, data] = cast.events[idx++];
      if (type === 'o') {
        out += data;
      } else if (type === 'r') {
        const m = /^(\d+)x(\d+)$/.exec(data);
        if (out) term.write(out);
        out = '';
        if (m) term.resize(Math.min(+m[1], 1000), Math.min(+m[2], 1000));
      }
    }
    if (out) term.write(out);
  }

  function show() {
    seekBar.value = String(pos);
    timeLbl.textContent = `${clock(pos)} / ${clock(duration)}`;
  }

  function tick() {
    timer = null;
    if (!playing) return;
    pos = startPos + ((performance.now() - startWall) / 1000) * Number(speedSel.value);
    if (pos >= duration) pos = duration;
    apply(pos);
    show();
    if (pos >= duration) {
      pause();
      return;
    }
    timer = setTimeout(tick, 40);
  }

  function play() {
    if (!cast) return;
    if (pos >= duration) seek(0);
    playing = true;
    playBtn.textContent = 'Pause';
    startWall = performance.now();
    startPos = pos;
    tick();
  }

  function pause() {
    playing = false;
    playBtn.textContent = 'Play';
    if (timer) clearTimeout(timer);
    timer = null;
  }

  // Back to the start, then everything up to t at once.
  function seek(t) {
    if (!cast) return;
    term.reset();
    term.resize(cast.header.width || 80, cast.header.height || 24);
    idx = 0;
    pos = Math.max(0, Math.min(t, duration));
    apply(pos);
    startWall = performance.now();
    startPos = pos;
    show();
  }

  seekBar.addEventListener('input', () => seek(Number(seekBar.value)));
  speedSel.addEventListener('change', () => {
    startWall = performance.now();
    startPos = pos;
  });
  searchForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = qInput.value.trim();
    if (!q) return;
    try {
      msg.clear();
      const data = await get(`/recordings/${encodeURIComponent(id)}/search?q=${encodeURIComponent(q)}`, { signal: controller.signal });
      replace(hitsEl, ...(data.value || []).map((hit) => h('li', null,
        button(`${clock(hit.time)}  ${hit.line}`, () => {
          pause();
          seek(hit.time);
        }, { class: 'small hit', dataset: { time: String(hit.time) } }))));
      if (!(data.value || []).length) replace(hitsEl, h('li', { class: 'muted' }, 'Not found in what was shown.'));
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  });

  (async () => {
    try {
      const r = await get(`/recordings/${encodeURIComponent(id)}`, { signal: controller.signal });
      meta.textContent = `${r.user} on ${lastSegment(r.vm)} through ${lastSegment(r.bastion)}, ${r.mode}, ${new Date(r.started_at * 1000).toLocaleString()} (${r.state}${r.error ? `: ${r.error}` : ''})`;
      const res = await fetch(`/api/v1/recordings/${encodeURIComponent(id)}/cast`, { credentials: 'same-origin', signal: controller.signal });
      if (!res.ok) {
        let text = `${res.status}`;
        try { text = (await res.json()).error.message; } catch { /* not JSON */ }
        throw new Error(text);
      }
      cast = parseCast(await res.text());
      duration = cast.events.length ? cast.events[cast.events.length - 1][0] : 0;
      seekBar.max = String(duration);
      term = makeTerm(host, cast.header.width || 80, cast.header.height || 24);
      window.bastionPlayer = { seek, play, pause, position: () => pos, duration: () => duration, playing: () => playing };
      show();
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  })();
  return () => {
    pause();
    controller.abort();
    if (term) term.dispose();
    window.bastionPlayer = undefined;
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
