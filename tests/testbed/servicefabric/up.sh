#!/usr/bin/env bash
# Starts the Service Fabric emulator with three listeners sharing one store: plain HTTP (unsecured development
# cluster), HTTPS with a bearer token (Entra-secured cluster) and HTTPS with client certificates (certificate-
# secured cluster). Writes .testbed/env.d/servicefabric.env. Idempotent.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/servicefabric/install.sh"

dir="$TB/servicefabric"
envfile="$TB/env.d/servicefabric.env"
if alive sf-emulator && [ -f "$envfile" ]; then
  log "sf-emulator already running"
  exit 0
fi
[ -f "$TB/pids/sf-emulator.pid" ] && stop_pid "$TB/pids/sf-emulator.pid"
mkdir -p "$dir"

# Certificates are kept between runs, and made afresh when any of them is within a day of expiring.
tls_expire "$dir"
tls_ca "$dir" ca ca
tls_ca "$dir" other-ca other-ca
tls_server "$dir" ca server "IP:127.0.0.1,DNS:localhost"
tls_client "$dir" ca client
# Signed by a CA the emulator does not trust: the mutual-TLS listener must refuse it.
tls_client "$dir" other-ca stranger
[ -f "$dir/token" ] || { openssl rand -hex 24 > "$dir/token"; chmod 600 "$dir/token"; }

port=$(free_port); token_port=$(free_port); mtls_port=$(free_port)
while [ "$token_port" = "$port" ]; do token_port=$(free_port); done
while [ "$mtls_port" = "$port" ] || [ "$mtls_port" = "$token_port" ]; do mtls_port=$(free_port); done
delay_ms=1000

start_bg sf-emulator "$ROOT/target/debug/sf-emulator" --port "$port" \
  --token-port "$token_port" --token-file "$dir/token" \
  --mtls-port "$mtls_port" --client-ca "$dir/ca.crt" \
  --tls-cert "$dir/server.crt" --tls-key "$dir/server.key" \
  --creating-delay-ms "$delay_ms"
wait_until 30 "sf-emulator" curl -sf --max-time 5 "http://127.0.0.1:$port/Resources/Secrets?api-version=6.4-preview"

cat > "$envfile" <<ENV
export SF_ENDPOINT=http://127.0.0.1:$port
export SF_TOKEN_ENDPOINT=https://127.0.0.1:$token_port
export SF_MTLS_ENDPOINT=https://127.0.0.1:$mtls_port
export SF_CA_CERT=$dir/ca.crt
export SF_CLIENT_CERT=$dir/client.crt
export SF_CLIENT_KEY=$dir/client.key
export SF_STRANGER_CERT=$dir/stranger.crt
export SF_STRANGER_KEY=$dir/stranger.key
export SF_TOKEN_FILE=$dir/token
export SF_CREATING_DELAY_MS=$delay_ms
ENV
log "sf-emulator on 127.0.0.1:$port (token $token_port, mTLS $mtls_port)"
