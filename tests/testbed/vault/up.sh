#!/usr/bin/env bash
# Starts the real Vault server (built by install.sh) over HTTPS on a free loopback port, with file storage in
# .testbed/vault/data. The first start initialises it (one key share) and keeps the unseal key and the root token in
# .testbed/vault/ (0600); every start unseals it. Then configures what the Vault dialect's tests use (README.md):
# KV v2 at secret/, the policy and AppRole role `secretsync`, and Kubernetes auth against the test bed's
# kube-apiserver. Writes .testbed/env.d/vault.env. Idempotent: does nothing when Vault is up and configured for the
# running kube-apiserver.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/vault/install.sh"
source "$ROOT/tests/testbed/node/common.sh"
source "$TB/env.d/kube.env"

dir="$TB/vault"
envfile="$TB/env.d/vault.env"
bin="$TB/bin/vault"
mkdir -p "$dir/data"
chmod 700 "$dir"
# The certificate names the node's address too: pods reach test-bed servers at $NODE_IP:<port>, DNATed to loopback.
names_node() { openssl x509 -in "$dir/server.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$NODE_IP\b"; }
# What the configuration below depends on besides Vault itself: the kube-apiserver it reviews tokens with (a new
# one on every kube restart) and this script.
config_stamp() {
  { echo "$TESTBED_APISERVER"; cat "$TB/kube/certs/apiserver.crt" "$0"; } | sha256sum | cut -d' ' -f1
}
if alive vault && [ -f "$envfile" ] && names_node && [ "$(cat "$dir/config.stamp" 2>/dev/null)" = "$(config_stamp)" ]; then
  log "vault already running"
  exit 0
fi

if ! { alive vault && names_node && [ -f "$dir/addr" ]; }; then
  [ -f "$TB/pids/vault.pid" ] && stop_pid "$TB/pids/vault.pid"
  tls_expire "$dir"
  names_node || rm -f "$dir/server.crt" "$dir/server.key"
  tls_ca "$dir" ca "vault test CA"
  tls_server "$dir" ca server "IP:127.0.0.1,IP:$NODE_IP,DNS:localhost"
  port=$(free_port)
  cat > "$dir/vault.hcl" <<HCL
storage "file" {
  path = "$dir/data"
}
listener "tcp" {
  address       = "127.0.0.1:$port"
  tls_cert_file = "$dir/server.crt"
  tls_key_file  = "$dir/server.key"
}
api_addr      = "https://127.0.0.1:$port"
disable_mlock = true
ui            = false
log_level     = "warn"
HCL
  start_bg vault "$bin" server -config="$dir/vault.hcl"
  echo "https://127.0.0.1:$port" > "$dir/addr"
fi

export VAULT_ADDR VAULT_CACERT="$dir/ca.crt"
VAULT_ADDR=$(cat "$dir/addr")
# Reads a JSON document on stdin and prints the value at the dotted PATH (python3: lib.sh already needs it).
json() { python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if isinstance(v, str) else json.dumps(v), end="")' "$1"; }
api() { curl -sS --fail-with-body --max-time 10 --cacert "$VAULT_CACERT" "$@"; }
wait_until 60 "vault to answer" api "$VAULT_ADDR/v1/sys/seal-status"

if [ "$(api "$VAULT_ADDR/v1/sys/seal-status" | json initialized)" != true ]; then
  log "initialising Vault (one key share)"
  (umask 077; api -X PUT -d '{"secret_shares": 1, "secret_threshold": 1}' "$VAULT_ADDR/v1/sys/init" > "$dir/init.json")
  rm -f "$dir/policy.token" "$dir/approle.secret_id"
fi
# Kept until both are written: an init's answer cannot be asked for again.
if [ -f "$dir/init.json" ]; then
  (umask 077; json keys_base64.0 < "$dir/init.json" > "$dir/unseal.key"; json root_token < "$dir/init.json" > "$dir/root.token")
  rm -f "$dir/init.json"
fi
if [ "$(api "$VAULT_ADDR/v1/sys/seal-status" | json sealed)" = true ]; then
  # The key goes on stdin, not on a command line other users could read.
  python3 -c 'import json, sys; print(json.dumps({"key": open(sys.argv[1]).read().strip()}))' "$dir/unseal.key" \
    | api -X PUT -d @- "$VAULT_ADDR/v1/sys/unseal" > /dev/null
fi
# 200 once unsealed and active (file storage: no standby).
wait_until 60 "vault to be unsealed and active" api "$VAULT_ADDR/v1/sys/health"

export VAULT_TOKEN
VAULT_TOKEN=$(cat "$dir/root.token")
v() { "$bin" "$@" >> "$TB/logs/vault-config.log" 2>&1; }
vout() { "$bin" "$@" 2>> "$TB/logs/vault-config.log"; }
# For commands whose answer holds a token: nothing of it in the log.
quiet() { "$bin" "$@" > /dev/null 2>> "$TB/logs/vault-config.log"; }

