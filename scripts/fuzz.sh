#!/bin/sh
# Runs every libFuzzer target for SECONDS each (default 5) from its seed
# corpus. `make test` uses a few seconds, `make fuzz` minutes. Prints one
# line per target and exits non-zero if any found a crash or leak; the
# reproducer is kept in $OUT (default build-fuzz/findings).
set -u
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/$BUILD/findings}
mkdir -p "$OUT"
status=0
for bin in "$ROOT/$BUILD"/tests/fuzz/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	name=$(basename "$bin")
	work=$(mktemp -d)
	# Full stacks on malloc, so that the suppression can see its frame.
	if ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS="suppressions=$ROOT/tests/fuzz/lsan.supp" \
		"$bin" -max_total_time="$SECONDS_EACH" -max_len=16384 -timeout=10 -rss_limit_mb=1024 \
		-artifact_prefix="$OUT/$name-" "$work" "$ROOT/tests/fuzz/corpus/$name" \
		>"$work.log" 2>&1; then
		echo "fuzz: $name ok ($(grep -o 'DONE.*exec/s: [0-9]*' "$work.log" | grep -o 'exec/s: [0-9]*'))"
	else
		echo "fuzz: $name FAILED"
		grep -A20 -E "ERROR|SUMMARY" "$work.log" | head -40
		status=1
	fi
	rm -rf "$work" "$work.log"
done
exit $status
