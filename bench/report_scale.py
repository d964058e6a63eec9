"""The tables of bench/scale.sh (PostgreSQL against SQLite, instances
behind HAProxy) and bench/native.sh (the native client), for report.py.
Every ratio compares figures of the same round."""


def _get(rows, label, rnd):
    for r in rows:
        if r.get("label") == label and r.get("round") == rnd:
            return r.get("r") or {}
    return {}


def _f(v, fmt="{:.2f}"):
    if v is None or v == "":
        return "—"
    try:
        return fmt.format(v)
    except (ValueError, TypeError):
        return str(v)


def _ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def _rounds(rows, prefix):
    return sorted({r["round"] for r in rows
                   if str(r.get("label", "")).startswith(prefix) and isinstance(r.get("round"), int)})


def _load(rows, label, rnd):
    for r in rows:
        if r.get("label") == label and r.get("round") == rnd:
            return r.get("load")
    return None


def pg_tables(rows, p):
    rounds = [r for r in _rounds(rows, "pg-") if r > 0]
    if not rounds:
        return
    p("### PostgreSQL against SQLite (same run, sides alternating)")
    p("")
    p("| round | measurement | SQLite | PostgreSQL | PostgreSQL ÷ SQLite | goal |")
    p("|---|---|---|---|---|---|")
    for rnd in rounds:
        sa, pa = _get(rows, "pg-api-sqlite", rnd), _get(rows, "pg-api-pg", rnd)
        sc, pc = _get(rows, "pg-connect-sqlite", rnd), _get(rows, "pg-connect-pg", rnd)
        lines = []
        for key, lab in (("signin", "sign-in"), ("list", "list VMs"), ("conc", "API, 4 clients at once")):
            s, g = sa.get(key) or {}, pa.get(key) or {}
            n = s.get("n")
            for q in ("p50_ms", "p99_ms"):
                lines.append((f"{lab} {q[:3]} (ms, n={n})", s.get(q), g.get(q), "≤ 1.2×"))
            if key == "conc":
                lines.append((f"{lab}: requests/s", s.get("req_s"), g.get("req_s"), "≥ 0.83× (1/1.2)"))
        for q in ("p50", "p99"):
            lines.append((f"connect → first prompt byte {q} (ms, n={sc.get('connect_n')})",
                          sc.get(f"connect_{q}_ms"), pc.get(f"connect_{q}_ms"), "≤ 1.2×"))
        p(f"| {rnd} | load average at the start of each side (1 min) | {_load(rows, 'pg-api-sqlite', rnd)} | "
          f"{_load(rows, 'pg-api-pg', rnd)} | | |")
        for lab, s, g, goal in lines:
            p(f"| {rnd} | {lab} | {_f(s, '{:.3f}')} | {_f(g, '{:.3f}')} | {_ratio(g, s)} | {goal} |")
    p("")
    st = _get(rows, "pg-statements", 0)
    if st:
        p(f"SQL statements sent to PostgreSQL (its statement log, BEGIN/COMMIT included; pg-statements.txt "
          f"lists them): sign-in {st.get('signin')}, list VMs {st.get('list')}, connect {st.get('connect')}; "
          f"one `SELECT 1` round trip (pgbench, 1 client, 5 s) took {_f(st.get('select1_ms'), '{:.3f}')} ms "
          f"on average at that moment.")
        p("")


def _sum(v):
    return sum(x for x in (v or []) if isinstance(x, (int, float)))


