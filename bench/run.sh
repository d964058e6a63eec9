#!/bin/bash
# `make bench`: every table of BENCHMARKS.md, in one run.
#
#   bench/run.sh BASTION_BIN OUT_DIR
#
# Builds a private network (a namespace "vm" with a veth pair on
# 198.18.${BENCH_NET:-200}.0/24), starts there a stock sshd (.2:22) and the
# lightweight libssh target benchsshd (.3:2222), starts bastion on
# 127.0.0.1, registers both VMs through the REST API, and drives the same
# workloads through `ssh -tt` under a pty (the floor) and through bastion.
# Results: OUT_DIR/results.jsonl (one JSON object per measurement),
# OUT_DIR/report.md (the tables), OUT_DIR/profile-w2*.txt (perf),
# OUT_DIR/syscalls-w1.txt and syscalls-w2.txt (strace -c),
# OUT_DIR/massif-idle*.txt (heap of idle sessions, valgrind massif),
# OUT_DIR/pg-statements.txt (bench/scale.sh: the SQL of one sign-in, list
# and connect) and OUT_DIR/native/ (bench/native.sh's own files).
#
# Knobs (environment): BENCH_ROUNDS (2), BENCH_BIG (10000: sessions of the
# ceiling run, 0 to skip), BENCH_MID (1000), BENCH_SMALL (100),
# BENCH_PROFILE (1), BENCH_PEERS (1), BENCH_NET (200), BENCH_PORT (18443),
# BENCH_MASSIF_N (200), BENCH_LOOPS (bastion's event loops; nproc),
# BENCH_ONLY (workloads of each round, e.g. "w1 w2": for A/B runs; also
# "pg" and "lb" (bench/scale.sh: PostgreSQL against SQLite, instances
# behind HAProxy; their knobs are there) and "native" (bench/native.sh);
# the ceiling, profiles and peers have their own knobs), BENCH_RECORDING
# (the bastion's recording property; unset: off), BENCH_W2_SOURCE (/dev/zero;
# /dev/urandom for output that does not compress), BENCH_W2_BYTES (48000000:
# what W2's VM encodes, its output is 4/3 of it; 805306368 for 1 GiB),
# BENCH_PROFILE=perf (only the perf profile of W2, of BENCH_W2_SOURCE; no
# strace, no massif), BENCH_W2_PERF_STAT=1 (`perf stat` on bastion during
# W2 into OUT_DIR/perf-stat-w2-ROUND.txt: its task-clock to the
# nanosecond, not in ticks, and its cycles and instructions where the
# machine counts them), BENCH_W2_PERF_RECORD=1 (`perf record -g` on
# bastion during W2 into OUT_DIR/perf-w2-ROUND.data, the whole transfer:
# for comparing two runs sample for sample).
# Every step is bounded by `timeout`; the namespace, the veth pair and every
# PID started here are removed on exit, whatever happens.
set -u
BIN=$(readlink -f "${1:-build/bastion}")
OUT=${2:-build/bench/results}
HERE=$(cd "$(dirname "$0")" && pwd)
BB=$(readlink -f "$(dirname "$OUT")")
[ -x "$BB/bclient" ] || BB=$(readlink -f build/bench)
BC="$BB/bclient"
ROUNDS=${BENCH_ROUNDS:-2}
BIG=${BENCH_BIG:-10000}
MID=${BENCH_MID:-1000}
SMALL=${BENCH_SMALL:-100}
NETX=${BENCH_NET:-200}
NS="bstbench-$$"
HIF="bbh$$"
NIF="bbn$$"
VM_SSHD="198.18.$NETX.2"
VM_LITE="198.18.$NETX.3"
USER_VM=bastionbench
PORT=${BENCH_PORT:-18443}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (network namespaces, a test user, sshd)" >&2
	exit 1
fi
[ -x "$BIN" ] || { echo "bench: no bastion binary at $BIN" >&2; exit 1; }
[ -x "$BC" ] || { echo "bench: run bench/setup.sh first" >&2; exit 1; }

mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
TMP="$OUT/tmp"
rm -rf "$TMP"
mkdir -p "$TMP"
chmod 755 "$TMP"
RES="$OUT/results.jsonl"
: > "$RES"
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.3
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	ip link del "$HIF" 2>/dev/null
	ip netns pids "$NS" 2>/dev/null | while read -r p; do kill -9 "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	# scale.sh's PostgreSQL cluster, when a failure left it running.
	[ -z "${PG_STARTED:-}" ] || "$HERE/../scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# Room for 10,000 sessions: two sockets each in bastion, one in the client
