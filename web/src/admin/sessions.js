// Active sessions (GET /sessions): the user's own, and every session through
// a bastion the user owns. Disconnect = DELETE /sessions/{id}.

import { del, get, lastSegment } from '../api.js';
import { h } from '../dom.js';
import { button, confirmDialog, messageLine, page, replace, table, when } from './common.js';

function bytes(n) {
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function dur(s) {
  if (!Number.isFinite(s)) return '—';
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  return hh ? `${hh} h ${mm} min` : mm ? `${mm} min ${ss} s` : `${ss} s`;
}

export function renderSessions(root) {
  const controller = new AbortController();
  const msg = messageLine('sessions-msg');
  const holder = h('div', { id: 'sessions-holder' });
  const refresh = button('Refresh', () => load(), { id: 'sessions-refresh' });
  page(root, 'Active sessions',
    h('p', { class: 'muted' }, 'Your open SSH sessions, and every session through a bastion you own. Disconnecting ends the session; its user sees who ended it.'),
    h('div', { class: 'actions' }, refresh), msg.el, holder);

  async function disconnect(s) {
    if (!(await confirmDialog(`Disconnect ${s.user}'s session to ${lastSegment(s.vm)}?`, 'Disconnect'))) return;
    try {
      await del(`/sessions/${encodeURIComponent(s.id)}`);
      msg.ok(`Disconnected ${s.user} from ${lastSegment(s.vm)}.`);
    } catch (err) {
      msg.fail(err);
    }
    load();
  }

  async function load() {
    try {
      const data = await get('/sessions', { signal: controller.signal });
      const rows = (data && data.value) || [];
      replace(holder, table('sessions-table', 'Active sessions', [
        ['User', (s) => s.user],
        ['VM', (s) => h('span', { title: s.vm }, lastSegment(s.vm))],
        ['Bastion', (s) => h('span', { title: s.bastion }, lastSegment(s.bastion))],
        ['Target', (s) => h('code', null, s.target || '')],
        ['From', (s) => s.source || '—'],
        // A tunnel (the native client, docs/native-client.md) signs in end to
        // end: the bastion has no auth type to show, its kind says more.
        ['Auth', (s) => (s.kind === 'tunnel' ? h('span', { title: 'native client: ssh, scp or a tunnel' }, 'tunnel') : s.auth_type || '—')],
        ['State', (s) => s.state],
        ['Started', (s) => when(s.started_at)],
        ['Duration', (s) => dur(s.duration_s)],
        ['In / out', (s) => `${bytes(s.bytes_to_vm)} / ${bytes(s.bytes_from_vm)}`],
        ['Recording', (s) => (s.recording ? h('a', { href: `#/recordings/${encodeURIComponent(s.recording)}`, class: 'rec-link' }, 'Recording') : '—')],
        ['', (s) => (s.state === 'attached' ? h('a', { href: `#/sessions/${encodeURIComponent(s.id)}/watch`, class: 'button small watch', dataset: { session: s.id } }, 'Watch') : '')],
        ['', (s) => button('Disconnect', () => disconnect(s), { class: 'small danger', dataset: { session: s.id }, 'aria-label': `Disconnect ${s.user} from ${lastSegment(s.vm)}` })],
      ], rows, 'There are no active sessions you can see.'));
    } catch (err) {
      if (!controller.signal.aborted) msg.fail(err);
    }
  }
  load();
  const timer = setInterval(load, 10000);
  return () => {
    clearInterval(timer);
    controller.abort();
  };
}
