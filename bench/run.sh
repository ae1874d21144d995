#!/usr/bin/env bash
# `make bench`: brings the test bed up (without the node), builds the release binary, gives the controller the
# ServiceAccount and RBAC of deploy/ (so the API server's audit log attributes its requests), and runs
# bench/bench.py once per dialect. Results: bench/results/<timestamp>-<dialect>-<N>.json and a table per run.
#
# Variables (also as make variables): N (500), KEYS (1: keys per source Secret, all pushed by each SecretSync as
# the properties of one remote JSON secret through spec.data), DIALECT (ServiceFabricMesh; a space-separated list,
# or "all" for every dialect the test bed has), REFRESH (30s), RATE (200 store requests per second), CONCURRENCY (8),
# CHANGES (200 individually timed changes), PHASES (first,rest,latency,burst,restart), BENCH_DOWN=1 takes the
# test bed down afterwards, TESTBED_BACKENDS (default: the dialects' backends), BENCH_MIN_FREE_GIB (3: the run
# refuses to start, or stops and cleans up, below that much free disk), HEAP_PROFILE=1 (a dhat heap profile of
# each controller run, written when it is stopped: summarise with bench/heap.py), BENCH_BINARY (a controller binary
# built elsewhere, for example from a clean checkout of one commit while the working tree is mid-edit: no build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tests/testbed/lib.sh"
cd "$ROOT"
N=${N:-500}
DIALECT=${DIALECT:-ServiceFabricMesh}
REFRESH=${REFRESH:-30s}
RATE=${RATE:-200}
CONCURRENCY=${CONCURRENCY:-8}
CHANGES=${CHANGES:-200}
KEYS=${KEYS:-1}
PHASES=${PHASES:-first,rest,latency,burst,restart}

# etcd, the audit log and the logs grow with N (about 0.5 GB at N=10000): refuse to start on a nearly full disk.
min_free_gib=${BENCH_MIN_FREE_GIB:-3}
free_kib=$(df -Pk "$ROOT" | awk 'NR==2 {print $4}')
if [ "$free_kib" -lt $((min_free_gib * 1024 * 1024)) ]; then
  log "only $((free_kib / 1024)) MiB free on the disk (BENCH_MIN_FREE_GIB=$min_free_gib): not starting"
  exit 2
fi
backend_of() {
  case "$1" in
    ServiceFabricMesh) echo servicefabric ;; AzureKeyVault) echo azurekv ;; Barbican) echo barbican ;;
    TencentSSM) echo tencent ;; DockerSwarm) echo docker ;; AWSSecretsManager) echo aws ;; Vault) echo vault ;;
    *) log "unknown dialect $1"; exit 2 ;;
  esac
}
if [ "$DIALECT" = all ]; then
  dialects="ServiceFabricMesh AzureKeyVault Barbican TencentSSM DockerSwarm AWSSecretsManager Vault"
else
  dialects=$DIALECT
fi
if [ -z "${TESTBED_BACKENDS:-}" ]; then
  TESTBED_BACKENDS=$(for d in $dialects; do backend_of "$d"; done | sort -u | tr '\n' ' ')
fi
# The node is never started here: only one can run on a machine, and the benchmark does not need it.
TESTBED_NODE=0 TESTBED_BACKENDS="$TESTBED_BACKENDS" bash tests/testbed/up.sh >/dev/null
set -a; source "$TB/env"; set +a
export TB
if [ -n "${BENCH_BINARY:-}" ]; then
  [ -x "$BENCH_BINARY" ] || { log "BENCH_BINARY=$BENCH_BINARY is not an executable"; exit 2; }
  export BENCH_BINARY
elif [ "${HEAP_PROFILE:-0}" = 1 ]; then
  # dhat records every allocation (slow: this run's timings are not the controller's); line tables name the frames.
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --quiet --bin secretsync --features heap-profile
else
  cargo build --release --quiet --bin secretsync
fi

kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/secretsyncs.secretsync.io crd/stores.secretsync.io \
  crd/clusterstores.secretsync.io --timeout=60s >/dev/null
# The controller runs as the host process below, but as deploy/'s ServiceAccount with deploy/'s RBAC: its API
# requests are then exactly what it may do in a cluster, and the audit log (kube/up.sh audits that user) counts them.
kubectl apply --server-side -f deploy/base/namespace.yaml >/dev/null
kubectl -n secretsync-system apply --server-side -f deploy/base/serviceaccount.yaml -f deploy/base/rbac.yaml >/dev/null
token=$(kubectl -n secretsync-system create token secretsync --duration=24h)
ctl_kubeconfig="$TB/bench-controller.kubeconfig"
(
  umask 077
  server=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  cat > "$ctl_kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: secretsync
  user: {token: "$token"}
contexts:
- name: secretsync@testbed
  context: {cluster: testbed, user: secretsync}
current-context: secretsync@testbed
KC
)

rc=0
for d in $dialects; do
  if [ "$d" = DockerSwarm ] && [ -z "${DOCKER_SWARM_SOCKET:-}" ]; then
    log "skipping DockerSwarm: the test bed has no swarm (TESTBED_BACKENDS without docker)"
    continue
  fi
  python3 bench/bench.py --n "$N" --keys "$KEYS" --dialect "$d" --refresh "$REFRESH" --rate "$RATE" \
    --concurrency "$CONCURRENCY" --changes "$CHANGES" --phases "$PHASES" \
    --controller-kubeconfig "$ctl_kubeconfig" || rc=1
done
if [ "${BENCH_DOWN:-0}" = 1 ]; then bash tests/testbed/down.sh; fi
exit $rc
