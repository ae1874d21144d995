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

# mkca NAME / mkleaf CA NAME EXTENSIONS: a self-signed CA, and a leaf it signs. P-256 keys, with the v3
# extensions webpki insists on.
mkca() {
  local ca=$1
  [ -f "$dir/$ca.crt" ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/$ca.key" -out "$dir/$ca.crt" 2>/dev/null
}
mkleaf() {
  local ca=$1 leaf=$2 ext=$3
  [ -f "$dir/$leaf.crt" ] && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$leaf" \
    -keyout "$dir/$leaf.key" -out "$dir/$leaf.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$dir/$leaf.ext"
  openssl x509 -req -in "$dir/$leaf.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" -CAcreateserial \
    -days 30 -extfile "$dir/$leaf.ext" -out "$dir/$leaf.crt" 2>/dev/null
  rm -f "$dir/$leaf.csr" "$dir/$leaf.ext"
}
# Certificates are kept between runs, and made afresh when any of them is within a day of expiring.
for c in "$dir"/*.crt; do
  [ -f "$c" ] || continue
  openssl x509 -checkend 86400 -noout -in "$c" >/dev/null 2>&1 || { rm -f "$dir"/*.crt "$dir"/*.key "$dir"/*.srl; break; }
done
mkca ca
mkca other-ca
mkleaf ca server "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
mkleaf ca client "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
# Signed by a CA the emulator does not trust: the mutual-TLS listener must refuse it.
mkleaf other-ca stranger "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
chmod 600 "$dir"/*.key
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
wait_until 30 "sf-emulator" curl -sf "http://127.0.0.1:$port/Resources/Secrets?api-version=6.4-preview"

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
