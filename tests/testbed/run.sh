#!/usr/bin/env bash
# `make run`: the whole thing on the local test bed. Brings up the control plane and every backend, installs the
# CRD, starts the controller, applies deploy/examples/ and shows every example SecretSync reaching Ready; then
# keeps the controller running until Ctrl-C (which also stops the test bed).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

apt_install gettext-base
bash tests/testbed/up.sh
set -a; source "$TB/env"; set +a
cargo build --quiet --bin secretsync
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/secretsyncs.secretsync.io crd/stores.secretsync.io \
  crd/clusterstores.secretsync.io --timeout=60s >/dev/null

if ! alive secretsync; then
  metrics_port=$(free_port)
  kubectl create namespace secretsync-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  start_bg secretsync "$ROOT/target/debug/secretsync" run --kubeconfig "$KUBECONFIG" \
    --metrics-addr "127.0.0.1:$metrics_port" --metrics-insecure --health-addr "127.0.0.1:$(free_port)" \
    --leader-election=false --log-format text
  echo "export SECRETSYNC_METRICS=http://127.0.0.1:$metrics_port" > "$TB/env.d/zz-controller.env"
  cat "$TB"/env.d/*.env > "$TB/env"
fi

# The examples name the test bed's endpoints as ${VARIABLES} from .testbed/env; fill them in. several-keys/ uses the
# Store of vault.yaml, so it comes after.
for f in deploy/examples/*.yaml deploy/examples/several-keys/*.yaml; do
  envsubst < "$f" | kubectl apply --server-side -f - >/dev/null
done
log "waiting for every example SecretSync to be Ready"
if ! kubectl wait --for=condition=Ready ssync --all -n examples --timeout=180s >/dev/null; then
  kubectl get ssync -n examples
  log "not every SecretSync became Ready; see 'kubectl describe ssync -A' and .testbed/logs/secretsync.log"
  exit 1
fi
kubectl get ssync -n examples

cat <<MSG

SecretSync is running against the local test bed.
  export KUBECONFIG=$KUBECONFIG
  kubectl get ssync -A -w                      # watch the phases
  kubectl -n examples patch secret db-password -p '{"stringData":{"password":"rotated"}}'
                                               # a source change reaches the stores within seconds
  curl -s \$SECRETSYNC_METRICS/metrics          # (source .testbed/env first)
  tail -f .testbed/logs/secretsync.log         # controller log
Stop everything with Ctrl-C here, or 'make testbed-down' from another shell.
MSG

tail -n 0 -f "$TB/logs/secretsync.log" &
tail_pid=$!
# Ctrl-C reaches the whole foreground group; a TERM sent to this script alone must not leave the tail behind.
trap 'kill "$tail_pid" 2>/dev/null; bash "$ROOT/tests/testbed/down.sh"; exit 0' INT TERM
wait
