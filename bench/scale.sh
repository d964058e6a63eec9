# shellcheck shell=bash
# Sourced by run.sh (its namespace, sshd, benchsshd, bc, want, PIDS):
# the scaling measurements of issue 15 item 5.
#
#   pg  PostgreSQL against SQLite: two daemons side by side, one on
#       SQLite, one on a PostgreSQL cluster this file starts with
#       scripts/pg.sh; each round measures both, in alternating order:
#       sign-in, list VMs, 4 concurrent API clients (api_bench.py api),
#       connect -> first prompt byte (bclient --work connect, benchsshd).
#   lb  connects per second through HAProxy (mode tcp, roundrobin, no
#       stickiness) in front of 1, 2 and 3 instances on that one
#       PostgreSQL, sharing a master key file; each connect is POST
#       connect + the terminal's upgrade on ONE TLS connection + the first
#       terminal byte + close (api_bench.py connects), so the balancer
#       sends both to the instance that holds the session. "0" is the
#       control: instance 1 straight, no balancer. Then how long a
#       disconnect takes across instances (DELETE /sessions/{id} on
#       instance 2 for a session instance 1 holds, until its terminal
#       closes; api_bench.py disconnect).
# Knobs: BENCH_PG_N (30 sign-ins and 200 lists... see below),
# BENCH_PG_CONNECTS (30), BENCH_LB_SECS (20), BENCH_LB_CONC (8),
# BENCH_DISC_N (60 disconnects across instances), BENCH_VIS_N (200
# changes on instance 1 watched for in instance 2's cached list).
# The cluster, the instances and HAProxy are stopped by PID (run.sh's
# cleanup, and scripts/pg.sh stop) whatever happens.

SC_ROOT=$(cd "$HERE/.." && pwd)
PGDIR="$TMP/pg"
SC_PORT0=$((PORT + 10))
SC_LBPORT=$((PORT + 20))
SC_BODY="$TMP/connect.json"
SC_LITE=/api/v1/groups/bench/vms/lite/connect

# sc_res LABEL TIMEOUT CMD...: a python measurement, appended to results.jsonl.
sc_res() {
	local label=$1 t=$2 out
	shift 2
	log "round $ROUND: $label"
	out=$(timeout -k 5 "$t" "$@" 2>> "$TMP/scale.log" | tail -1)
	[ -n "$out" ] || out=null
	printf '{"label":"%s","round":%s,"load":"%s","r":%s}\n' "$label" "$ROUND" \
		"$(cut -d' ' -f1 /proc/loadavg)" "$out" >> "$RES"
}

# sc_start NAME PORT STORE_URL: a daemon of its own data directory; an
# empty URL is SQLite. Sets SC_PID.
sc_start() {
	local name=$1 port=$2 store=$3
	# shellcheck disable=SC2097,SC2098
	BASTION_STORE="$store" BASTION_ADMIN_PASSWORD="$ADMIN_PW" BASTION_MAX_SESSIONS=20000 \
		BASTION_MAX_SESSIONS_PER_USER=20000 BASTION_LOOPS="$LOOPS" BASTION_CONNECTIONS_PER_ADDRESS=0 \
		BASTION_ALLOWED_DESTINATIONS=127.0.0.0/8,198.18.0.0/15 \
		"$BIN" serve --listen "127.0.0.1:$port" --data "$TMP/data-$name" \
		--master-key-file "$TMP/master.key" >> "$TMP/bastion-$name.log" 2>&1 &
	SC_PID=$!
	PIDS+=("$SC_PID")
	for _ in $(seq 600); do
		curl -ksf "https://127.0.0.1:$port/api/v1/healthz" >/dev/null 2>&1 && return 0
		kill -0 "$SC_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "bastion $name did not start; see $TMP/bastion-$name.log"
	return 1
}

