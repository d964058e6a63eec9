// The recordings player's own document (player.html, its own bundle
// player.js), which the portal's #/recordings/{id} page shows in an
// <iframe> of the same origin. It runs asciinema-player, whose terminal
// emulator is WebAssembly compiled from bytes in its script: that needs
// 'wasm-unsafe-eval' in script-src, which the server sends for this page
// alone (src/server/http.c, docs/security.md). Nothing of the portal runs
// here and nothing of the player runs in the portal, so the portal's page
// keeps its stricter policy.
//
// The recording is player.html#ID. Its .cast is fetched once (same origin,
// the session cookie) and handed to the player as data. The embedding page
// drives it with postMessage, same origin only:
//   {type: 'seek', time}    seconds: pause and show that moment (a search hit)
//   {type: 'speed', speed}  0.5 to 8: the player takes its speed when it is
//                           created, so it is created again at the current
//                           time (playing on if it was playing)
// and hears {type: 'ready'}, {type: 'error', message} and
// {type: 'size', height} (the frame follows the player's height).

import { create } from 'asciinema-player';

const SPEEDS = new Set([0.5, 1, 2, 4, 8]);
const FONT = 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace';

const root = document.getElementById('player');
const statusEl = document.getElementById('player-status');
const embedded = window.parent !== window;

let cast = null; // the .cast text
let player = null;
let holder = null;
let speed = 1;
let playing = false;

function post(msg) {
  if (embedded) window.parent.postMessage(msg, location.origin);
}

function fail(message) {
  statusEl.className = 'status error';
  statusEl.setAttribute('role', 'alert');
  statusEl.textContent = message;
  post({ type: 'error', message });
}

// A new player at `at` seconds, playing on if `resume`, replacing the one
// shown (if any) only once it is in the page, so that the frame's height
// does not jump. Not the player's startAt/autoPlay: a player made with
// startAt and not playing showed an empty screen; a seek draws the moment.
let settled = Promise.resolve(); // the new player's seek (and play) done
function make(at, resume) {
  const el = document.createElement('div');
  root.appendChild(el);
  const p = create({ data: cast }, el, {
    fit: 'width',
    controls: true, // always shown: play, the position bar, fullscreen
    speed,
    preload: true,
    terminalFontFamily: FONT,
    terminalLineHeight: 1.2,
  });
  p.addEventListener('play', () => { playing = true; });
  p.addEventListener('playing', () => { playing = true; });
  p.addEventListener('pause', () => { playing = false; });
  p.addEventListener('ended', () => { playing = false; });
  if (player) player.dispose();
  if (holder) holder.remove();
  player = p;
  holder = el;
  playing = false;
  settled = (async () => {
    if (at > 0) await p.seek(at);
    if (resume) await p.play();
  })().catch(() => { /* the player shows its own error */ });
}

async function seek(time) {
  await settled;
  if (!player || !Number.isFinite(time) || time < 0) return;
  await player.pause();
  playing = false;
  await player.seek(time);
}

async function setSpeed(s) {
  await settled;
  if (!player || !SPEEDS.has(s) || s === speed) return;
  speed = s;
  make(player.getCurrentTime() || 0, playing);
}

window.addEventListener('message', (ev) => {
  if (ev.origin !== location.origin || ev.source !== window.parent || !ev.data) return;
  const m = ev.data;
  if (m.type === 'seek') seek(Number(m.time));
  else if (m.type === 'speed') setSpeed(Number(m.speed));
});

// The frame around this page takes the height of what is in it.
new ResizeObserver(() => post({ type: 'size', height: document.documentElement.scrollHeight }))
  .observe(document.body);

async function load() {
  let id = '';
  try { id = decodeURIComponent(location.hash.slice(1)); } catch { /* a malformed escape: no ID */ }
  if (!id) {
    fail('No recording named: the address is player.html#ID.');
    return;
  }
  try {
    const res = await fetch(`/api/v1/recordings/${encodeURIComponent(id)}/cast`, { credentials: 'same-origin', cache: 'no-store' });
    if (!res.ok) {
      let text = `The recording could not be read (HTTP ${res.status}).`;
      try { text = (await res.json()).error.message; } catch { /* not JSON */ }
      fail(text);
      return;
    }
    cast = await res.text();
  } catch (err) {
    fail(`The recording could not be read: ${(err && err.message) || err}`);
    return;
  }
  statusEl.textContent = '';
  // Fitted to the frame's width, but at most 10 px a column (a font of
  // about 16 px): an 80-column recording should not fill a wide screen.
  let cols = 80;
  try { cols = Number(JSON.parse(cast.slice(0, cast.indexOf('\n'))).width) || 80; } catch { /* the player says what is wrong */ }
  root.style.maxWidth = `${Math.max(20, Math.min(cols, 1000)) * 10}px`;
  make(0, false);
  // For the browser tests: the player's state, read through the frame.
  window.bastionPlayer = {
    time: () => player.getCurrentTime(),
    duration: () => player.getDuration(),
    playing: () => playing,
    speed: () => speed,
    play: async () => { await settled; return player.play(); },
    seek,
  };
  post({ type: 'ready' });
}

load();
