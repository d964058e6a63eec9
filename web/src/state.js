// What the portal keeps in memory between views. Never passwords or keys:
// the connect form drops them as soon as its request has been sent.

export const state = {
  user: null, // { name, ... } once signed in
  // VM id -> { username, authType, bastion } of the last connect, to prefill
  // the form on Reconnect.
  lastConnect: new Map(),
  // The session just created by the connect form, handed to the terminal
  // view exactly once: { id, terminal, vm: {id, name, group, ip}, username }.
  pendingSession: null,
};

export function vmId(group, name) {
  return `/groups/${group}/vms/${name}`;
}

export function connectRoute(group, name) {
  return `#/vms/${encodeURIComponent(group)}/${encodeURIComponent(name)}/connect`;
}

export function terminalRoute(group, name) {
  return `#/vms/${encodeURIComponent(group)}/${encodeURIComponent(name)}/terminal`;
}
