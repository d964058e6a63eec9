#!/bin/sh
# `make test`: unit tests (plain build and ASan+UBSan build), the fuzz
# targets for a few seconds each, then the end-to-end suite against the real daemon, real sshd and headless Chromium.
# The last line is the summary CI reads: "N passed, N failed".
set -u
BUILD=${1:-build}
ASAN=${2:-build-asan}
FUZZ=${3:-build-fuzz}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOG=$(mktemp -d)
START=$(date +%s)
# phase NAME: the phase's heading, with the seconds since the start, so that
# CI's output says where the time went.
phase() { echo "== $* [$(($(date +%s) - START)) s]"; }
passed=0
failed=0
# What failed, by name: repeated just above the summary, since CI shows
# only the tail of the output.
fail_note() { echo "$*" >>"$LOG/failures"; }

count_meson() { # $1 = log file
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$1" | tail -n1)
	fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$1" | tail -n1)
	to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$1" | tail -n1)
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${fail:-0} + ${to:-0}))
	[ -n "$ok" ] || { failed=$((failed + 1)); fail_note "$1: no meson summary"; }
	grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT) ' "$1" >>"$LOG/failures"
}

phase "format (.clang-format)"
if (cd "$ROOT" && git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'tests/unit/*.h' \
	'tests/fuzz/*.c' 'tests/layers/*.c' 'bench/*.c' | xargs clang-format --dry-run -Werror) >"$LOG/format.log" 2>&1; then
	echo "format: ok"
	passed=$((passed + 1))
else
	head -40 "$LOG/format.log"
	echo "format: FAILED (run clang-format -i on the files above)"
	failed=$((failed + 1))
	fail_note "format"
fi

phase "source check (scripts/checksrc.py)"
if (cd "$ROOT" && python3 scripts/checksrc.py) >"$LOG/checksrc.log" 2>&1; then
	tail -n1 "$LOG/checksrc.log"
	passed=$((passed + 1))
else
	head -40 "$LOG/checksrc.log"
	echo "checksrc: FAILED"
	failed=$((failed + 1))
	fail_note "checksrc"
fi

phase "ASan+UBSan build ($ASAN)"
asan_ok=1
if ! ninja -C "$ASAN" >"$LOG/asan-build.log" 2>&1; then
	cat "$LOG/asan-build.log"
	echo "ASan build failed"
	asan_ok=0
	failed=$((failed + 1))
	fail_note "ASan build"
fi

E2E="$ROOT/tests/e2e"
if [ ! -d "$E2E/node_modules" ] || [ "$E2E/package-lock.json" -nt "$E2E/node_modules/.package-lock.json" ]; then
	(cd "$E2E" && npm ci --no-audit --no-fund >"$LOG/npm.log" 2>&1) || { cat "$LOG/npm.log"; failed=$((failed + 1)); fail_note "npm ci"; }
fi
# e2e_run TAG DIR CONCURRENCY FILE...: node --test on the files given, with
# concurrency CONCURRENCY, against DIR/bastion; its spec output goes to
# $LOG/TAG.out, its TAP to $LOG/TAG.tap and its exit status to $LOG/TAG.rc,
# so that two runs may go side by side. e2e_count TAG prints the output and
# adds up what passed and failed.
e2e_run() {
	tag=$1 dir=$2 conc=$3
	shift 3
	# Bounded: a test stops after 5 minutes, a whole run after E2E_LIMIT
	# seconds (timeout ends node and what it started: their process group),
	# so that the summary is always printed. (Not --test-force-exit: node
	# 20 then exits before its reporters have written the summary.)
	# ASan keeps freed memory in quarantine (256 MiB by default) to catch
	# a use after free: a smaller one fills during a test's warm-up, so that
	# the tests that bound memory growth measure the daemon, not the
	# quarantine filling.
	ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=32 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	BASTION_BIN="$ROOT/$dir/bastion" timeout -k 30 "${E2E_LIMIT:-1500}" \
		node --test --test-concurrency="$conc" --test-timeout=300000 \
		--test-reporter=spec --test-reporter-destination="$LOG/$tag.out" \
		--test-reporter=tap --test-reporter-destination="$LOG/$tag.tap" \
		"$@" >>"$LOG/$tag.out" 2>&1
	echo $? >"$LOG/$tag.rc"
}
e2e_count() { # TAG
	tag=$1 tap="$LOG/$1.tap"
	cat "$LOG/$tag.out"
	rc=$(cat "$LOG/$tag.rc" 2>/dev/null || echo 1)
	e2e_pass=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$tap" | tail -n1)
	e2e_fail=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$tap" | tail -n1)
	e2e_cancel=$(sed -n 's/^# cancelled \([0-9]*\)/\1/p' "$tap" | tail -n1)
	passed=$((passed + ${e2e_pass:-0}))
	# A test cancelled because its setup failed did not pass either.
	failed=$((failed + ${e2e_fail:-0} + ${e2e_cancel:-0}))
	[ -n "$e2e_pass" ] || { failed=$((failed + 1)); fail_note "e2e $tag: no summary"; }
	grep -E '^ *not ok ' "$tap" | sed "s|^ *|e2e $tag: |" >>"$LOG/failures"
	if [ "$rc" -ne 0 ] && [ "${e2e_fail:-0}" -eq 0 ] && [ "${e2e_cancel:-0}" -eq 0 ]; then
		echo "node --test exited $rc without a failing test"
		failed=$((failed + 1))
		fail_note "e2e $tag: node --test exited $rc"
	fi
}