"$bin" secrets list -format=json | json secret/ > /dev/null 2>&1 || v secrets enable -path=secret -version=2 kv
# A new KV v2 mount upgrades itself in the background for a moment; writes fail until it is done.
kv_ready() { v kv put -mount=secret testbed/ready ok=1; }
wait_until 60 "KV v2 at secret/" kv_ready
v kv metadata delete -mount=secret testbed/ready

# What the Vault dialect does: KV v2 values and metadata (custom_metadata, max_versions, CAS writes, deleting all
# versions), listing, and looking up and renewing its own token.
v policy write secretsync - <<'HCL'
path "secret/data/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "secret/metadata/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
path "secret/metadata" {
  capabilities = ["list"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
HCL

auths=$("$bin" auth list -format=json)
echo "$auths" | json approle/ > /dev/null 2>&1 || v auth enable approle
echo "$auths" | json kubernetes/ > /dev/null 2>&1 || v auth enable kubernetes

# Short-lived renewable tokens, so the dialect's renewal and re-login are exercised by long tests.
v write auth/approle/role/secretsync token_policies=secretsync token_ttl=20m token_max_ttl=1h \
  secret_id_ttl=0 secret_id_num_uses=0
role_id=$(vout read -field=role_id auth/approle/role/secretsync/role-id)
if ! { [ -s "$dir/approle.secret_id" ] && quiet write auth/approle/login role_id="$role_id" secret_id=@"$dir/approle.secret_id"; }; then
  (umask 077; vout write -f -field=secret_id auth/approle/role/secretsync/secret-id > "$dir/approle.secret_id")
fi

# A token with the secretsync policy alone, for the dialect's `token` credentials: periodic, so renewing it (each
# start does) keeps it valid for as long as the state is kept.
if ! { [ -s "$dir/policy.token" ] && VAULT_TOKEN=$(cat "$dir/policy.token") quiet token renew; }; then
  (umask 077; vout token create -orphan -no-default-policy -policy=secretsync -period=768h \
    -display-name=secretsync-testbed -field=token > "$dir/policy.token")
fi

# Kubernetes auth: Vault reviews each login's ServiceAccount token with the TokenReview API, as the ServiceAccount
# vault-auth/vault-reviewer bound to system:auth-delegator (the usual setup for a Vault outside the cluster), so the
# ServiceAccounts that log in need no rights of their own. A new kube-apiserver (a restart) means a new reviewer
# token; the config stamp above notices.
kubectl --kubeconfig "$TB/kubeconfig" apply -f - >> "$TB/logs/vault-config.log" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: vault-auth}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: vault-reviewer, namespace: vault-auth}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: vault-auth-delegator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects:
- {kind: ServiceAccount, name: vault-reviewer, namespace: vault-auth}
YAML
(umask 077; kubectl --kubeconfig "$TB/kubeconfig" -n vault-auth create token vault-reviewer --duration=8760h > "$dir/reviewer.jwt")
v write auth/kubernetes/config kubernetes_host="$TESTBED_APISERVER" kubernetes_ca_cert=@"$TB/kube/certs/apiserver.crt" \
  token_reviewer_jwt=@"$dir/reviewer.jwt" disable_local_ca_jwt=true
# `secretsync`: any ServiceAccount of any namespace whose token has the audience `vault`. `secretsync-named`: only
# ServiceAccounts named secretsync-vault, for tests that show another one is refused.
v write auth/kubernetes/role/secretsync bound_service_account_names='*' bound_service_account_namespaces='*' \
  audience=vault token_policies=secretsync token_ttl=20m token_max_ttl=1h
v write auth/kubernetes/role/secretsync-named bound_service_account_names=secretsync-vault \
  bound_service_account_namespaces='*' audience=vault token_policies=secretsync token_ttl=20m token_max_ttl=1h

tmp=$(mktemp "$TB/env.d/.vault.XXXXXX")
cat > "$tmp" <<ENV
export VAULT_ENDPOINT=$VAULT_ADDR
export VAULT_CA_CERT=$dir/ca.crt
export VAULT_CA_B64=$(base64 -w0 "$dir/ca.crt")
export VAULT_ROOT_TOKEN=$VAULT_TOKEN
export VAULT_BIN=$bin
export VAULT_POLICY_TOKEN=$(cat "$dir/policy.token")
export VAULT_APPROLE_ROLE_ID=$role_id
export VAULT_APPROLE_SECRET_ID=$(cat "$dir/approle.secret_id")
export VAULT_K8S_ROLE=secretsync
export VAULT_K8S_AUDIENCE=vault
export VAULT_K8S_NAMED_ROLE=secretsync-named
export VAULT_K8S_NAMED_SA=secretsync-vault
ENV
chmod 600 "$tmp"
mv "$tmp" "$envfile"
config_stamp > "$dir/config.stamp"
log "vault on $VAULT_ADDR (HTTPS), unsealed and configured"
