#!/bin/sh
# A throw-away PostgreSQL cluster for tests, never a system service.
#   scripts/pg.sh start DIR   initdb in DIR (which must not exist yet or be
#                             empty), start postgres on a free loopback port
#                             (its socket in DIR too), create the database
#                             "bastion" and print its URL on stdout.
#   scripts/pg.sh stop DIR    stop that postgres (by the PID it recorded)
#                             and remove DIR.
#   scripts/pg.sh halt DIR    stop that postgres, keep DIR (the store goes
#                             away: the fault tests).
#   scripts/pg.sh resume DIR  start it again on the same port and data.
# As root, postgres runs as the unprivileged system user bastionpg (created
# when missing): postgres refuses to run as root. The superuser "bastion"
# signs in with a random password (scram-sha-256), so the URL carries it:
# keep it to the test that started the cluster.
set -eu

die() { echo "pg.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: pg.sh start|stop|halt|resume DIR"
cmd=$1
dir=$2

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || bindir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
[ -x "$bindir/initdb" ] || die "PostgreSQL binaries not found (apt-get install postgresql)"

# As the unprivileged user when we are root. setpriv execs the command in
# place (runuser stays as its parent, and stops itself when its child is
# stopped: a test that freezes postgres with SIGSTOP would leave a stopped
# runuser behind for ever).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=bastionpg --regid=bastionpg --clear-groups -- "$@"
	else
		"$@"
	fi
}

case $cmd in
start)
	if [ "$(id -u)" -eq 0 ] && ! id bastionpg >/dev/null 2>&1; then
		useradd -r -M -d /nonexistent -s /usr/sbin/nologin bastionpg 2>/dev/null ||
			id bastionpg >/dev/null 2>&1 || die "cannot create user bastionpg"
	fi
	mkdir -p "$dir"
	[ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
	chmod 0700 "$dir"
	[ "$(id -u)" -eq 0 ] && chown bastionpg: "$dir"
	pw=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
	printf '%s\n' "$pw" >"$dir/pw"
	[ "$(id -u)" -eq 0 ] && chown bastionpg: "$dir/pw"
	chmod 0600 "$dir/pw"
	as_pg "$bindir/initdb" -D "$dir/data" -U bastion --auth=scram-sha-256 \
		--pwfile="$dir/pw" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		die "initdb failed (see $dir/initdb.log)"
	# A free port: the kernel picks one, postgres binds it right after; a
	# lost race is retried with another.
	tries=0
	while :; do
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		# A simple command, not a function: the background child execs it
		# at once and keeps no copy of our stdout (a caller reading it to
		# the end would wait for postgres to exit).
		if [ "$(id -u)" -eq 0 ]; then
			setpriv --reuid=bastionpg --regid=bastionpg --clear-groups -- "$bindir/postgres" -D "$dir/data" -k "$dir" -p "$port" \
				-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 \
				-c shared_buffers=16MB >"$dir/postgres.log" 2>&1 </dev/null &
		else
			"$bindir/postgres" -D "$dir/data" -k "$dir" -p "$port" \
				-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 \
				-c shared_buffers=16MB >"$dir/postgres.log" 2>&1 </dev/null &
		fi
		starter=$!
		n=0
		while [ $n -lt 100 ]; do
			"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
			kill -0 "$starter" 2>/dev/null || break
			sleep 0.1
			n=$((n + 1))
		done
		# postgres's own PID (not the shell's or runuser's), for stop.
		head -n1 "$dir/data/postmaster.pid" 2>/dev/null >"$dir/pid" || true
		"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
		[ -s "$dir/pid" ] && kill -INT "$(cat "$dir/pid")" 2>/dev/null || true
		wait "$starter" 2>/dev/null || true
		tries=$((tries + 1))
		[ $tries -lt 3 ] || die "postgres did not start (see $dir/postgres.log)"
	done
	echo "$port" >"$dir/port"
	PGPASSWORD=$pw "$bindir/createdb" -h 127.0.0.1 -p "$port" -U bastion bastion ||
		die "createdb failed"
	echo "postgresql://bastion:$pw@127.0.0.1:$port/bastion"
	;;
resume)
	[ -f "$dir/port" ] || die "no cluster in $dir"
	port=$(cat "$dir/port")
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=bastionpg --regid=bastionpg --clear-groups -- "$bindir/postgres" -D "$dir/data" -k "$dir" -p "$port" \
			-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 \
			-c shared_buffers=16MB >>"$dir/postgres.log" 2>&1 </dev/null &
	else
		"$bindir/postgres" -D "$dir/data" -k "$dir" -p "$port" \
			-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 \
			-c shared_buffers=16MB >>"$dir/postgres.log" 2>&1 </dev/null &
	fi
	starter=$!
	n=0
	while [ $n -lt 100 ]; do
		"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
		kill -0 "$starter" 2>/dev/null || break
		sleep 0.1
		n=$((n + 1))
	done
	"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" || die "postgres did not start again (see $dir/postgres.log)"
	head -n1 "$dir/data/postmaster.pid" >"$dir/pid"
	;;
stop | halt)
	[ -f "$dir/pid" ] || die "no cluster in $dir"
	pid=$(cat "$dir/pid")
	# SIGINT: "fast" shutdown (postgres ends its sessions and exits).
	kill -INT "$pid" 2>/dev/null || true
	n=0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	[ "$cmd" = halt ] || rm -rf "$dir"
	;;
*)
	die "usage: pg.sh start|stop|halt|resume DIR"
	;;
esac
