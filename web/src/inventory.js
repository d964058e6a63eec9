// Reads what the signed-in user may see: groups, VMs with their NICs,
// bastions and vaults. Lists answer only what the caller may read, so a 403
// or 404 on one item hides that item rather than failing the page.

import { ApiError, get, getAll, idPath, lastSegment, seg } from './api.js';

function soft(err) {
  return err instanceof ApiError && (err.status === 403 || err.status === 404);
}

export async function listGroups(signal) {
  const groups = await getAll('/groups', { signal });
  return groups.map((g) => g.name || lastSegment(g.id)).filter(Boolean);
}

async function perGroup(groups, type, signal) {
  const lists = await Promise.all(
    groups.map(async (g) => {
      try {
        const items = await getAll(`/groups/${seg(g)}/${type}`, { signal });
        return items.map((item) => ({ ...item, group: g, name: item.name || lastSegment(item.id) }));
      } catch (err) {
        if (soft(err)) return [];
        throw err;
      }
    }),
  );
  return lists.flat();
}

// -> { nic, error }: the NIC, or why it could not be read.
export async function getNic(nicId, signal) {
  if (!nicId) return { nic: null, error: 'no NIC' };
  try {
    return { nic: await get(idPath(nicId), { signal }), error: null };
  } catch (err) {
    if (soft(err)) return { nic: null, error: err.message };
    throw err;
  }
}

// Every readable VM of every readable group, each with .nicInfo = { nic, error }.
export async function listVms(signal) {
  const groups = await listGroups(signal);
  const vms = await perGroup(groups, 'vms', signal);
  await Promise.all(
    vms.map(async (vm) => {
      vm.nicInfo = await getNic(vm.nic, signal);
    }),
  );
  vms.sort((a, b) => a.name.localeCompare(b.name) || a.group.localeCompare(b.group));
  return { groups, vms };
}

export async function getVm(group, name, signal) {
  const vm = await get(`/groups/${seg(group)}/vms/${seg(name)}`, { signal });
  vm.group = group;
  vm.name = vm.name || name;
  vm.nicInfo = await getNic(vm.nic, signal);
  return vm;
}

export async function listBastions(groups, signal) {
  return perGroup(groups, 'bastions', signal);
}

export async function listVaults(groups, signal) {
  return perGroup(groups, 'vaults', signal);
}

// Secret names of a vault (needs the "list" permission of its access policy).
export async function listSecrets(vaultId, signal) {
  const items = await getAll(`${idPath(vaultId)}/secrets`, { signal });
  return items.map((s) => s.name || lastSegment(s.id)).filter(Boolean);
}

// The vaults whose access policy gives the caller "list" on secrets, each
// with .secrets (names). Vaults the caller may read are probed with
// GET .../secrets; only those answering 200 are kept (403
// VaultAccessDenied means no "list").
export async function listableVaults(groups, signal) {
  const vaults = await listVaults(groups, signal);
  const probed = await Promise.all(
    vaults.map(async (v) => {
      try {
        return { ...v, secrets: await listSecrets(v.id, signal) };
      } catch (err) {
        if (soft(err)) return null;
        throw err;
      }
    }),
  );
  return probed.filter(Boolean);
}