def lb_tables(rows, p):
    rounds = _rounds(rows, "lb-")
    if not rounds:
        return
    p("### Connects per second through HAProxy (mode tcp, roundrobin), instances on one PostgreSQL")
    p("")
    p("Each connect: TLS, `POST …/connect`, the terminal's upgrade on the same connection, "
      "the first terminal byte, close. 0 = instance 1 straight, no balancer. CPU is ms per completed "
      "connect, per part (instances summed). Lock waits: of postgres's sessions in a transaction "
      "(sampled every 0.5 s), the share waiting for a lock.")
    p("")
    p("| round | instances | connects/s | p50 (ms) | p99 (ms) | errors | connects per instance | "
      "CPU ms/connect: instances | HAProxy | postgres | target | client | lock waits |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for rnd in rounds:
        for n in range(4):
            r = _get(rows, f"lb-{n}", rnd)
            if not r:
                continue
            parts = _get(rows, f"lb-{n}-parts", rnd)
            done = r.get("n") or 0
            spread = "—"
            b, a = parts.get("before"), parts.get("after")
            if b and a:
                spread = " / ".join(str(y - x) for x, y in zip(b, a))
            c0, c1 = parts.get("cpu_before") or {}, parts.get("cpu_after") or {}

            def per(key, total=False):
                if not done:
                    return "—"
                x0, x1 = c0.get(key), c1.get(key)
                if isinstance(x1, dict):  # postgres: {pid: s}, backends born meanwhile in x1 only
                    x0, x1 = 0, sum(v - (x0 or {}).get(k, 0) for k, v in x1.items())
                elif isinstance(x1, list):
                    x0, x1 = _sum(x0), _sum(x1)
                if not isinstance(x0, (int, float)) or not isinstance(x1, (int, float)):
                    return "—"
                return f"{(x1 - x0) * 1000 / done:.2f}"

            client = r.get("client_cpu_s")
            w = parts.get("pg") or {}
            waits = (f"{100 * w['lock_waits'] / w['busy']:.0f} % of {w['busy'] / w['samples']:.1f}"
                     if w.get("busy") and w.get("samples") else "—")
            p(f"| {rnd} | {n} | {_f(r.get('connects_s'), '{:.1f}')} | {_f(r.get('p50_ms'), '{:.1f}')} | "
              f"{_f(r.get('p99_ms'), '{:.1f}')} | {r.get('errors')} | {spread} | {per('inst')} | {per('haproxy')} | "
              f"{per('postgres')} | {per('target')} | "
              f"{_f(client * 1000 / done if client is not None and done else None)} | {waits} |")
    p("")


def disconnect_table(rows, p):
    v = _get(rows, "disconnect-across", 0)
    if not v:
        return
    d = v.get("delete_answer") or {}
    p("### A disconnect across instances (session on instance 1, DELETE /sessions/{id} on instance 2)")
    p("")
    p("| n | until the terminal on instance 1 closed: p50 / p99 / max (ms) | over 1 s | "
      "the DELETE's answer p50 / p99 (ms) | errors | goal |")
    p("|---|---|---|---|---|---|")
    p(f"| {v.get('n')} | {_f(v.get('p50_ms'), '{:.1f}')} / {_f(v.get('p99_ms'), '{:.1f}')} / "
      f"{_f(v.get('max_ms'), '{:.1f}')} | {v.get('over_1s')} | {_f(d.get('p50_ms'), '{:.1f}')} / "
      f"{_f(d.get('p99_ms'), '{:.1f}')} | {v.get('errors')} | p99 ≤ 1 s |")
    if v.get("first_error"):
        p(f"\nFirst error: `{v.get('first_error')}`")
    p("")


def visible_table(rows, p):
    v = (_get(rows, "visible-across", 0) or {})
    if not v:
        return
    p("### A change on instance 1 seen by instance 2's cached list")
    p("")
    p("| n | from A's answer until B's list shows it: p50 / p99 / max (ms) | B's first list after A's answer still old | errors |")
    p("|---|---|---|---|")
    p(f"| {v.get('n')} | {_f(v.get('p50_ms'), '{:.2f}')} / {_f(v.get('p99_ms'), '{:.2f}')} / "
      f"{_f(v.get('max_ms'), '{:.2f}')} | {v.get('stale_first')} | {v.get('errors')} |")
    if v.get("first_error"):
        p(f"\nFirst error: `{v.get('first_error')}`")
    p("")


def spread_table(rows, p):
    # One row per client (two past 4,000 sessions, each through a balancer
    # of its own): sessions and answers add up, the slower opening counts,
    # the typists' figures are given per client.
    sps = [r for r in rows if str(r.get("label", "")).startswith("spread-") and r["label"] != "spread-parts"]
    if not sps:
        return
    vs, parts = [r.get("r") or {} for r in sps], _get(rows, "spread-parts", 0)
    b, a = parts.get("before") or [], parts.get("after") or []
    n = [y - x for x, y in zip(b, a)]
    rss0, hwm = parts.get("rss_before_kib") or [], parts.get("hwm_kib") or []
    per = [f"{(h - r) / k:.1f}" if k else "—" for r, h, k in zip(rss0, hwm, n)]
    total = sum(v.get("sessions") or 0 for v in vs)
    answered = sum(v.get("check_answered") or 0 for v in vs)
    opened = max((v.get("open_s") or 0 for v in vs), default=None)
    echo = ", ".join(f"{_f(v.get('echo_p50_ms'), '{:.2f}')} / {_f(v.get('echo_p99_ms'), '{:.2f}')}" for v in vs)
    check = ", ".join(f"{_f(v.get('check_p50_ms'), '{:.1f}')} / {_f(v.get('check_p99_ms'), '{:.1f}')}" for v in vs)
    p(f"### {total} sessions at once through HAProxy ({len(vs)} balancer{'s' if len(vs) > 1 else ''}), 3 instances")
    p("")
    p("| sessions per instance | KiB per session per instance (peak RSS − RSS before) | opened in (s) | "
      "W1 of 50 typists p50 / p99 (ms), per client | every session answers: answered, p50 / p99 (ms) per client |")
    p("|---|---|---|---|---|")
    p(f"| {' / '.join(map(str, n))} | {' / '.join(per)} | {_f(opened, '{:.1f}')} | {echo} | "
      f"{answered} of {total}, {check} |")
    p("")


def native_tables(rows, p):
    nat = [r for r in rows if str(r.get("label", "")).startswith("native-")]
    if not nat:
        return
    p("### The native client (bench/native.sh, same run)")
    p("")
    p("| round | measurement | direct | through bastion | ratio | goal |")
    p("|---|---|---|---|---|---|")
    for r in nat:
        v, rnd, lab = r.get("r") or {}, r.get("round"), r["label"][7:]
        if lab == "scp":
            p(f"| {rnd} | scp of {v.get('mib')} MiB (MiB/s) | {_f(v.get('direct_mib_s'), '{:.1f}')} | "
              f"{_f(v.get('bastion_mib_s'), '{:.1f}')} | {_f(v.get('ratio'), '{:.2f}×')} | ≥ 0.9× |")
            p(f"| {rnd} | bastion CPU per GiB carried by scp (s) | | {_f(v.get('bastion_cpu_s_per_gib'), '{:.2f}')} | | reported |")
            if "client_cpu_s_per_gib_direct" in v:
                p(f"| {rnd} | client side CPU per GiB: scp + ssh (s) | "
                  f"{_f(v.get('client_cpu_s_per_gib_direct'))} | | | reported |")
        elif lab == "proxy_raw":
            p(f"| {rnd} | `bastion proxy` alone, {v.get('mib')} MiB to a sink (MiB/s; CPU s/GiB: daemon, proxy) | | "
              f"{_f(v.get('mib_s'), '{:.1f}')}; {_f(v.get('bastion_cpu_s_per_gib'), '{:.2f}')}, "
              f"{_f(v.get('proxy_cpu_s_per_gib'), '{:.2f}')} | | reported |")
        elif lab == "stream_open":
            p(f"| {rnd} | stream open p50 / p99 (ms, n={v.get('n')}) | | {_f(v.get('p50_ms'), '{:.2f}')} / "
              f"{_f(v.get('p99_ms'), '{:.2f}')} | | p50 ≤ 20 |")
        elif lab == "idle_tunnels":
            p(f"| {rnd} | bastion RSS per idle tunnel (KiB, {v.get('n')} open) | | "
              f"{_f(v.get('kib_per_tunnel'), '{:.1f}')} | | reported |")
    p("")


def tables(rows):
    out = []
    pg_tables(rows, out.append)
    lb_tables(rows, out.append)
    disconnect_table(rows, out.append)
    visible_table(rows, out.append)
    spread_table(rows, out.append)
    native_tables(rows, out.append)
    return out
