#!/bin/sh
# Installs what `make bench` needs on a fresh Debian machine (as root or
# through sudo), then builds the bench binaries into $1 (default build/bench).
# The peers (WeTTY from npm, Shell In A Box from Debian) are installed here
# too; run.sh says so in its output when one of them cannot run. HAProxy
# and PostgreSQL are for bench/scale.sh (issue 15).
set -eu
OUT=${1:-build/bench}
HERE=$(cd "$(dirname "$0")" && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

PKGS="build-essential pkg-config libssh-dev libssl-dev libjansson-dev libwslay-dev
      openssh-server openssh-client iproute2 python3 curl procps util-linux
      linux-perf valgrind strace shellinabox haproxy postgresql"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "bench: installing$missing"
	$SUDO apt-get update -qq
	# shellinabox's package tries to start its service: we never use that one.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
# Node and npm may come from elsewhere than Debian (NodeSource): only when
# there is no npm at all is Debian's installed.
command -v npm >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null

# WeTTY, pinned by bench/peers/package-lock.json (never node_modules in git).
if [ ! -d "$HERE/peers/node_modules/wetty" ] ||
	[ "$HERE/peers/package-lock.json" -nt "$HERE/peers/node_modules/.package-lock.json" ]; then
	(cd "$HERE/peers" && npm ci --no-audit --no-fund >/dev/null 2>&1) ||
		echo "bench: npm ci in bench/peers failed: WeTTY will be skipped" >&2
fi

mkdir -p "$OUT"
CFLAGS="-O2 -g -Wall -Wextra"
cc $CFLAGS -o "$OUT/benchsshd" "$HERE/target/benchsshd.c" $(pkg-config --cflags --libs libssh)
cc $CFLAGS -o "$OUT/bclient" "$HERE/client/bclient.c" -ljansson -lssl -lcrypto -lwslay -lutil -lm
echo "bench: built $OUT/benchsshd $OUT/bclient"
