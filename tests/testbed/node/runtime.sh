#!/usr/bin/env bash
# The node's containerd, under a wrapper that down.sh's TERM turns into a clean stop: containerd's shims outlive
# containerd, so the pods are killed and removed (with their network namespaces) first, then containerd is
# stopped, then teardown.sh removes mounts, iptables rules and the bridge.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/testbed/node/common.sh"
here="$ROOT/tests/testbed/node"
# Its own session, so the TERM that down.sh sends to this wrapper's process group does not stop it first.
setsid containerd --config "$NODE_DIR/containerd/config.toml" &
cpid=$!
stop() {
  trap - TERM INT
  bash "$here/teardown.sh" --pods
  kill -TERM "$cpid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$cpid" 2>/dev/null || true
  bash "$here/teardown.sh"
  exit 0
}
trap stop TERM INT
wait "$cpid" && rc=0 || rc=$?
log "containerd exited ($rc); its pods' shims may still run: node/down.sh cleans up"
exit "$rc"
