#!/usr/bin/env bash
# Stops only the node (the rest of the test bed keeps running) and removes what it left on the machine.
# The test bed's down.sh stops the same PIDs (newest first, so node-runtime last, which cleans up on TERM).
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/testbed/node/common.sh"
for n in kube-proxy kubelet kube-scheduler kube-controller-manager node-runtime; do
  [ -f "$TB/pids/$n.pid" ] && { log "stopping $n"; stop_pid "$TB/pids/$n.pid"; }
done
bash "$ROOT/tests/testbed/node/teardown.sh"
rm -f "$TB/env.d/node.env"
