#!/usr/bin/env bash
# Stops every process the test bed started, by recorded PID, in reverse start order. The node (if it was ever
# started here) goes first, through node/down.sh: its processes in their own order, then the pods, mounts,
# network namespaces, iptables rules, policy route and bridge it made. Then the directories that servers running as
# another user had outside the checkout go back into .testbed (lib.sh: outside_take), and the outside one is removed.
source "$(dirname "$0")/lib.sh"
if [ -d "$TB/node" ]; then
  log "stopping the node"
  bash "$ROOT/tests/testbed/node/down.sh"
fi
for f in $(ls -t "$TB"/pids/*.pid 2>/dev/null || true); do
  log "stopping $(basename "$f" .pid)"
  stop_pid "$f"
done
outside_park
rm -f "$TB/env"
