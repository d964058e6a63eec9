// The VM's sign-in questions (keyboard-interactive: a one-time code, a new
// password). The connect answers 202 {"challenge":{...}} for each round;
// each prompt is shown in a dialog, hidden as a password when the VM asks
// for no echo, and POST /sessions/{id}/answers continues the sign-in until
// the session (201) or an error. Answers leave the page's memory as soon as
// they are sent.
import { post, seg } from './api.js';
import { h } from './dom.js';

const MAX_ROUNDS = 16;

// Shows one round; resolves with the answers, or null when cancelled.
function ask(ch) {
  return new Promise((resolve) => {
    const inputs = ch.prompts.map((p, i) => h('input', {
      id: `challenge-answer-${i}`,
      name: `answer-${i}`,
      type: p.echo ? 'text' : 'password',
      autocomplete: p.echo ? 'off' : (/code|token|otp/i.test(p.prompt) ? 'one-time-code' : 'off'),
      spellcheck: 'false',
      required: true,
    }));
    const ok = h('button', { type: 'submit', class: 'primary', id: 'challenge-ok' }, 'Continue');
    const cancel = h('button', { type: 'button', id: 'challenge-cancel' }, 'Cancel');
    const form = h('form', { class: 'stack', id: 'challenge-form' },
      h('h2', { id: 'challenge-title' }, ch.name || 'The VM asks'),
      ch.instruction ? h('p', { id: 'challenge-instruction', class: 'pre-line' }, ch.instruction) : null,
      ...ch.prompts.map((p, i) => h('div', { class: 'field' },
        h('label', { for: `challenge-answer-${i}`, class: 'pre-line' }, p.prompt.trim() || `Answer ${i + 1}`), inputs[i])),
      h('p', { class: 'hint' }, `The VM waits ${ch.expires_in_s || 120} s for the answers.`),
      h('div', { class: 'actions' }, ok, cancel));
    const dlg = h('dialog', { class: 'confirm challenge', id: 'challenge-dialog', 'aria-labelledby': 'challenge-title' }, form);
    document.body.appendChild(dlg);
    const back = document.activeElement;
    const done = (v) => {
      for (const el of inputs) el.value = '';
      dlg.close();
      dlg.remove();
      if (back && back.focus) back.focus();
      resolve(v);
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      done(inputs.map((el) => el.value));
    });
    cancel.addEventListener('click', () => done(null));
    dlg.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      done(null);
    });
    dlg.showModal();
    inputs[0].focus();
  });
}

// data: the connect's answer. Returns the answer that ends the sign-in
// (the {"session"} of a 201); API errors propagate as from post().
export async function answerChallenges(data, { signal } = {}) {
  for (let round = 0; data && data.challenge && round < MAX_ROUNDS; round++) {
    const ch = data.challenge;
    const answers = await ask(ch);
    if (!answers) throw new Error('Sign-in cancelled: the VM drops the waiting sign-in within two minutes.');
    try {
      data = await post(`/sessions/${seg(ch.id)}/answers`, { answers }, { signal });
    } finally {
      answers.fill('');
    }
  }
  return data;
}
