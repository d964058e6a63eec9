#!/bin/sh
# Installs what bastion needs to build, run and test on Debian (12+).
# Idempotent: does nothing when every package is already there.
set -eu
PKGS="build-essential meson ninja-build pkg-config python3 nodejs npm
 libuv1-dev libssl-dev libhttp-parser-dev libwslay-dev libssh-dev libjansson-dev
 libsqlite3-dev libpq-dev libsodium-dev libcurl4-openssl-dev libcmocka-dev libinih-dev libcjose-dev
 libfido2-dev libcbor-dev
 zlib1g-dev libzstd-dev
 openssh-server openssh-client iproute2 curl passwd procps"
if [ "${1:-}" = "--test" ]; then
	# fonts: the browser test checks glyphs (underscores) in both families.
	# postgresql: the store's tests run once per backend (scripts/pg.sh).
	# haproxy: the PROXY protocol test (tests/e2e/proxy.test.mjs, lib/haproxy.mjs).
	PKGS="$PKGS chromium clang clang-format openssl libpam-google-authenticator
	 fonts-dejavu-core fonts-liberation zsh postgresql haproxy"
	# The sanitizer runtime must be the one of the clang that is installed
	# (Debian names it by clang's major version); before clang is there,
	# the candidate apt would install tells.
	v=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
	[ -n "$v" ] || v=$(apt-cache policy clang 2>/dev/null | sed -n 's/.*Candidate: *\([0-9]*:\)\{0,1\}\([0-9]*\).*/\2/p' | head -n1)
	PKGS="$PKGS libclang-rt-${v:-14}-dev"
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# nodejs may come from elsewhere than Debian; a working node and npm suffice.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
missing=$(echo $missing)
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