# and one in the target.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# bastion holds two descriptors per session (browser socket, SSH socket),
# in LOOPS descriptor tables of its own (one per event loop; its default is
# one per CPU); the client and the target one each. Where the hard limit is
# lower than that needs, the ceiling run asks for what fits and says so in
# its label.
LOOPS=${BENCH_LOOPS:-$(nproc)}
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ]; then
	FIT=$((LOOPS * (NOFILE - 64) / 2))
	[ "$FIT" -lt $((NOFILE - 64)) ] || FIT=$((NOFILE - 64))
	if [ "$BIG" -gt "$FIT" ]; then
		log "RLIMIT_NOFILE is $NOFILE here, $LOOPS loop(s): the ceiling run opens $FIT sessions, not $BIG"
		BIG=$FIT
	fi
fi

# ---- the machine -----------------------------------------------------------
# CPU time the hypervisor gave to others while this VM wanted it (the
# "steal" column of /proc/stat), against all CPU time: how noisy the run was.
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
total_ticks() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
STEAL0=$(steal_ticks)
TOTAL0=$(total_ticks)
meta() {
	printf '{"label":"machine","nofile":"%s","loops":%s,"nproc":%s,"model":"%s","kernel":"%s","mem_mib":%s,"load_start":"%s","date":"%s","bastion_rev":"%s"}\n' \
		"$(ulimit -n)" "$LOOPS" "$(nproc)" "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)" "$(uname -r)" \
		"$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
		"$(date -u +%FT%TZ)" "$(git -C "$HERE/.." describe --always --dirty 2>/dev/null || echo unknown)"
}
meta >> "$RES"

# ---- the network and the "VMs" ---------------------------------------------
ip netns add "$NS" || exit 1
ip link add "$HIF" type veth peer name "$NIF" || exit 1
ip link set "$NIF" netns "$NS"
ip addr add "198.18.$NETX.1/24" dev "$HIF"
ip link set "$HIF" up
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$VM_SSHD/24" dev "$NIF"
ip -n "$NS" addr add "$VM_LITE/24" dev "$NIF"
ip -n "$NS" link set "$NIF" up
mkdir -p /run/sshd

id -u "$USER_VM" >/dev/null 2>&1 || useradd -m -s /bin/bash "$USER_VM"
# Not locked (sshd without PAM refuses locked accounts), no password.
usermod -p '*' "$USER_VM"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$TMP/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$TMP/host_ed25519"
cp "$TMP/id_ed25519.pub" "$TMP/authorized_keys"
chmod 644 "$TMP/authorized_keys"
cat > "$TMP/sshd_config" <<CFG
ListenAddress $VM_SSHD:22
HostKey $TMP/host_ed25519
PidFile $TMP/sshd.pid
AuthorizedKeysFile $TMP/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $USER_VM
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 300:30:600
MaxSessions 10
CFG
ip netns exec "$NS" /usr/sbin/sshd -D -e -f "$TMP/sshd_config" 2> "$TMP/sshd.log" &
PIDS+=($!)
ip netns exec "$NS" "$BB/benchsshd" -k "$TMP/host_ed25519" -a "$VM_LITE" -p 2222 -t 3000 2> "$TMP/benchsshd.log" &
PIDS+=($!)
LITE_PID=$!
for _ in $(seq 50); do
	ip netns exec "$NS" ss -ltn 2>/dev/null | grep -q ":2222" && ip netns exec "$NS" ss -ltn | grep -q "$VM_SSHD:22" && break
	sleep 0.1
done

