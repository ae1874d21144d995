#!/usr/bin/env bash
# Installs everything the test bed needs. Idempotent; a warm run takes seconds.
source "$(dirname "$0")/lib.sh"
for script in "$ROOT"/tests/testbed/*/install.sh; do
  log "install: ${script#$ROOT/}"
  bash "$script"
done