# sc_setup PORT: a token and the bench's resources on that daemon's store;
# prints the token.
sc_setup() {
	local u="https://127.0.0.1:$1/api/v1" jar="$TMP/cookies-$1" csrf tok p
	csrf=$(curl -ksf -c "$jar" -H 'Content-Type: application/json' \
		-d "{\"username\":\"admin\",\"password\":\"$ADMIN_PW\"}" "$u/auth/login" |
		sed -n 's/.*"csrf_token":"\([^"]*\)".*/\1/p')
	tok=$(curl -ksf -b "$jar" -X POST -H 'Content-Type: application/json' -H "X-CSRF-Token: $csrf" \
		-d '{"name":"bench","expires_in":86400}' "$u/tokens" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
	[ -n "$tok" ] || return 1
	for p in "/groups/bench {}" \
		"/groups/bench/networks/vnet {\"address_prefixes\":[\"198.18.$NETX.0/24\"]}" \
		"/groups/bench/nics/sshd-nic {\"network\":\"/groups/bench/networks/vnet\",\"private_ip\":\"$VM_SSHD\"}" \
		"/groups/bench/nics/lite-nic {\"network\":\"/groups/bench/networks/vnet\",\"private_ip\":\"$VM_LITE\"}" \
		"/groups/bench/vms/sshd {\"nic\":\"/groups/bench/nics/sshd-nic\",\"ssh_port\":22}" \
		"/groups/bench/vms/lite {\"nic\":\"/groups/bench/nics/lite-nic\",\"ssh_port\":2222}" \
		"/groups/bench/bastions/b1 {\"networks\":[\"/groups/bench/networks/vnet\"]}"; do
		curl -ksf -X PUT -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
			-d "${p#* }" "$u${p%% *}" >/dev/null || { log "PUT ${p%% *} failed"; return 1; }
	done
	echo "$tok"
}

# sc_haproxy_on N PORT MAXCONN: an HAProxy in front of instances 1..N on
# PORT; sets SC_HAP (its PID).
sc_haproxy_on() {
	local n=$1 port=$2 maxconn=$3 i
	{
		printf 'global\n\tmaxconn %s\n\tnbthread 1\n' "$maxconn"
		printf 'defaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 60s\n\ttimeout server 60s\n'
		printf 'frontend fe\n\tbind 127.0.0.1:%s\n\tdefault_backend be\n' "$port"
		printf 'backend be\n\tbalance roundrobin\n'
		for i in $(seq "$n"); do
			printf '\tserver i%s 127.0.0.1:%s\n' "$i" "$((SC_PORT0 + i))"
		done
	} > "$TMP/haproxy-$n-$port.cfg"
	haproxy -db -f "$TMP/haproxy-$n-$port.cfg" >> "$TMP/haproxy.log" 2>&1 &
	SC_HAP=$!
	PIDS+=("$SC_HAP")
	for _ in $(seq 50); do
		ss -ltn | grep -q "127.0.0.1:$port " && return 0
		sleep 0.1
	done
	log "haproxy did not start; see $TMP/haproxy.log"
	return 1
}

# sc_haproxy N: the balancer in front of instances 1..N on SC_LBPORT
# (stops the previous one).
SC_HAPID=""
sc_haproxy() {
	[ -z "$SC_HAPID" ] || { kill "$SC_HAPID" 2>/dev/null; wait "$SC_HAPID" 2>/dev/null; }
	sc_haproxy_on "$1" "$SC_LBPORT" 4096 || return 1
	SC_HAPID=$SC_HAP
}

# sc_counts: connects audited as Created by instances 1, 2, 3 so far.
sc_counts() {
	local i c out=""
	for i in 1 2 3; do
		c=$(grep -c '"action":"connect".*"result":"Created"' "$TMP/bastion-pg$i.log" 2>/dev/null)
		out="$out${out:+,}${c:-0}"
	done
	echo "$out"
}

# sc_cpu PID...: CPU seconds (user + system, all threads) of each, comma-separated.
sc_cpu() {
	local p out="" hz
	hz=$(getconf CLK_TCK)
	for p in "$@"; do
		out="$out${out:+,}$(awk -v hz="$hz" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$p/stat" 2>/dev/null || echo null)"
	done
	echo "$out"
}