SSH=(ssh -F /dev/null -tt -i "$TMP/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR -o BatchMode=yes "$USER_VM@$VM_SSHD")
SSH_LITE=(ssh -F /dev/null -tt -i "$TMP/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR -o BatchMode=yes -p 2222 "$USER_VM@$VM_LITE")

# ---- bastion -----------------------------------------------------------------
ADMIN_PW="Bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
BPID=""
start_bastion() {
	# Every session comes from 127.0.0.1: no cap on connections per address.
	# shellcheck disable=SC2086 # BASTION_WRAP is a command line (valgrind ...)
	BASTION_ADMIN_PASSWORD="$ADMIN_PW" BASTION_MAX_SESSIONS=20000 BASTION_MAX_SESSIONS_PER_USER=20000 \
		BASTION_LOOPS="$LOOPS" BASTION_CONNECTIONS_PER_ADDRESS=0 BASTION_ALLOWED_DESTINATIONS=127.0.0.0/8,198.18.0.0/15 \
		${BASTION_WRAP:-} "$BIN" serve --listen "127.0.0.1:$PORT" --data "$TMP/data" >> "$TMP/bastion.log" 2>&1 &
	BPID=$!
	PIDS+=($BPID)
	for _ in $(seq 1200); do
		curl -ksf "https://127.0.0.1:$PORT/api/v1/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$BPID" 2>/dev/null || break
		sleep 0.1
	done
	log "bastion did not start; see $TMP/bastion.log"
	exit 1
}
stop_bastion() {
	[ -n "$BPID" ] || return 0
	kill "$BPID" 2>/dev/null
	for _ in $(seq 300); do kill -0 "$BPID" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$BPID" 2>/dev/null
	wait "$BPID" 2>/dev/null
	BPID=""
}
restart_bastion() { stop_bastion; start_bastion; sleep 0.5; }

start_bastion
URL="https://127.0.0.1:$PORT/api/v1"
JAR="$TMP/cookies"
CSRF=$(curl -ksf -c "$JAR" -H 'Content-Type: application/json' \
	-d "{\"username\":\"admin\",\"password\":\"$ADMIN_PW\"}" "$URL/auth/login" |
	sed -n 's/.*"csrf_token":"\([^"]*\)".*/\1/p')
TOKEN=$(curl -ksf -b "$JAR" -X POST -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" \
	-d '{"name":"bench","expires_in":86400}' "$URL/tokens" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { log "could not get an API token"; exit 1; }
put() {
	curl -ksf -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		-d "$2" "$URL$1" >/dev/null || { log "PUT $1 failed"; exit 1; }
}
put /groups/bench '{}'
put /groups/bench/networks/vnet "{\"address_prefixes\":[\"198.18.$NETX.0/24\"]}"
put /groups/bench/nics/sshd-nic "{\"network\":\"/groups/bench/networks/vnet\",\"private_ip\":\"$VM_SSHD\"}"
put /groups/bench/nics/lite-nic "{\"network\":\"/groups/bench/networks/vnet\",\"private_ip\":\"$VM_LITE\"}"
put /groups/bench/vms/sshd '{"nic":"/groups/bench/nics/sshd-nic","ssh_port":22}'
put /groups/bench/vms/lite '{"nic":"/groups/bench/nics/lite-nic","ssh_port":2222}'
# BENCH_RECORDING=output (or input_output): the bastion records its sessions
# (issue 17); give BASTION_RECORDING_MAX_BYTES too, or W2 passes the cap.
put /groups/bench/bastions/b1 "{\"networks\":[\"/groups/bench/networks/vnet\"]${BENCH_RECORDING:+,\"recording\":\"$BENCH_RECORDING\"}}"
python3 - "$TMP" "$USER_VM" <<'PY'
import json, sys
tmp, user = sys.argv[1], sys.argv[2]
key = open(f"{tmp}/id_ed25519").read()
body = {"bastion": "/groups/bench/bastions/b1", "username": user,
        "auth": {"type": "ssh-key", "private_key": key}, "cols": 120, "rows": 40}
with open(f"{tmp}/connect.json", "w") as f:
    json.dump(body, f)
PY

BASE=(--port "$PORT" --token "$TOKEN" --body "$TMP/connect.json")
P_SSHD=(--path /api/v1/groups/bench/vms/sshd/connect)
P_LITE=(--path /api/v1/groups/bench/vms/lite/connect)
ROUND=0

# bc LABEL TIMEOUT_S ARGS...: one measurement, appended to results.jsonl.
bc() {
	local label=$1 t=$2 out
	shift 2
	log "round $ROUND: $label"
	out=$(timeout -k 5 "$t" "$BC" --timeout "$((t - 5))" "$@" 2>> "$TMP/bclient.log")
	[ -n "$out" ] || out=null
	printf '{"label":"%s","round":%s,"load":"%s","r":%s}\n' "$label" "$ROUND" \
		"$(cut -d' ' -f1 /proc/loadavg)" "$out" >> "$RES"
}

# BENCH_W2_SOURCE=/dev/urandom: W2 prints text that hardly compresses
# (base64 of random bytes) instead of the same line over and over.
W2_SRC=${BENCH_W2_SOURCE:-/dev/zero}
case "$W2_SRC" in /dev/zero | /dev/urandom) ;; *) echo "bench: BENCH_W2_SOURCE: /dev/zero or /dev/urandom" >&2; exit 1 ;; esac
W2_BYTES=${BENCH_W2_BYTES:-48000000}
case "$W2_BYTES" in '' | *[!0-9]*) echo "bench: BENCH_W2_BYTES: a number of bytes" >&2; exit 1 ;; esac
W2_CMD="head -c $W2_BYTES $W2_SRC | base64 -w 100; echo BENCH_\"\"DONE\\r"
# W2's time limit grows with its size (at 4 MB/s, far below any run seen).
W2_T=$((180 + W2_BYTES / 4000000))
W5_CMD='yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -c 1073741824; echo BENCH_""DONE\r'

