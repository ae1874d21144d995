#!/usr/bin/env bash
# Starts the whole test bed (idempotent) and writes .testbed/env.
#   TESTBED_NODE=1        also start the real node (node/: containerd, kubelet, kube-proxy, kube-scheduler,
#                         kube-controller-manager). `make testbed` and `make test` set it; a node that fails to
#                         start is reported and leaves the rest of the test bed up (tests/node_e2e.rs then fails).
#   TESTBED_BACKENDS=...  only these backends besides kube (for example "servicefabric node"); default: all.
source "$(dirname "$0")/lib.sh"
selected() { [ -z "${TESTBED_BACKENDS:-}" ] || [[ " $TESTBED_BACKENDS " == *" $1 "* ]]; }
if [ -z "${TESTBED_BACKENDS:-}" ]; then
  bash "$ROOT/tests/testbed/install.sh"
else
  for b in kube $TESTBED_BACKENDS; do bash "$ROOT/tests/testbed/$b/install.sh"; done
fi
run_logged "$ROOT/tests/testbed/kube/up.sh" || { log "kube failed to start"; exit 1; }
for script in "$ROOT"/tests/testbed/*/up.sh; do
  b=$(basename "$(dirname "$script")")
  case "$b" in kube|node) continue ;; esac
  selected "$b" || continue
  log "up: ${script#$ROOT/}"
  run_logged "$script" || { log "$b failed to start"; exit 1; }
done
# The node last: it maps every test-bed port, so it comes after the servers; and it must never take the rest down.
if [ "${TESTBED_NODE:-0}" = 1 ] && selected node; then
  log "up: tests/testbed/node/up.sh"
  start=$SECONDS
  if run_logged "$ROOT/tests/testbed/node/up.sh"; then
    log "node Ready $((SECONDS - start)) s after its up.sh started"
  else
    log "the node failed to start (logs: $TB/logs/kubelet.log, node-runtime.log, ...); the rest is up"
    echo "export TESTBED_NODE=1  # configured, but failed to start" > "$TB/env.d/node.env"
  fi
fi
cat "$TB"/env.d/*.env > "$TB/env"
log "ready: source $TB/env"
