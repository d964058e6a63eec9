#!/usr/bin/env python3
"""Turns bench/run.sh's results.jsonl into the tables of BENCHMARKS.md.

Every ratio is bastion ÷ direct ssh from the same round (same machine,
same minute), so the noise of a shared machine cancels as far as it can."""
import json
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import report_scale  # noqa: E402


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def get(rows, label, rnd):
    for r in rows:
        if r.get("label") == label and r.get("round") == rnd:
            return r.get("r") or {}
    return {}


def w1(rows, rnd, lite=False):
    """(direct, bastion) of W1 in a round: the --pair run, where a bastion
    session and a direct one took turns."""
    r = get(rows, "w1-pair-lite" if lite else "w1-pair", rnd)
    d = {k[len("direct_"):]: v for k, v in r.items() if k.startswith("direct_")}
    return d, r


def f(v, fmt="{:.2f}"):
    if v is None or v == "":
        return "—"
    try:
        return fmt.format(v)
    except (ValueError, TypeError):
        return str(v)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def main():
    rows = load(sys.argv[1])
    machine = next((r for r in rows if r.get("label") == "machine"), {})
    end = next((r for r in rows if r.get("label") == "machine-end"), {})
    rounds = sorted({r["round"] for r in rows if isinstance(r.get("round"), int) and r["round"] > 0})
    out = []
    p = out.append
    p(f"Machine: {machine.get('nproc')} cores ({machine.get('model')}), kernel {machine.get('kernel')}, "
      f"{machine.get('mem_mib')} MiB; load average at start {machine.get('load_start')}, at end "
      f"{end.get('load_end')}; {machine.get('date')}; bastion {machine.get('bastion_rev')} with "
      f"{machine.get('loops')} event loop(s); RLIMIT_NOFILE {machine.get('nofile')}.")
    if end.get("total_ticks"):
        p("")
        p(f"CPU time stolen by the hypervisor during the run (/proc/stat): "
          f"{100 * end['steal_ticks'] / end['total_ticks']:.1f} % of all CPU time "
          f"({end['steal_ticks'] / 100:.0f} s).")
    p("")
    for rnd in rounds:
        g = lambda label: get(rows, label, rnd)  # noqa: E731
        p(f"### Round {rnd}")
        p("")
        p("| workload | direct ssh (pty) | bastion | bastion ÷ direct | goal |")
        p("|---|---|---|---|---|")
        d, b = w1(rows, rnd)
        p(f"| W1 echo p50, sshd (ms) | {f(d.get('echo_p50_ms'), '{:.3f}')} | {f(b.get('echo_p50_ms'), '{:.3f}')} | "
          f"{ratio(b.get('echo_p50_ms'), d.get('echo_p50_ms'))} | ≤ 1.1× |")
        p(f"| W1 echo p99, sshd (ms) | {f(d.get('echo_p99_ms'), '{:.3f}')} | {f(b.get('echo_p99_ms'), '{:.3f}')} | "
          f"{ratio(b.get('echo_p99_ms'), d.get('echo_p99_ms'))} | ≤ 1.5× |")
        d, b = w1(rows, rnd, lite=True)
        p(f"| W1 echo p50, benchsshd (ms) | {f(d.get('echo_p50_ms'), '{:.3f}')} | {f(b.get('echo_p50_ms'), '{:.3f}')} | "
          f"{ratio(b.get('echo_p50_ms'), d.get('echo_p50_ms'))} | ≤ 1.1× |")
        p(f"| W1 echo p99, benchsshd (ms) | {f(d.get('echo_p99_ms'), '{:.3f}')} | {f(b.get('echo_p99_ms'), '{:.3f}')} | "
          f"{ratio(b.get('echo_p99_ms'), d.get('echo_p99_ms'))} | ≤ 1.5× |")
        d, b = g("w2-direct"), g("w2-bastion")
        p(f"| W2 bulk, 64 MiB (MiB/s) | {f(d.get('mib_s'), '{:.1f}')} | {f(b.get('mib_s'), '{:.1f}')} | "
          f"{ratio(b.get('mib_s'), d.get('mib_s'))} | ≥ 0.95× |")
        p(f"| W2 bastion CPU (s per GiB) | | {f(b.get('cpu_s_per_gib'), '{:.1f}')} | | reported |")
        d, b = g("w4-direct"), g("w4-bastion")
        p(f"| W4 connect → first prompt byte, median of 20 (ms) | {f(d.get('connect_p50_ms'), '{:.1f}')} | "
          f"{f(b.get('connect_p50_ms'), '{:.1f}')} | {ratio(b.get('connect_p50_ms'), d.get('connect_p50_ms'))} | ≤ 1.0× |")
        w5 = g("w5-bastion")
        p(f"| W5 slow reader 100 KiB/s for 30 s, VM printing 1 GiB: bastion RSS growth (KiB) | | "
          f"{f(w5.get('rss_growth_kib'), '{:d}')} (read {f(w5.get('read_rate_kib_s'), '{:.0f}')} KiB/s) | | ≤ 1024 |")
        single = w1(rows, rnd, lite=True)[1].get("echo_p99_ms")
        single_sshd = w1(rows, rnd)[1].get("echo_p99_ms")
        for label in sorted({r["label"] for r in rows if str(r.get("label", "")).startswith("w3-")},
                            key=lambda s: int(s.split("-")[1])):
            w3 = g(label)
            if not w3:
                continue
            base = single_sshd if label.endswith("sshd") else single
            target = "sshd" if label.endswith("sshd") else "benchsshd"
            n = w3.get("sessions") or 0
            # The goals name N = 100 and 1,000 for memory, 1,000 for latency;
            # 50 is the control (the typists alone).
            p(f"| W3 {n} sessions ({target}): bastion KiB per idle session | | "
              f"{f(w3.get('kib_per_session'), '{:.1f}')} | | {'≤ 64' if n >= 100 else 'reported'} |")
            p(f"| W3 {n} sessions ({target}): W1 p99 of 50 typing (ms) vs one session | "
              f"{f(base, '{:.3f}')} (bastion, 1 session) | {f(w3.get('echo_p99_ms'), '{:.3f}')} | "
              f"{ratio(w3.get('echo_p99_ms'), base)} | {'≤ 2×' if n >= 1000 else 'reported'} |")
        p("")
    big = [r for r in rows if str(r.get("label", "")).startswith("ceiling-")]
    if big:
        c = big[0].get("r") or {}
        lite = get(rows, "benchsshd-rss", 0)
        p("### Ceiling: sessions on one instance (benchsshd target)")
        p("")
        p("| figure | value |")
        p("|---|---|")
        p(f"| sessions opened / asked | {c.get('ready')} / {c.get('sessions')} ({c.get('failed')} failed) |")
        p(f"| time to open them all (s), 64 connects in flight | {f(c.get('open_s'), '{:.1f}')} |")
        if c.get("cpu_s_open") is not None and c.get("ready"):
            p(f"| bastion CPU while opening: CPU-s / wall s, ms per connect | "
              f"{f(c.get('cpu_s_open'), '{:.1f}')} / {f(c.get('open_s'), '{:.1f}')}, "
              f"{f(1000 * c['cpu_s_open'] / c['ready'], '{:.2f}')} |")
        p(f"| bastion RSS before → idle (MiB) | {f((c.get('rss_before_kib') or 0) / 1024, '{:.1f}')} → "
          f"{f((c.get('rss_idle_kib') or 0) / 1024, '{:.1f}')} |")
        p(f"| bastion KiB per idle session | {f(c.get('kib_per_session'), '{:.1f}')} |")
        p(f"| W1 of 50 typing among them: p50 / p99 (ms) | {f(c.get('echo_p50_ms'), '{:.3f}')} / "
          f"{f(c.get('echo_p99_ms'), '{:.3f}')} |")
        p(f"| every session answers a keystroke (waves of 200) | {c.get('check_answered')} / {c.get('sessions')}; "
          f"p50 {f(c.get('check_p50_ms'), '{:.1f}')} ms, p99 {f(c.get('check_p99_ms'), '{:.1f}')} ms |")
        p(f"| benchsshd RSS with them all (MiB) | {f((lite.get('rss_kib') or 0) / 1024, '{:.1f}')} |")
        p("")
    peers = [r for r in rows if str(r.get("label", "")).startswith("peer-")]
    if peers:
        p("### Peers (same sshd, same round as their line says)")
        p("")
        p("| peer | measurement | value | same-run direct ssh | ratio |")
        p("|---|---|---|---|---|")
        for r in peers:
            v = r.get("r") or {}
            rnd = r.get("round")
            for key, lab, dlabel, dkey in (
                ("echo_p50_ms", "W1 p50 (ms)", "w1-pair", "direct_echo_p50_ms"),
                ("echo_p99_ms", "W1 p99 (ms)", "w1-pair", "direct_echo_p99_ms"),
                ("mib_s", "W2 MiB/s", "w2-direct", "mib_s"),
                ("connect_p50_ms", "W4 median (ms)", "w4-direct", "connect_p50_ms"),
                ("kib_per_session", "KiB per idle session (peer + its ssh children, RSS)", None, None),
                ("pss_kib_per_session", "KiB per idle session (PSS)", None, None),
            ):
                if key in v:
                    dv = get(rows, dlabel, rnd).get(dkey) if dlabel else None
                    p(f"| {r['label'][5:]} | {lab} | {f(v[key], '{:.3f}')} | {f(dv, '{:.3f}')} | {ratio(v[key], dv)} |")
            if v.get("error"):
                p(f"| {r['label'][5:]} | could not run | {v['error']} | | |")
        p("")
    # bench/scale.sh's and bench/native.sh's tables (issues 15 and 16).
    out += report_scale.tables(rows)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