# ---- the rounds ----------------------------------------------------------------
# want TAG: whether BENCH_ONLY (a list such as "w1 w2"; empty: all) has it.
want() { [ -z "${BENCH_ONLY:-}" ] || case " $BENCH_ONLY " in *" $1 "*) true ;; *) false ;; esac; }
for ROUND in $(seq "$ROUNDS"); do
	restart_bastion
	# W1 as a pair: a bastion session and a direct one open side by side,
	# keystrokes alternating between them, so both see the same machine.
	want w1 && bc w1-pair 120 --bastion "${BASE[@]}" "${P_SSHD[@]}" --work echo --pair --samples 500 --warmup 50 \
		--pid "$BPID" -- "${SSH[@]}"
	want w1 && bc w1-pair-lite 120 --bastion "${BASE[@]}" "${P_LITE[@]}" --work echo --pair --samples 500 --warmup 50 \
		--pid "$BPID" -- "${SSH_LITE[@]}"
	want w2 && bc w2-direct "$W2_T" --pty --work bulk --cmd "$W2_CMD" -- "${SSH[@]}"
	if want w2 && [ "${BENCH_W2_PERF_STAT:-0}" = 1 ]; then
		timeout -s INT "$W2_T" perf stat -x, -e task-clock,context-switches,page-faults,cycles,instructions -p "$BPID" \
			-o "$OUT/perf-stat-w2-$ROUND.txt" 2>/dev/null &
		PSTAT=$!
	fi
	if want w2 && [ "${BENCH_W2_PERF_RECORD:-0}" = 1 ]; then
		timeout -s INT "$W2_T" perf record -F 999 -g -p "$BPID" -o "$OUT/perf-w2-$ROUND.data" >/dev/null 2>&1 &
		PSTAT=$!
	fi
	want w2 && bc w2-bastion "$W2_T" --bastion "${BASE[@]}" "${P_SSHD[@]}" --work bulk --cmd "$W2_CMD" --pid "$BPID"
	if [ -n "${PSTAT:-}" ]; then
		kill -INT "$PSTAT" 2>/dev/null
		wait "$PSTAT" 2>/dev/null
		PSTAT=""
	fi
	want w4 && bc w4-direct 120 --pty --work connect --samples 20 -- "${SSH[@]}"
	want w4 && bc w4-bastion 120 --bastion "${BASE[@]}" "${P_SSHD[@]}" --work connect --samples 20 --pid "$BPID"
	want w5 && bc w5-bastion 90 --bastion "${BASE[@]}" "${P_SSHD[@]}" --work slow --cmd "$W5_CMD" --rate 102400 --secs 30 --pid "$BPID"
	want w3 || continue
	restart_bastion
	bc "w3-$SMALL-sshd" 300 --bastion "${BASE[@]}" "${P_SSHD[@]}" --work hold --sessions "$SMALL" --conc 8 \
		--typers 50 --samples 100 --warmup 10 --gap 20 --settle 3 --pid "$BPID"
	# The control for W3: the same 50 typists with no idle session beside them.
	restart_bastion
	bc "w3-50-lite" 120 --bastion "${BASE[@]}" "${P_LITE[@]}" --work hold --sessions 50 --conc 32 \
		--typers 50 --samples 100 --warmup 10 --gap 20 --settle 1 --pid "$BPID" --pid2 "$LITE_PID"
	restart_bastion
	bc "w3-$MID-lite" 300 --bastion "${BASE[@]}" "${P_LITE[@]}" --work hold --sessions "$MID" --conc 32 \
		--typers 50 --samples 100 --warmup 10 --gap 20 --settle 3 --pid "$BPID" --pid2 "$LITE_PID"
done

# ---- scaling (issue 15): PostgreSQL against SQLite, instances behind HAProxy ----
if want pg || want lb; then
	. "$HERE/scale.sh"
fi

