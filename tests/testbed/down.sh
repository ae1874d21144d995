#!/usr/bin/env bash
# Stops every process the test bed started, by recorded PID, in reverse start order.
source "$(dirname "$0")/lib.sh"
for f in $(ls -t "$TB"/pids/*.pid 2>/dev/null); do
  log "stopping $(basename "$f" .pid)"
  stop_pid "$f"
done
rm -f "$TB/env"
