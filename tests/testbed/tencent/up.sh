#!/usr/bin/env bash
# Starts the Tencent SSM emulator with generated key pairs: a main one, one for the rate-limit test (the
# emulator counts its limit per key pair and action, so that test's counts are its own), one for the Python
# SDK tests, temporary credentials with a token, and a read-only pair. It serves plain HTTP and, with a server
# certificate from a CA made here, HTTPS. Writes .testbed/env.d/tencent.env. Idempotent.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/tencent/install.sh"

dir="$TB/tencent"
envfile="$TB/env.d/tencent.env"
# The server certificate names the node's address too (node/common.sh): pods on the test bed's node reach the
# HTTPS port at $NODE_IP:<port>, which the node DNATs to 127.0.0.1:<port> (node/README.md); the emulator still
# listens on loopback only. The dialect takes plain HTTP only on loopback, so pods need HTTPS and this CA.
source "$ROOT/tests/testbed/node/common.sh"
names_node() { openssl x509 -in "$dir/server.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$NODE_IP\b"; }
if alive ssm-emulator && [ -f "$envfile" ] && grep -q SSM_TLS_ENDPOINT "$envfile" && names_node; then
  log "ssm-emulator already running"
  exit 0
fi
[ -f "$TB/pids/ssm-emulator.pid" ] && stop_pid "$TB/pids/ssm-emulator.pid"
mkdir -p "$dir"
chmod 700 "$dir"
tls_expire "$dir"
names_node || rm -f "$dir/server.crt" "$dir/server.key"
tls_ca "$dir" ca "ssm-emulator test CA"
tls_server "$dir" ca server "IP:127.0.0.1,IP:$NODE_IP,DNS:localhost"

# keypair NAME: a SecretId (AKID + 32 characters) and a SecretKey, kept across restarts.
keypair() {
  local f="$dir/$1"
  if [ ! -f "$f" ]; then
    (umask 077; printf 'AKID%s %s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" > "$f")
  fi
  cat "$f"
}
read -r main_id main_key < <(keypair main)
read -r rate_id rate_key < <(keypair rate)
read -r sdk_id sdk_key < <(keypair sdk)
read -r temp_id temp_key < <(keypair temp)
read -r ro_id ro_key < <(keypair readonly)
[ -f "$dir/token" ] || (umask 077; openssl rand -hex 24 > "$dir/token")
token=$(cat "$dir/token")
rate=50

port=$(free_port); tls_port=$(free_port)
while [ "$tls_port" = "$port" ]; do tls_port=$(free_port); done
start_bg ssm-emulator "$ROOT/target/debug/ssm-emulator" --port "$port" --rate-limit "$rate" \
  --tls-port "$tls_port" --tls-cert "$dir/server.crt" --tls-key "$dir/server.key" \
  --account "$main_id:$main_key" --account "$rate_id:$rate_key" --account "$sdk_id:$sdk_key" \
  --temp-account "$temp_id:$temp_key:$token" --readonly-account "$ro_id:$ro_key"
wait_until 30 "ssm-emulator" curl -sf --max-time 5 "http://127.0.0.1:$port/_emulator/health"
wait_until 30 "ssm-emulator (HTTPS)" curl -sf --max-time 5 --cacert "$dir/ca.crt" "https://127.0.0.1:$tls_port/_emulator/health"

cat > "$envfile" <<ENV
export SSM_ENDPOINT=http://127.0.0.1:$port
export SSM_TLS_ENDPOINT=https://127.0.0.1:$tls_port
export SSM_CA_CERT=$dir/ca.crt
export SSM_REGION=ap-guangzhou
export SSM_RATE_LIMIT=$rate
export SSM_SECRET_ID=$main_id
export SSM_SECRET_KEY=$main_key
export SSM_RATE_SECRET_ID=$rate_id
export SSM_RATE_SECRET_KEY=$rate_key
export SSM_SDK_SECRET_ID=$sdk_id
export SSM_SDK_SECRET_KEY=$sdk_key
export SSM_TEMP_SECRET_ID=$temp_id
export SSM_TEMP_SECRET_KEY=$temp_key
export SSM_TEMP_TOKEN=$token
export SSM_READONLY_SECRET_ID=$ro_id
export SSM_READONLY_SECRET_KEY=$ro_key
ENV
log "ssm-emulator on 127.0.0.1:$port (HTTPS $tls_port)"
