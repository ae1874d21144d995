#!/usr/bin/env bash
# Starts the whole test bed (idempotent) and writes .testbed/env.
source "$(dirname "$0")/lib.sh"
bash "$ROOT/tests/testbed/install.sh"
bash "$ROOT/tests/testbed/kube/up.sh"
for script in "$ROOT"/tests/testbed/*/up.sh; do
  case "$script" in */kube/up.sh) continue ;; esac
  log "up: ${script#$ROOT/}"
  bash "$script"
done
cat "$TB"/env.d/*.env > "$TB/env"
log "ready: source .testbed/env"
