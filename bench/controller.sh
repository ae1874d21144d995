#!/usr/bin/env bash
# `make bench`: how fast and how big the controller is with many SecretSyncs, on the local test bed.
#
# Creates N Secrets and N SecretSyncs (Service Fabric emulator, resources that are Ready at once), then measures:
#   - time from apply to every SecretSync Ready (first sync);
#   - time from changing every source Secret to every SecretSync showing the new digest (fan-out of changes);
#   - the controller's resident memory (RSS) at rest after each phase;
#   - requests to the store and reconciles, from /metrics.
# Usage: bench/controller.sh [N] [backend rate per second]   (defaults 500 and 200)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tests/testbed/lib.sh"
cd "$ROOT"
N=${1:-500}
RATE=${2:-200}
bash tests/testbed/up.sh >/dev/null
set -a; source "$TB/env"; set +a
cargo build --release --quiet --bin secretsync
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/secretsyncs.secretsync.io crd/stores.secretsync.io --timeout=60s >/dev/null
# The controller keeps its digest key in a Secret there, as the deployment does.
kubectl create namespace secretsync-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
ns=bench-$(date +%s)
kubectl create namespace "$ns" >/dev/null

port=$(free_port)
log_file=$(mktemp)
target/release/secretsync run --kubeconfig "$KUBECONFIG" --namespace "$ns" --leader-election=false \
  --metrics-addr "127.0.0.1:$port" --backend-rate "$RATE" --backend-burst "$RATE" --log-format json \
  >"$log_file" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log_file"' EXIT
wait_until 30 "controller ready" curl -sf "http://127.0.0.1:$port/readyz"
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$pid/status"; }
# User + system CPU the controller used so far, in seconds (fields 14 and 15 of /proc/PID/stat, in clock ticks).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f s CPU", ($14 + $15) / hz}' "/proc/$pid/stat"; }
echo "controller idle: $(rss)"

manifests() { # $1: value prefix
  for i in $(seq 1 "$N"); do
    cat <<YAML
---
apiVersion: v1
kind: Secret
metadata: {name: s$i, namespace: $ns}
stringData: {k: "$1-$i"}
YAML
  done
}
syncs() {
  cat <<YAML
---
apiVersion: secretsync.io/v1alpha1
kind: Store
metadata: {name: sf, namespace: $ns}
spec: {dialect: ServiceFabricMesh, endpoint: "$SF_ENDPOINT"}
YAML
  for i in $(seq 1 "$N"); do
    cat <<YAML
---
apiVersion: secretsync.io/v1alpha1
kind: SecretSync
metadata: {name: s$i, namespace: $ns}
spec:
  source: {secretRef: {name: s$i, key: k}}
  target: {storeRef: {kind: Store, name: sf}, remoteName: "instant-$ns-$i"}
YAML
  done
}
ready_count() {
  kubectl -n "$ns" get ssync -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Ready$' || true
}
digests() { kubectl -n "$ns" get ssync -o jsonpath='{range .items[*]}{.status.syncedDigest}{"\n"}{end}' | sort; }

manifests v1 | kubectl apply --server-side -f - >/dev/null
start=$(date +%s%N)
syncs | kubectl apply --server-side -f - >/dev/null
applied=$(( ($(date +%s%N) - start) / 1000000 ))
until [ "$(ready_count)" -ge "$N" ]; do sleep 0.5; done
first=$(( ($(date +%s%N) - start) / 1000000 ))
echo "first sync of $N SecretSyncs: ${first} ms from the start of kubectl apply (which itself took ${applied} ms); controller $(rss)"
requests() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^secretsync_backend_requests_total\{/ {s+=$NF} END {print s+0}'; }
after_first=$(requests)
echo "store requests for the first sync: $after_first"

before=$(digests)
start=$(date +%s%N)
manifests v2 | kubectl apply --server-side -f - >/dev/null
applied=$(( ($(date +%s%N) - start) / 1000000 ))
until [ "$(comm -12 <(echo "$before") <(digests) | wc -l)" -eq 0 ] && [ "$(ready_count)" -ge "$N" ]; do sleep 0.5; done
change=$(( ($(date +%s%N) - start) / 1000000 ))
echo "change of all $N source Secrets pushed: ${change} ms from the start of kubectl apply (which itself took ${applied} ms); controller $(rss)"
echo "store requests for the change: $(( $(requests) - after_first ))"
sleep 5
echo "at rest after both: $(rss), $(cpu) in total"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^secretsync_(reconciles_total|reconciles_deferred_total|backend_requests_total|remote_writes_total)' \
  | awk '{k=$1; sub(/\{.*/, "", k); s[k]+=$NF} END {for (k in s) print k, s[k]}' | sort
# grep -c exits 1 when it counts nothing, which would end the script (pipefail) before the clean-up below.
{ grep -c '"level":"ERROR"' "$log_file" || true; } | sed 's/^/error log lines: /'
# Without the node (TESTBED_NODE=0) the test bed has no namespace controller, so deleting the namespace alone would
# leave every object behind for the next controller on this bed (`make run` watches all namespaces) to work through.
kubectl -n "$ns" delete secretsyncs --all --wait=false >/dev/null
kubectl -n "$ns" delete secrets --all --wait=false >/dev/null
kubectl delete namespace "$ns" --wait=false >/dev/null
