# Sourced by bench/run.sh: where the memory of an idle session goes.
# bastion runs under valgrind's massif while BENCH_MASSIF_N (200) idle
# sessions to benchsshd are open; massif's peak snapshot, printed by
# ms_print, attributes the heap to allocation sites. valgrind makes bastion
# ~30× slower, so this is a separate, untimed run.
MN=${BENCH_MASSIF_N:-200}
stop_bastion
log "profile: massif with $MN idle sessions"
BASTION_WRAP="valgrind --tool=massif --massif-out-file=$TMP/massif.out --threshold=0.5 --detailed-freq=1000000 --max-snapshots=200"
start_bastion
ROUND=0 bc "massif-$MN-lite" 400 --bastion "${BASE[@]}" "${P_LITE[@]}" --work hold --sessions "$MN" --conc 8 \
	--typers 0 --settle 5 --pid "$BPID"
stop_bastion
BASTION_WRAP=""
if [ -s "$TMP/massif.out" ]; then
	ms_print "$TMP/massif.out" > "$OUT/massif-idle.txt" 2>/dev/null
	# The peak snapshot's tree: the allocation sites that hold the heap.
	python3 - "$OUT/massif-idle.txt" "$MN" > "$OUT/massif-idle-summary.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read().split("\n")
n = int(sys.argv[2])
# ms_print prints detailed snapshots as a tree; take the one with the largest total.
best, cur, tot_best, tot = [], None, 0, 0
for line in text:
    m = re.match(r"^\s*\d+\s+[\d,]+\s+([\d,]+)\s+[\d,]+\s+[\d,]+\s+[\d,]+$", line)
    if m:
        tot = int(m.group(1).replace(",", ""))
        cur = []
        continue
    if cur is not None and line.startswith(("->", "| ", "  ")) is False and re.match(r"^\d+\.\d+% \(", line):
        cur.append(line)
        if tot >= tot_best:
            tot_best, best = tot, cur
    elif cur is not None and re.match(r"^[ |]*->\d+\.\d+% \(", line):
        cur.append(line)
        if tot >= tot_best:
            tot_best, best = tot, cur
print(f"peak heap {tot_best/1024:.0f} KiB with {n} idle sessions ({tot_best/1024/n:.1f} KiB per session incl. the daemon's own)")
for line in best:
    depth = len(line) - len(line.lstrip(" |"))
    if depth <= 6:
        print(line[:200])
PY
fi
start_bastion
