#!/bin/sh
# Builds the Debian package of bastion from a built binary, with dpkg-deb on
# a staged tree (no debhelper: the package is one binary, a unit, docs, a
# conffile and maintainer scripts). Used by `make deb` and by
# tests/e2e/package.test.mjs.
#
#   packaging/deb/build.sh BINARY OUTDIR   -> prints the path of the .deb
#
# What goes where (docs/operations.md, "The Debian package"):
#   /usr/bin/bastion                      the binary
#   /lib/systemd/system/bastion.service   contrib/bastion.service, /usr/bin paths
#   /etc/bastion/bastion.conf             a conffile, every key commented out
#   /usr/share/doc/bastion/               README, docs/*.md, copyright
#   postinst: the `bastion` system user, /var/lib/bastion (0700, bastion's),
#             /etc/bastion root:bastion 0750; the service is not started
#   postrm purge: keeps /var/lib/bastion (the store, the master key) and says so
set -eu
bin=${1:?usage: build.sh BINARY OUTDIR}
out=${2:?usage: build.sh BINARY OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

version=$("$bin" --version | sed -n 's/^bastion \([0-9][0-9A-Za-z.+~-]*\)$/\1/p')
[ -n "$version" ] || { echo "build.sh: cannot read the version of $bin" >&2; exit 1; }
arch=$(dpkg --print-architecture)
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/bastion-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

root="$stage/bastion_${version}_${arch}"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
	"$root/usr/share/doc/bastion" "$root/etc/bastion"
install -m 0755 "$bin" "$root/usr/bin/bastion"
# Debian ships binaries stripped; the build directory keeps the symbols.
command -v strip >/dev/null 2>&1 && strip --strip-unneeded "$root/usr/bin/bastion"
# The unit from contrib/, with the package's paths.
sed -e 's|/usr/local/bin/bastion|/usr/bin/bastion|g' \
	-e '/^# systemd unit for bastion. Install/,/^#   systemctl daemon-reload/c\
# systemd unit for bastion, from the Debian package (docs/operations.md):\
# edit /etc/bastion/bastion.conf, then systemctl enable --now bastion' \
	"$repo/contrib/bastion.service" >"$root/lib/systemd/system/bastion.service"
chmod 0644 "$root/lib/systemd/system/bastion.service"
install -m 0644 "$here/bastion.conf" "$root/etc/bastion/bastion.conf"
install -m 0644 "$repo/README.md" "$root/usr/share/doc/bastion/README.md"
for f in "$repo"/docs/*.md; do
	install -m 0644 "$f" "$root/usr/share/doc/bastion/$(basename "$f")"
done
install -m 0644 "$here/copyright" "$root/usr/share/doc/bastion/copyright"
for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
echo /etc/bastion/bastion.conf >"$root/DEBIAN/conffiles"

# Depends: the package of each library the binary links directly, at least
# the version it was built against.
depends=""
for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
	path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
	[ -n "$path" ] || continue
	pkg=$(dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "$(readlink -f "$path")" 2>/dev/null ||
		dpkg-query -S "/usr$path" 2>/dev/null || true)
	pkg=${pkg%%:*}
	[ -n "$pkg" ] || { echo "build.sh: no package owns $path ($lib)" >&2; exit 1; }
	case " $depends " in *" $pkg "*) continue ;; esac
	depends="$depends $pkg"
done
dep_list=""
for pkg in $depends; do
	v=$(dpkg-query -W -f='${Version}' "$pkg")
	dep_list="${dep_list:+$dep_list, }$pkg (>= $v)"
done
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: bastion
Version: $version
Architecture: $arch
Maintainer: bastion maintainers <bastion@localhost>
Installed-Size: $size
Depends: $dep_list, adduser | passwd
Section: admin
Priority: optional
Homepage: https://github.com/bastion/bastion
Description: SSH to private VMs from the browser
 A self-hosted bastion host: an HTTPS portal and REST API through which
 signed-in users open SSH terminals to VMs on private networks, with
 role-based access, a vault for SSH keys and an audit trail.
CONTROL

deb="$out/bastion_${version}_${arch}.deb"
# --root-owner-group: every file root's in the package, whoever builds (no
# fakeroot needed); dpkg-deb checks the maintainer scripts' modes.
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
