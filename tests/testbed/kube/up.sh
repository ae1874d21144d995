#!/usr/bin/env bash
# Starts etcd and the real kube-apiserver on loopback with free ports: RBAC on, a service-account issuer and
# signing key (TokenRequest works), an admin identity and a second identity with no rights. Writes
# .testbed/kubeconfig (admin), .testbed/kubeconfig-nobody and .testbed/env.d/kube.env. Idempotent.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/kube/install.sh"

if alive etcd && alive kube-apiserver && [ -f "$TB/kubeconfig" ]; then
  log "kube-apiserver already running"
  exit 0
fi
# A half-started control plane is restarted from scratch.
for n in kube-apiserver etcd; do [ -f "$TB/pids/$n.pid" ] && stop_pid "$TB/pids/$n.pid"; done

dir="$TB/kube"
rm -rf "$dir"
mkdir -p "$dir/certs" "$dir/etcd"
etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
while [ "$peer_port" = "$etcd_port" ]; do peer_port=$(free_port); done
while [ "$api_port" = "$etcd_port" ] || [ "$api_port" = "$peer_port" ]; do api_port=$(free_port); done

start_bg etcd "$TB/bin/etcd" --name testbed --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "testbed=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level error
wait_until 60 "etcd" curl -sf --max-time 5 "http://127.0.0.1:$etcd_port/health"

# One EC key serves both service-account flags: the public half verifies what the private half signs.
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/sa.key" 2>/dev/null
chmod 600 "$dir/sa.key"
# What an identity provider federating this cluster's ServiceAccounts verifies their tokens with.
openssl ec -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
admin_token=$(openssl rand -hex 24)
nobody_token=$(openssl rand -hex 24)
{
  echo "$admin_token,testbed-admin,testbed-admin-uid,\"system:masters\""
  echo "$nobody_token,testbed-nobody,testbed-nobody-uid"
} > "$dir/tokens.csv"
chmod 600 "$dir/tokens.csv"

# Requests of the controller's deploy/ ServiceAccount are audited, so tests can prove its ClusterRole grants
# exactly what it uses.
cat > "$dir/audit-policy.yaml" <<POLICY
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: ["system:serviceaccount:secretsync-system:secretsync"]
  - level: None
POLICY

# --advertise-address: without a default route the server cannot pick an address by itself.
# --endpoint-reconciler-type=none: loopback addresses are not valid endpoints of the kubernetes Service.
start_bg kube-apiserver "$TB/bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --cert-dir "$dir/certs" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$dir/sa.key" --service-account-signing-key-file "$dir/sa.key" \
  --api-audiences https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range 10.0.0.0/24 \
  --authorization-mode RBAC --token-auth-file "$dir/tokens.csv" \
  --endpoint-reconciler-type none \
  --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
  --enable-priority-and-fairness=false --profiling=false --v=0

ca="$dir/certs/apiserver.crt"
ready() { curl -sf --max-time 5 --cacert "$ca" -H "Authorization: Bearer $admin_token" "https://127.0.0.1:$api_port/readyz"; }
wait_until 120 "kube-apiserver /readyz" ready

write_kubeconfig() { # FILE USER TOKEN
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 < "$ca")
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@testbed
  context: {cluster: testbed, user: $2, namespace: default}
current-context: $2@testbed
KC
  chmod 600 "$1"
}
write_kubeconfig "$TB/kubeconfig" testbed-admin "$admin_token"
write_kubeconfig "$TB/kubeconfig-nobody" testbed-nobody "$nobody_token"

cat > "$TB/env.d/kube.env" <<ENV
export KUBECONFIG=$TB/kubeconfig
export TESTBED_KUBECONFIG_NOBODY=$TB/kubeconfig-nobody
export TESTBED_NOBODY_USER=testbed-nobody
export TESTBED_APISERVER=https://127.0.0.1:$api_port
export TESTBED_AUDIT_LOG=$dir/audit.log
export TESTBED_ETCD=http://127.0.0.1:$etcd_port
export TESTBED_SA_ISSUER=https://kubernetes.default.svc.cluster.local
export TESTBED_SA_PUBLIC_KEY=$dir/sa.pub
# Where the test bed's namespaced Stores connect (loopback, and the node's address for pods): the controller's
# --namespaced-store-hosts, read from the environment by every controller the tests and make run start.
export SECRETSYNC_NAMESPACED_STORE_HOSTS=127.0.0.1,localhost,10.244.0.1
ENV
log "kube-apiserver ready at https://127.0.0.1:$api_port"
