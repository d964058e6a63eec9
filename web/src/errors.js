// Turns API errors into sentences a user understands. The server's own
// message is kept (it names the field, role, scope or vault); a short
// explanation of what it means and what to do goes in front of it.

import { ApiError } from './api.js';

const CONNECT = {
  Unauthenticated: 'Your sign-in has ended. Sign in again and retry.',
  InvalidRequest: 'Something in the form is not valid',
  AuthorizationFailed: 'You are not allowed to connect to this VM. Ask an Owner to assign you the missing role',
  NetworkNotServed: 'The chosen bastion does not serve the network this VM is in. Choose another bastion',
  DestinationNotAllowed: 'The bastion\'s operator does not allow connections to this VM\'s address. Ask the operator to list its range in --allowed-destinations',
  VaultAccessDenied: 'Your access policy on the vault does not let you read that secret (the "get" permission is needed)',
  SecretNotFound: 'The secret was not found in the vault (it may have been deleted)',
  InvalidPrivateKey: 'The private key could not be used: it is not a supported key, or the passphrase is wrong or missing',
  VmUnreachable: 'The VM did not answer: it may be stopped, or its SSH server is not listening on the port',
  HostKeyMismatch: 'The VM presented a different host key than the one the bastion trusts for it. This may be an attack, or the VM was reinstalled; the connection was refused. The VM\'s page shows the trusted key; a Contributor on the VM can forget a recorded key there, or change pinned ones',
  SshAuthenticationFailed: 'The VM refused the username or credential. Check the username and the password or key',
  ShellFailed: 'Signed in to the VM, but it would not start a terminal (shell)',
  SshHandshakeFailed: 'The VM answered, but it and the bastion have no SSH algorithm in common',
  TooManySessions: 'There are too many open sessions. Close one and try again',
  TooManyRequests: 'Too many attempts',
  ServiceUnavailable: 'The bastion is busy. Try again in a moment',
  ResourceNotFound: 'The VM (or something it refers to) no longer exists',
  RequestTooLarge: 'The key or form is too large (private keys are at most 16 KiB)',
  NetworkError: '',
};

// "Explanation: server message." — or just the message for unknown codes.
export function explain(err, table = CONNECT) {
  if (!(err instanceof ApiError)) return (err && err.message) || 'Something went wrong.';
  const lead = table[err.code];
  const msg = err.message || '';
  if (!lead) return msg;
  if (!msg || err.code === 'Unauthenticated') return lead.endsWith('.') ? lead : `${lead}.`;
  const tail = msg.endsWith('.') ? msg : `${msg}.`;
  return lead.endsWith('.') ? `${lead} ${tail}` : `${lead}: ${tail}`;
}

// Formats seconds as "45 seconds", "2 minutes", "1 minute 30 seconds".
export function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.floor(s / 60);
  const r = s % 60;
  const ms = `${m} minute${m === 1 ? '' : 's'}`;
  return r ? `${ms} ${r} second${r === 1 ? '' : 's'}` : ms;
}
