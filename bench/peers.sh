# Sourced by bench/run.sh after the rounds: the same workloads against the
# peers, pointed at the same sshd with the same key. Their lines carry the
# number of the last round, so report.py sets them beside that round's
# direct ssh. A peer that cannot start is recorded with the reason.
ROUND=$ROUNDS
PC="$HERE/peers/peer-client.mjs"
SSH_CFG="$TMP/ssh_config_peer"
cat > "$SSH_CFG" <<CFG
Host *
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  IdentityFile $TMP/id_ed25519
  IdentitiesOnly yes
CFG

# pc PEER LABEL TIMEOUT URL BASE WORK ARGS...
pc() {
	local peer=$1 label=$2 t=$3 out
	shift 3
	log "peer $peer: $label"
	out=$(timeout -k 5 "$t" node "$PC" "$peer" "$@" --timeout "$((t - 5))" 2>> "$TMP/peers.log")
	[ -n "$out" ] || out="{\"error\":\"no output (see peers.log)\"}"
	printf '{"label":"peer-%s","round":%s,"load":"%s","r":%s}\n' "$label" "$ROUND" \
		"$(cut -d' ' -f1 /proc/loadavg)" "$out" >> "$RES"
}

peer_runs() {
	local peer=$1 url=$2 base=$3 pid=$4 w
	for w in ${PEER_WORKS:-echo bulk connect hold}; do
		case $w in
		echo) pc "$peer" "$peer" 120 "$url" "$base" echo --samples 500 --warmup 50 ;;
		bulk) pc "$peer" "$peer" 180 "$url" "$base" bulk --cmd "$W2_CMD" ;;
		connect) pc "$peer" "$peer" 120 "$url" "$base" connect --samples 20 ;;
		hold) pc "$peer" "$peer" 300 "$url" "$base" hold --sessions "$SMALL" --pid "$pid" ;;
		esac
	done
}

wait_port() {
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	return 1
}

# ---- WeTTY (npm, Node; an `ssh` under node-pty per session) -------------------
WETTY="$HERE/peers/node_modules/wetty/build/main.js"
if [ -f "$WETTY" ]; then
	node "$WETTY" --host 127.0.0.1 --port 18460 --base /wetty --ssh-host "$VM_SSHD" --ssh-port 22 \
		--ssh-user "$USER_VM" --ssh-auth publickey --ssh-key "$TMP/id_ed25519" --ssh-config "$SSH_CFG" \
		--force-ssh > "$TMP/wetty.log" 2>&1 &
	WPID=$!
	PIDS+=($WPID)
	if wait_port 18460; then
		peer_runs wetty http://127.0.0.1:18460 /wetty "$WPID"
	else
		printf '{"label":"peer-wetty","round":%s,"r":{"error":"WeTTY did not start: %s"}}\n' "$ROUND" \
			"$(tail -1 "$TMP/wetty.log" | tr -d '"\\' | cut -c1-200)" >> "$RES"
	fi
	kill "$WPID" 2>/dev/null
else
	printf '{"label":"peer-wetty","round":%s,"r":{"error":"WeTTY not installed (npm ci in bench/peers failed)"}}\n' "$ROUND" >> "$RES"
fi

# ---- Shell In A Box (Debian; an `ssh` under its pty per session) --------------
# Its own SSH service asks for a password in the terminal; the same key is
# used instead through a command service running the same `ssh`.
if command -v shellinaboxd >/dev/null; then
	shellinaboxd --disable-ssl -p 18461 --localhost-only --no-beep \
		-s "/:root:root:/:ssh -F $SSH_CFG -tt $USER_VM@$VM_SSHD" > "$TMP/shellinabox.log" 2>&1 &
	SPID=$!
	PIDS+=($SPID)
	if wait_port 18461; then
		peer_runs sib http://127.0.0.1:18461 / "$SPID"
	else
		printf '{"label":"peer-sib","round":%s,"r":{"error":"shellinaboxd did not start"}}\n' "$ROUND" >> "$RES"
	fi
	kill "$SPID" 2>/dev/null
else
	printf '{"label":"peer-sib","round":%s,"r":{"error":"shellinabox not installed"}}\n' "$ROUND" >> "$RES"
fi
