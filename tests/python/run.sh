#!/usr/bin/env bash
# Runs each tests/python/<backend>/ suite with that backend's venv (.testbed/venv-<backend>, made by its install.sh).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
status=0
for dir in "$ROOT"/tests/python/*/; do
  name=$(basename "$dir")
  py="$ROOT/.testbed/venv-$name/bin/python"
  if [ ! -x "$py" ]; then echo "no venv for tests/python/$name (its install.sh makes .testbed/venv-$name)" >&2; status=1; continue; fi
  echo "== python: $name"
  "$py" -m pytest -q "$dir" || status=1
done
exit $status
