#!/usr/bin/env bash
# Starts the Key Vault stand-in (vault data plane + Entra ID token endpoint on one HTTPS port) with a tenant and
# four app registrations: an officer and a reader with client secrets, one with a client certificate, and one
# with a federated (workload identity) credential. Writes .testbed/env.d/azurekv.env. Idempotent.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/azurekv/install.sh"

dir="$TB/azurekv"
envfile="$TB/env.d/azurekv.env"
# The server certificate names the node's address too (node/common.sh): pods on the test bed's node reach the
# stand-in at $NODE_IP:<port>, which the node DNATs to 127.0.0.1:<port> (node/README.md). The stand-in still
# listens on loopback only. A certificate made before it named that address is made again.
source "$ROOT/tests/testbed/node/common.sh"
names_node() { openssl x509 -in "$dir/server.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$NODE_IP\b"; }
if alive azurekv && [ -f "$envfile" ] && names_node; then
  log "azurekv stand-in already running"
  exit 0
fi
[ -f "$TB/pids/azurekv.pid" ] && stop_pid "$TB/pids/azurekv.pid"
mkdir -p "$dir"

# Certificates are kept between runs and made afresh when any is within a day of expiring.
tls_expire "$dir" "$dir"/*.pem "$dir/registry.json"
if [ -f "$dir/server.crt" ] && ! names_node; then
  rm -f "$dir/server.crt" "$dir/server.key"
fi
tls_ca "$dir" ca "azurekv test CA"
tls_server "$dir" ca server "IP:127.0.0.1,IP:$NODE_IP,DNS:localhost"
# The app's client certificate (Entra ID takes RSA only), and the key of the OIDC issuer that signs federated tokens.
if [ ! -f "$dir/client.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=secretsync-test-app" \
    -keyout "$dir/client.key" -out "$dir/client.crt" 2>/dev/null
  cat "$dir/client.crt" "$dir/client.key" > "$dir/client.pem"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/oidc.key" 2>/dev/null
  openssl pkey -in "$dir/oidc.key" -pubout -out "$dir/oidc.pub" 2>/dev/null
fi
chmod 600 "$dir"/*.key "$dir/client.pem"

if [ ! -f "$dir/registry.json" ]; then
  uuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }
  tenant=$(uuid); officer=$(uuid); reader=$(uuid); certapp=$(uuid); wiapp=$(uuid)
  officer_secret=$(openssl rand -base64 30 | tr -d '\n'); reader_secret=$(openssl rand -base64 30 | tr -d '\n')
  cat > "$dir/registry.json" <<JSON
{"tenant": "$tenant",
 "clients": {
  "$officer": {"secret": "$officer_secret", "role": "officer"},
  "$reader": {"secret": "$reader_secret", "role": "reader"},
  "$certapp": {"certificate": "$dir/client.crt", "role": "officer"},
  "$wiapp": {"federated": {"issuer": "https://oidc.testbed.invalid", "subject": "system:serviceaccount:secretsync-system:secretsync", "public_key": "$dir/oidc.pub"}, "role": "officer"}
 },
 "env": {"tenant": "$tenant", "officer": "$officer", "officer_secret": "$officer_secret", "reader": "$reader",
         "reader_secret": "$reader_secret", "certapp": "$certapp", "wiapp": "$wiapp"}}
JSON
  chmod 600 "$dir/registry.json"
fi

port=$(free_port)
start_bg azurekv "$TB/venv-azurekv/bin/python" "$ROOT/tests/testbed/azurekv/kv-standin.py" --port "$port" \
  --cert "$dir/server.crt" --key "$dir/server.key" --registry "$dir/registry.json" \
  --delete-delay-ms 300 --purge-delay-ms 800
wait_until 30 "azurekv stand-in" curl -sf --max-time 5 --cacert "$dir/ca.crt" "https://127.0.0.1:$port/_standin/stats"

reg() { python3 -c "import json,sys; print(json.load(open('$dir/registry.json'))['env']['$1'])"; }
cat > "$envfile" <<ENV
export AZUREKV_ENDPOINT=https://127.0.0.1:$port
export AZUREKV_AUTHORITY=https://127.0.0.1:$port
export AZUREKV_CONTROL=https://127.0.0.1:$port/_standin
export AZUREKV_CA_CERT=$dir/ca.crt
export AZUREKV_CA_B64=$(base64 -w0 "$dir/ca.crt")
export AZUREKV_TENANT_ID=$(reg tenant)
export AZUREKV_CLIENT_ID=$(reg officer)
export AZUREKV_CLIENT_SECRET=$(reg officer_secret)
export AZUREKV_READER_CLIENT_ID=$(reg reader)
export AZUREKV_READER_CLIENT_SECRET=$(reg reader_secret)
export AZUREKV_CERT_CLIENT_ID=$(reg certapp)
export AZUREKV_CLIENT_CERT=$dir/client.pem
export AZUREKV_WI_CLIENT_ID=$(reg wiapp)
export AZUREKV_OIDC_KEY=$dir/oidc.key
export AZUREKV_OIDC_ISSUER=https://oidc.testbed.invalid
export AZUREKV_OIDC_SUBJECT=system:serviceaccount:secretsync-system:secretsync
# The operator's trust in the stand-in's Entra ID for namespaced Stores (--identity-provider-ca-file): a Store's own
# caBundle never vouches for its authority host.
export SECRETSYNC_IDENTITY_PROVIDER_CA_FILE=$dir/ca.crt
ENV
log "azurekv stand-in on 127.0.0.1:$port"
