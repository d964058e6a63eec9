// Retention (issue 19 item 2, docs/operations.md "Retention"): with
// audit.retention_days and sessions.retention_days set, the instance
// prunes older audit records and ended session records in batches on its
// own, audits each pruning (count, oldest kept), and the audit trail stays
// append-only for everything else.
import { describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileHarness } from './lib/harness.mjs';
import { expectStatus } from './lib/api.mjs';
import { waitFor } from './lib/util.mjs';

const DAY = 86400;
const h = fileHarness({
  label: 'retention',
  daemonOpts: {
    env: {
      BASTION_AUDIT_RETENTION_DAYS: '2',
      BASTION_SESSIONS_RETENTION_DAYS: '2',
      BASTION_HOUSEKEEPING_INTERVAL: '1s',
    },
  },
});

// Raw SQL on the instance's SQLite file, from another process (as an
// operator's tool would); prints one JSON value.
function sql(script, ...args) {
  const py = 'import sqlite3,sys,json\n'
    + 'c=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=10)\n'
    + `${script}\n`;
  return JSON.parse(execFileSync('python3', ['-c', py, path.join(h.daemon.dataDir, 'bastion.db'), ...args.map(String)],
    { encoding: 'utf8', timeout: 30000 }));
}

describe('retention', () => {
  before(() => h.up(), { timeout: 60000 });
  after(() => h.down(), { timeout: 30000 });

  h.test('old audit and session records are pruned in batches, each pruning audited; the rest stays append-only', { timeout: 90000 }, async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = now - 3 * DAY;
    // 1200 records three days old (three batches of 500), and sessions:
    // one ended three days ago, one ended now, one open since then.
    const inserted = sql(
      'now,old=int(sys.argv[2]),int(sys.argv[3])\n'
      + 'c.execute("BEGIN")\n'
      + 'c.executemany("INSERT INTO audit (ts, principal, action) VALUES (?, \'user:old\', \'old.thing\')", [(old,)]*1200)\n'
      + 'ins="INSERT INTO term_sessions (id,user,vm,bastion,target,source,auth_type,started_at,ended_at,end_reason) VALUES (?,\'u\',\'/groups/g/vms/v\',\'/groups/g/bastions/b\',\'10.0.0.1:22\',\'127.0.0.1\',\'password\',?,?,?)"\n'
      + 'c.execute(ins,("s-old",old,old+60,"closed"))\n'
      + 'c.execute(ins,("s-new",now,now,"closed"))\n'
      + 'c.execute(ins,("s-open",old,None,None))\n'
      + 'c.execute("COMMIT")\n'
      + 'print(json.dumps(c.execute("SELECT count(*) FROM audit WHERE ts < ?", (now - 2*86400,)).fetchone()[0]))',
      now, old,
    );
    assert.equal(inserted, 1200);

    const pruned = await waitFor(async () => {
      const r = expectStatus(await h.admin.get('/audit?action=audit.pruned'), 200, 'audit');
      return r.json.value.length ? r.json.value : null;
    }, { timeoutMs: 30000, intervalMs: 250, what: 'the audit.pruned record' });
    const total = pruned.reduce((n, a) => n + a.detail.count, 0);
    assert.equal(total, 1200, JSON.stringify(pruned));
    for (const a of pruned) {
      assert.equal(a.principal, 'system');
      assert.equal(a.target, 'audit');
      assert.ok(a.detail.before <= now - 2 * DAY + 5 && a.detail.before >= now - 2 * DAY - 60, JSON.stringify(a));
      assert.ok(a.detail.oldest_kept >= now - 2 * DAY, `oldest_kept ${a.detail.oldest_kept}`);
    }
    assert.equal(sql('print(c.execute("SELECT count(*) FROM audit WHERE action = \'old.thing\'").fetchone()[0])'), 0);
    // The records of today are all there, the first sign-in included.
    const logins = expectStatus(await h.admin.get('/audit?action=auth.login'), 200, 'logins');
    assert.ok(logins.json.value.length >= 1);

    const sp = await waitFor(async () => {
      const r = expectStatus(await h.admin.get('/audit?action=sessions.pruned'), 200, 'audit');
      return r.json.value.length ? r.json.value : null;
    }, { timeoutMs: 30000, intervalMs: 250, what: 'the sessions.pruned record' });
    assert.equal(sp.reduce((n, a) => n + a.detail.count, 0), 1);
    const left = sql('print(json.dumps(sorted(r[0] for r in c.execute("SELECT id FROM term_sessions"))))');
    assert.deepEqual(left, ['s-new', 's-open']);

    // Outside the pruning transaction a delete or an update is refused,
    // whatever the row's age.
    const refused = sql(
      'out=[]\n'
      + 'for q in ("DELETE FROM audit", "UPDATE audit SET action=\'forged\'"):\n'
      + '  try:\n    c.execute(q); out.append("done")\n'
      + '  except sqlite3.DatabaseError as e:\n    out.append(str(e))\n'
      + 'print(json.dumps(out))',
    );
    assert.match(refused[0], /append-only/);
    assert.match(refused[1], /append-only/);
    assert.ok(sql('print(c.execute("SELECT count(*) FROM audit WHERE action = \'forged\'").fetchone()[0])') === 0);
  });
});