# The files that drive Chromium run one at a time, apart from the others:
# Chromium aborts what it is loading (ERR_NETWORK_CHANGED) when an address
# appears or goes on the host, which every other file's test network does.
browser_files=$(cd "$E2E" && grep -l 'lib/browser.mjs' ./*.test.mjs | xargs grep -L '^// e2e: runs alone')
# The files that must have the machine to themselves say so on a line of
# their own, and run last, one at a time: package.test.mjs installs
# /usr/bin/bastion and a `bastion` account (to which any daemon started as
# root would switch), portal2.test.mjs times Ctrl+C under a slowed renderer.
alone_files=$(cd "$E2E" && grep -l '^// e2e: runs alone' ./*.test.mjs)
other_files=$(cd "$E2E" && grep -L -e 'lib/browser.mjs' -e '^// e2e: runs alone' ./*.test.mjs)
# The suite runs against the sanitized daemon: it aborts on any ASan or
# UBSan report and fails the SIGTERM tests on a leak, and what the files
# test is the same code in both builds (the plain build's unit tests run
# too). The Chromium files run first, one at a time, beside the unit tests
# and the fuzz targets (which add no network address that would disturb
# Chromium); the other files after them, two at a time (they wait on
# networks and daemons more than they use the CPU; each picks its own
# ports and test network); the files that run alone last.
if [ "$asan_ok" -eq 1 ]; then
	phase "end-to-end tests in Chromium ($ASAN/bastion), in the background"
	# shellcheck disable=SC2086 # file lists
	(cd "$E2E" && e2e_run browser "$ASAN" 1 $browser_files) &
	browser_pid=$!
fi

# One PostgreSQL cluster for the store suites' *_pg runs of both builds
# (each suite makes databases of its own on it; tests/unit/meson.build says
# which suites still start their own): a cluster start is seconds, and
# there are two dozen such runs.
pg_shared_dir="$LOG/pg"
chmod 0755 "$LOG"
if BASTION_TEST_PG_URL=$(sh "$ROOT/scripts/pg.sh" start "$pg_shared_dir" 2>"$LOG/pg.log"); then
	export BASTION_TEST_PG_URL
	# Stopped below; also when this script is interrupted.
	trap 'sh "$ROOT/scripts/pg.sh" stop "$pg_shared_dir" >/dev/null 2>&1' EXIT
	trap 'exit 1' INT TERM
else
	cat "$LOG/pg.log"
	echo "(no shared PostgreSQL cluster: each *_pg suite starts its own)"
	unset BASTION_TEST_PG_URL
fi

phase "unit tests ($BUILD)"
meson test -C "$BUILD" --print-errorlogs 2>&1 | tee "$LOG/unit.log"
count_meson "$LOG/unit.log"

phase "unit tests under ASan+UBSan ($ASAN)"
if [ "$asan_ok" -eq 1 ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C "$ASAN" --print-errorlogs 2>&1 | tee "$LOG/asan.log"
	count_meson "$LOG/asan.log"
fi

if [ -n "${BASTION_TEST_PG_URL:-}" ]; then
	sh "$ROOT/scripts/pg.sh" stop "$pg_shared_dir" >/dev/null 2>&1
	trap - EXIT INT TERM
	unset BASTION_TEST_PG_URL
fi

phase "fuzz targets, a few seconds each ($FUZZ)"
if ninja -C "$FUZZ" >"$LOG/fuzz-build.log" 2>&1; then
	"$ROOT/scripts/fuzz.sh" "$FUZZ" 5 | tee "$LOG/fuzz.log"
	passed=$((passed + $(grep -c '^fuzz: .* ok' "$LOG/fuzz.log")))
	failed=$((failed + $(grep -c '^fuzz: .* FAILED' "$LOG/fuzz.log")))
	grep '^fuzz: .* FAILED' "$LOG/fuzz.log" >>"$LOG/failures"
else
	cat "$LOG/fuzz-build.log"
	echo "fuzz build failed"
	failed=$((failed + 1))
	fail_note "fuzz build"
fi

if [ "$asan_ok" -eq 1 ]; then
	wait "$browser_pid"
	phase "end-to-end tests in Chromium ($ASAN/bastion): what they printed"
	e2e_count browser
	phase "end-to-end tests ($ASAN/bastion)"
	# shellcheck disable=SC2086 # file lists
	(cd "$E2E" && e2e_run e2e "$ASAN" 2 $other_files)
	e2e_count e2e
	phase "end-to-end tests that run alone ($ASAN/bastion)"
	# shellcheck disable=SC2086
	(cd "$E2E" && e2e_run alone "$ASAN" 1 $alone_files)
	e2e_count alone
fi
phase "done"

if [ -s "$LOG/failures" ]; then
	echo "== what failed"
	cat "$LOG/failures"
fi
rm -rf "$LOG"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