# ---- the native client (issue 16): scp, CPU per GiB, stream opens, idle tunnels --
if want native; then
	stop_bastion
	log "native client: bench/native.sh"
	BENCH_NATIVE_NET=${BENCH_NATIVE_NET:-$((NETX + 1))} BENCH_NATIVE_ROUNDS=${BENCH_NATIVE_ROUNDS:-$ROUNDS} \
		timeout -k 10 1200 "$HERE/native.sh" "$BIN" "$OUT/native" 2>> "$TMP/native.log" >/dev/null ||
		log "bench/native.sh failed; see $TMP/native.log and $OUT/native/tmp"
	# Its lines, in results.jsonl's shape: {"label":"native-…","round":…,"r":{…}}.
	python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(json.dumps({"label": "native-" + d.pop("label"), "round": d.pop("round", 0), "r": d}))
' "$OUT/native/native.jsonl" >> "$RES" 2>/dev/null
fi

ROUND=0
if [ "$BIG" -gt 0 ]; then
	restart_bastion
	bc "ceiling-$BIG-lite" 600 --bastion "${BASE[@]}" "${P_LITE[@]}" --work hold --sessions "$BIG" --conc 64 \
		--typers 50 --samples 100 --warmup 10 --gap 20 --settle 5 --check --pid "$BPID" --pid2 "$LITE_PID"
	echo "{\"label\":\"benchsshd-rss\",\"round\":0,\"r\":{\"rss_kib\":$(awk '/VmRSS/ {print $2}' /proc/$LITE_PID/status 2>/dev/null || echo null)}}" >> "$RES"
fi

# ---- where the CPU goes for W2 (perf) ----------------------------------------
if [ "${BENCH_PROFILE:-1}" != 0 ] && perf stat -e task-clock true >/dev/null 2>&1; then
	restart_bastion
	log "profile: perf record on bastion during W2"
	( sleep 1.5; timeout 60 perf record -F 1999 -g -p "$BPID" -o "$TMP/perf.data" -- sleep 8 >/dev/null 2>&1 ) &
	PERF=$!
	ROUND=0 bc w2-bastion-profiled 180 --bastion "${BASE[@]}" "${P_SSHD[@]}" --work bulk \
		--cmd "head -c 144000000 $W2_SRC | base64 -w 100; echo BENCH_\"\"DONE\\r" --pid "$BPID"
	wait "$PERF"
	perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 0.7 2>/dev/null |
		grep -v '^$' | grep -v '^#' | grep '%' | head -60 > "$OUT/profile-w2.txt"
	perf report -i "$TMP/perf.data" --stdio --no-children --sort dso -g none --percent-limit 0.5 2>/dev/null |
		grep '%' | grep -v '^#' | head -20 > "$OUT/profile-w2-dso.txt"
fi

# ---- system calls per MiB of W2 (strace -c; slows the run, counts only) --------
if [ "${BENCH_PROFILE:-1}" = 1 ] && command -v strace >/dev/null; then
	restart_bastion
	log "profile: strace -c on bastion during W2"
	timeout 120 strace -c -f -o "$OUT/syscalls-w2.txt" -p "$BPID" &
	STRACE=$!
	sleep 1
	ROUND=0 bc w2-bastion-straced 180 --bastion "${BASE[@]}" "${P_SSHD[@]}" --work bulk --cmd "$W2_CMD" --pid "$BPID"
	kill -INT "$STRACE" 2>/dev/null
	wait "$STRACE" 2>/dev/null
	log "profile: strace -c on bastion during W1 (550 keystrokes)"
	timeout 120 strace -c -f -o "$OUT/syscalls-w1.txt" -p "$BPID" &
	STRACE=$!
	sleep 1
	ROUND=0 bc w1-bastion-straced 120 --bastion "${BASE[@]}" "${P_SSHD[@]}" --work echo --samples 500 --warmup 50 --pid "$BPID"
	kill -INT "$STRACE" 2>/dev/null
	wait "$STRACE" 2>/dev/null
fi

if [ "${BENCH_PROFILE:-1}" = 1 ] && command -v valgrind >/dev/null; then
	. "$HERE/massif.sh"
fi

if [ "${BENCH_PEERS:-1}" = 1 ] && [ -f "$HERE/peers.sh" ]; then
	stop_bastion
	. "$HERE/peers.sh"
fi

printf '{"label":"machine-end","load_end":"%s","steal_ticks":%s,"total_ticks":%s}\n' "$(cut -d' ' -f1-3 /proc/loadavg)" \
	"$(($(steal_ticks) - STEAL0))" "$(($(total_ticks) - TOTAL0))" >> "$RES"
python3 "$HERE/report.py" "$RES" > "$OUT/report.md"
cat "$OUT/report.md"
