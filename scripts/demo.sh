#!/bin/sh
# `make run`: starts bastion on the embedded store with a demo VM — a private
# sshd on a loopback address, for the current user, with a generated key —
# and prints everything needed to sign in and connect.
set -eu
BIN=${1:-build/bastion}
DATA=${2:-.data}
LISTEN=${BASTION_LISTEN:-127.0.0.1:8443}
VM_IP=${BASTION_DEMO_IP:-127.0.0.2}
VM_PORT=${BASTION_DEMO_PORT:-2222}
DEMO="$DATA/demo"
ME=$(id -un)

umask 077
mkdir -p "$DEMO"
DEMO=$(cd "$DEMO" && pwd)
[ -s "$DEMO/admin-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=\n' > "$DEMO/admin-password"
PASSWORD=$(cat "$DEMO/admin-password")
[ -f "$DEMO/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C bastion-demo -f "$DEMO/id_ed25519"
[ -f "$DEMO/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$DEMO/ssh_host_ed25519_key"
cp "$DEMO/id_ed25519.pub" "$DEMO/authorized_keys"
cat > "$DEMO/sshd_config" <<CFG
ListenAddress $VM_IP:$VM_PORT
HostKey $DEMO/ssh_host_ed25519_key
PidFile $DEMO/sshd.pid
AuthorizedKeysFile $DEMO/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
CFG
[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd

SSHD_PID=""
BASTION_PID=""
cleanup() {
	[ -n "$BASTION_PID" ] && kill "$BASTION_PID" 2>/dev/null || true
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

/usr/sbin/sshd -D -e -f "$DEMO/sshd_config" 2>"$DEMO/sshd.log" &
SSHD_PID=$!

# The demo VM is a loopback address, which the default destination policy
# never dials: list loopback explicitly (docs/security.md, Destination policy).
BASTION_ADMIN_PASSWORD="$PASSWORD" "$BIN" serve --listen "$LISTEN" --data "$DATA" \
	--allowed-destinations "${BASTION_ALLOWED_DESTINATIONS:-127.0.0.0/8,198.18.0.0/15}" &
BASTION_PID=$!

URL="https://$LISTEN"
i=0
until curl -ksf "$URL/api/v1/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$BASTION_PID" 2>/dev/null; then
		echo "demo: bastion did not start" >&2
		exit 1
	fi
	sleep 0.1
done

# Register the demo VM through the API, exactly as an operator would.
JAR="$DEMO/cookies"
CSRF=$(curl -ksf -c "$JAR" -H 'Content-Type: application/json' \
	-d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$URL/api/v1/auth/login" |
	sed -n 's/.*"csrf_token":"\([^"]*\)".*/\1/p')
api() {
	curl -ksf -b "$JAR" -X PUT -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" \
		-H "Origin: $URL" -d "$2" "$URL/api/v1$1" >/dev/null
}
api /groups/demo '{}'
api /groups/demo/networks/loopback '{"address_prefixes":["127.0.0.0/8"]}'
api /groups/demo/nics/demo-vm-nic "{\"network\":\"/groups/demo/networks/loopback\",\"private_ip\":\"$VM_IP\"}"
api /groups/demo/vms/demo-vm "{\"nic\":\"/groups/demo/nics/demo-vm-nic\",\"ssh_port\":$VM_PORT}"
api /groups/demo/bastions/demo-bastion '{"networks":["/groups/demo/networks/loopback"]}'
# The demo key goes into a vault (docs/vault.md), readable by admin through
# an access policy; the body is sent from a 0600 file, never on a command line.
api /groups/demo/vaults/demo-vault '{}'
api /groups/demo/vaults/demo-vault/access-policies/user:admin '{"secret_permissions":["list","get","set","delete"]}'
if ! curl -ksf -b "$JAR" -o /dev/null "$URL/api/v1/groups/demo/vaults/demo-vault/secrets/demo-key"; then
	BODY="$DEMO/secret-body.json"
	{ printf '{"content_type":"application/x-pem-file","value":"'
	  awk '{ printf "%s\\n", $0 }' "$DEMO/id_ed25519"
	  printf '"}'; } > "$BODY"
	curl -ksf -b "$JAR" -X PUT -H 'Content-Type: application/json' -H "X-CSRF-Token: $CSRF" \
		-H "Origin: $URL" --data-binary "@$BODY" \
		"$URL/api/v1/groups/demo/vaults/demo-vault/secrets/demo-key" >/dev/null
	rm -f "$BODY"
fi
rm -f "$JAR"

cat <<MSG

  bastion is running at $URL   (self-signed certificate: accept it once)

  sign in:   admin / $PASSWORD
  connect:   VM "demo-vm" → username "$ME" → "SSH Private Key from Vault"
             (chosen already: vault "demo-vault", secret "demo-key")
             or "SSH Private Key from Local File" with $DEMO/id_ed25519.
             The demo VM ($VM_IP:$VM_PORT) takes keys only, no passwords.

  other ports: BASTION_LISTEN=127.0.0.1:9443 BASTION_DEMO_PORT=2200 make run

  Ctrl-C stops bastion and the demo VM.
MSG
wait "$BASTION_PID"