# sc_pgcpu: {"PID":CPU seconds} of postgres and its children (the
# backends) of this bench's cluster only (other clusters on the machine run
# as the same user). A backend born during a run is in the "after" only.
sc_pgcpu() {
	local pm p out="" hz
	pm=$(cat "$PGDIR/pid" 2>/dev/null) || { echo "{}"; return 0; }
	hz=$(getconf CLK_TCK)
	for p in $pm $(pgrep -P "$pm"); do
		out="$out${out:+,}\"$p\":$(awk -v hz="$hz" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$p/stat" 2>/dev/null || echo 0)"
	done
	echo "{$out}"
}

# sc_waits SECS: samples the cluster's sessions every 0.5 s for SECS
# seconds; prints {"samples":N,"busy":B,"lock_waits":W}: the sums of
# backends in a transaction (active or idle in one) and of those among
# them waiting for a lock (wait_event_type Lock), over all samples.
sc_waits() {
	local port i b w nb=0 nw=0 n=0
	port=$(sed -n 's|.*@127.0.0.1:\([0-9]*\)/.*|\1|p' <<< "$SC_URL")
	for i in $(seq "$(($1 * 2))"); do
		read -r b w < <(PGPASSWORD=$(cat "$PGDIR/pw") PGCONNECT_TIMEOUT=2 timeout 3 psql -h 127.0.0.1 -p "$port" \
			-U bastion -d bastion -AtF' ' -c "SELECT count(*) FILTER (WHERE state <> 'idle'),
			count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity
			WHERE datname = 'bastion' AND pid <> pg_backend_pid()" 2>/dev/null)
		if [ -n "${b:-}" ]; then
			nb=$((nb + b)); nw=$((nw + w)); n=$((n + 1))
		fi
		sleep 0.5
	done
	echo "{\"samples\":$n,\"busy\":$nb,\"lock_waits\":$nw}"
}

# sc_psql SQL: one statement on this bench's cluster, as its superuser
# (the password from the cluster's file, never on a command line).
sc_psql() {
	local port
	port=$(sed -n 's|.*@127.0.0.1:\([0-9]*\)/.*|\1|p' <<< "$SC_URL")
	PGPASSWORD=$(cat "$PGDIR/pw") PGCONNECT_TIMEOUT=2 timeout 5 psql -h 127.0.0.1 -p "$port" \
		-U bastion -d bastion -Atq -c "$1"
}

# sc_statements PORT TOKEN PID: how many SQL statements (BEGIN and COMMIT
# included) one sign-in, one list of VMs and one connect send to
# PostgreSQL, from the server's own statement log (log_statement = all for
# the time of this count). Where the PostgreSQL side's time goes.
sc_statements() {
	local port=$1 tok=$2 pid=$3 log="$PGDIR/postgres.log" m n_login n_list n_conn i
	# The statements' text only: their parameters (hashes of tokens, the
	# audit's details) are not logged at all.
	sc_psql "ALTER SYSTEM SET log_parameter_max_length = 0" &&
		sc_psql "ALTER SYSTEM SET log_statement = 'all'" && sc_psql "SELECT pg_reload_conf()" >/dev/null || return 0
	sleep 1
	# count FROM_LINE WHAT: statements logged since that line; their texts,
	# most frequent first, go to OUT/pg-statements.txt.
	count() {
		tail -n +"$(($1 + 1))" "$log" | grep -E 'LOG:  (statement|execute [^:]*):' > "$TMP/stmts"
		{
			echo "== $2 (x10)"
			sed 's/.*LOG:  \(statement\|execute [^:]*\): //' "$TMP/stmts" | cut -c1-160 | sort | uniq -c | sort -rn
		} >> "$OUT/pg-statements.txt"
		wc -l < "$TMP/stmts"
	}
	: > "$OUT/pg-statements.txt"
	m=$(wc -l < "$log")
	for i in 1 2 3 4 5 6 7 8 9 10; do
		curl -ksf -o /dev/null -H 'Content-Type: application/json' \
			-d "{\"username\":\"admin\",\"password\":\"$ADMIN_PW\"}" "https://127.0.0.1:$port/api/v1/auth/login"
	done
	sleep 0.5
	n_login=$(count "$m" sign-in)
	m=$(wc -l < "$log")
	for i in 1 2 3 4 5 6 7 8 9 10; do
		curl -ksf -o /dev/null -H "Authorization: Bearer $tok" "https://127.0.0.1:$port/api/v1/groups/bench/vms"
	done
	sleep 0.5
	n_list=$(count "$m" "GET /groups/bench/vms")
	m=$(wc -l < "$log")
	timeout 60 "$BC" --timeout 50 --bastion --port "$port" --token "$tok" --body "$SC_BODY" --path "$SC_LITE" \
		--work connect --samples 10 --pid "$pid" >/dev/null 2>> "$TMP/bclient.log"
	sleep 1
	n_conn=$(count "$m" "connect (POST, upgrade, first byte, close; and whatever ran meanwhile)")
	sc_psql "ALTER SYSTEM RESET log_statement"
	sc_psql "ALTER SYSTEM RESET log_parameter_max_length"
	sc_psql "SELECT pg_reload_conf()" >/dev/null
	# What one statement's round trip costs on this machine now: pgbench,
	# one client, `SELECT 1` in the extended protocol (as libpq's
	# PQexecParams sends it), 5 s.
	local pgb rtt port
	pgb=$(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n1)
	port=$(sed -n 's|.*@127.0.0.1:\([0-9]*\)/.*|\1|p' <<< "$SC_URL")
	echo 'SELECT 1;' > "$TMP/select1.sql"
	rtt=$(PGPASSWORD=$(cat "$PGDIR/pw") timeout 30 "${pgb:-pgbench}" -n -M extended -c 1 -T 5 -f "$TMP/select1.sql" \
		-h 127.0.0.1 -p "$port" -U bastion bastion 2>/dev/null | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
	printf '{"label":"pg-statements","round":0,"r":{"signin":%s,"list":%s,"connect":%s,"select1_ms":%s}}\n' \
		"$(awk -v n="$n_login" 'BEGIN {print n / 10}')" "$(awk -v n="$n_list" 'BEGIN {print n / 10}')" \
		"$(awk -v n="$n_conn" 'BEGIN {print n / 10}')" "${rtt:-null}" >> "$RES"
}

sc_main() {
	local url sq pg1 pg2="" pg3="" t_sq t_pg n order side before cpu0 lport hap waiter
	stop_bastion
	head -c 32 /dev/urandom > "$TMP/master.key"
	chmod 600 "$TMP/master.key"
	url=$("$SC_ROOT/scripts/pg.sh" start "$PGDIR") || { log "scripts/pg.sh start failed"; return 1; }
	SC_URL=$url
	PG_STARTED=1
	# Instance 1 on PostgreSQL; the SQLite one beside it for "pg".
	sc_start pg1 "$((SC_PORT0 + 1))" "$url" || return 1
	pg1=$SC_PID
	t_pg=$(sc_setup "$((SC_PORT0 + 1))") || { log "setup on PostgreSQL failed"; return 1; }

	if want pg; then
		sc_start sqlite "$SC_PORT0" "" || return 1
		sq=$SC_PID
		t_sq=$(sc_setup "$SC_PORT0") || { log "setup on SQLite failed"; return 1; }
		for ROUND in $(seq "$ROUNDS"); do
			order="sqlite pg"
			[ $((ROUND % 2)) -eq 0 ] && order="pg sqlite"
			for side in $order; do
				if [ "$side" = sqlite ]; then
					BENCH_ADMIN_PW="$ADMIN_PW" sc_res pg-api-sqlite 300 python3 "$HERE/api_bench.py" api \
						"$SC_PORT0" "$t_sq" "${BENCH_PG_SIGNINS:-30}" 4 "${BENCH_PG_REQS:-150}"
					bc pg-connect-sqlite 180 --bastion --port "$SC_PORT0" --token "$t_sq" --body "$SC_BODY" \
						--path "$SC_LITE" --work connect --samples "${BENCH_PG_CONNECTS:-30}" --pid "$sq"
				else
					BENCH_ADMIN_PW="$ADMIN_PW" sc_res pg-api-pg 300 python3 "$HERE/api_bench.py" api \
						"$((SC_PORT0 + 1))" "$t_pg" "${BENCH_PG_SIGNINS:-30}" 4 "${BENCH_PG_REQS:-150}"
					bc pg-connect-pg 180 --bastion --port "$((SC_PORT0 + 1))" --token "$t_pg" --body "$SC_BODY" \
						--path "$SC_LITE" --work connect --samples "${BENCH_PG_CONNECTS:-30}" --pid "$pg1"
				fi
			done
		done
		kill "$sq" 2>/dev/null
		wait "$sq" 2>/dev/null
		ROUND=0
		sc_statements "$((SC_PORT0 + 1))" "$t_pg" "$pg1"
	fi

	if want lb && command -v haproxy >/dev/null; then
		sc_start pg2 "$((SC_PORT0 + 2))" "$url" || return 1
		pg2=$SC_PID
		sc_start pg3 "$((SC_PORT0 + 3))" "$url" || return 1
		pg3=$SC_PID
		for ROUND in $(seq "$ROUNDS"); do
			order="0 1 2 3"
			[ $((ROUND % 2)) -eq 0 ] && order="3 2 1 0"
			for n in $order; do
				# 0: instance 1 straight, no balancer (the control).
				lport="$SC_LBPORT"
				hap=0
				if [ "$n" = 0 ]; then
					lport=$((SC_PORT0 + 1))
				else
					sc_haproxy "$n" || return 1
					hap=$SC_HAPID
				fi
				before=$(sc_counts)
				# CPU seconds of each part before and after: where the cores went.
				# shellcheck disable=SC2086 # lists of PIDs
				cpu0="{\"inst\":[$(sc_cpu $pg1 $pg2 $pg3)],\"haproxy\":$(sc_cpu "$hap"),\"target\":$(sc_cpu "$LITE_PID"),\"postgres\":$(sc_pgcpu)}"
				# How many of postgres's sessions wait for a lock meanwhile.
				sc_waits "$((${BENCH_LB_SECS:-20} - 2))" > "$TMP/waits" &
				waiter=$!
				sc_res "lb-$n" 120 python3 "$HERE/api_bench.py" connects "$lport" "$t_pg" \
					"$SC_LITE" "$SC_BODY" "${BENCH_LB_SECS:-20}" "${BENCH_LB_CONC:-8}"
				wait "$waiter"
				# How the balancer spread them: the connects each instance
				# audited (its stderr) during the run.
				# shellcheck disable=SC2086 # lists of PIDs
				printf '{"label":"lb-%s-parts","round":%s,"r":{"before":[%s],"after":[%s],"pg":%s,"cpu_before":%s,"cpu_after":{"inst":[%s],"haproxy":%s,"target":%s,"postgres":%s}}}\n' \
					"$n" "$ROUND" "$before" "$(sc_counts)" "$(cat "$TMP/waits")" "$cpu0" "$(sc_cpu $pg1 $pg2 $pg3)" \
					"$(sc_cpu "$hap")" "$(sc_cpu "$LITE_PID")" "$(sc_pgcpu)" >> "$RES"
			done
		done
	elif want lb; then
		log "no haproxy (apt-get install haproxy): the balancer runs are skipped"
	fi

	# How long a disconnect takes across instances: a session held by
	# instance 1, DELETE /sessions/{id} sent to instance 2, until
	# instance 1's terminal closes (BENCH_DISC_N of them, 60 by default).
	if want lb && [ -n "$pg2" ]; then
		ROUND=0
		sc_res disconnect-across 300 python3 "$HERE/api_bench.py" disconnect "$((SC_PORT0 + 1))" \
			"$((SC_PORT0 + 2))" "$t_pg" "$SC_LITE" "$SC_BODY" "${BENCH_DISC_N:-60}"
	fi

	# How late instance 2's cached list shows a change made on instance 1
	# (BENCH_VIS_N rounds, 200 by default).
	if want lb && [ -n "$pg2" ]; then
		ROUND=0
		sc_res visible-across 120 python3 "$HERE/api_bench.py" visible "$((SC_PORT0 + 1))" \
			"$((SC_PORT0 + 2))" "$t_pg" "${BENCH_VIS_N:-200}"
	fi

	# Sessions held at once, spread by the balancer over 3 instances
	# (BENCH_SPREAD sessions, 3000 by default, 0 to skip): each instance's connects and RSS
	# growth (VmHWM after against VmRSS before), 50 typists among them,
	# then every session answers a keystroke (bclient --check). A balancer
	# holds two descriptors per session, so past 4,000 sessions two of them
	# (each in front of all three instances) and two clients take half
	# each: one would not fit under the hard RLIMIT_NOFILE of 20,000.
	if want lb && [ "${BENCH_SPREAD:-3000}" -gt 0 ] && [ -n "$pg3" ]; then
		ROUND=0
		local rss0 i total=${BENCH_SPREAD:-3000} halves=1 part bcs=() port
		[ "$total" -gt 4000 ] && halves=2
		[ -z "$SC_HAPID" ] || { kill "$SC_HAPID" 2>/dev/null; wait "$SC_HAPID" 2>/dev/null; SC_HAPID=""; }
		for part in $(seq "$halves"); do
			sc_haproxy_on 3 "$((SC_LBPORT + part - 1))" "$((total / halves + 256))" || return 1
		done
		rss0=$(for i in $pg1 $pg2 $pg3; do awk '/VmRSS/ {printf "%s,", $2}' "/proc/$i/status"; done)
		# VmHWM from here on: the earlier runs' peaks forgotten.
		for i in $pg1 $pg2 $pg3; do echo 5 > "/proc/$i/clear_refs"; done
		before=$(sc_counts)
		for part in $(seq "$halves"); do
			port=$((SC_LBPORT + part - 1))
			bc "spread-$total-3-$part" 900 --bastion --port "$port" --token "$t_pg" --body "$SC_BODY" \
				--path "$SC_LITE" --work hold --sessions "$((total / halves))" --conc 32 \
				--typers "$((50 / halves))" --samples 100 --warmup 10 --gap 20 --settle 3 --check \
				--pid "$pg1" --pid2 "$LITE_PID" &
			bcs+=($!)
		done
		for i in "${bcs[@]}"; do wait "$i"; done
		printf '{"label":"spread-parts","round":0,"r":{"before":[%s],"after":[%s],"rss_before_kib":[%s],"hwm_kib":[%s]}}\n' \
			"$before" "$(sc_counts)" "${rss0%,}" \
			"$(for i in $pg1 $pg2 $pg3; do awk '/VmHWM/ {printf "%s,", $2}' "/proc/$i/status"; done | sed 's/,$//')" >> "$RES"
	fi
	ROUND=0
}

SC_FIRST=${#PIDS[@]}
sc_main || log "the scaling runs stopped early; see $TMP/bastion-*.log, $TMP/scale.log"
# Stop what this file started (by PID: HAProxy, the instances), then the
# cluster (scripts/pg.sh stops postgres by the PID it recorded).
for p in "${PIDS[@]:$SC_FIRST}"; do kill "$p" 2>/dev/null; done
for p in "${PIDS[@]:$SC_FIRST}"; do wait "$p" 2>/dev/null; done
if [ -n "${PG_STARTED:-}" ]; then
	"$SC_ROOT/scripts/pg.sh" stop "$PGDIR" >/dev/null 2>&1 || log "scripts/pg.sh stop failed"
	PG_STARTED=""
fi
