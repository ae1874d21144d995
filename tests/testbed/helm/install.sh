#!/usr/bin/env bash
# Builds helm (the Go module helm.sh/helm/v3, pinned in go.mod/go.sum) into .testbed/bin/helm, for tests/helm.rs.
# Rebuilds only when go.mod, go.sum or this script change, so a warm run costs a hash and a stat.
source "$(dirname "$0")/../lib.sh"
here="$ROOT/tests/testbed/helm"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
command -v go >/dev/null || { log "go is required to build helm"; exit 1; }

version=$(sed -n 's/^[[:space:]]*helm\.sh\/helm\/v3 \(v[0-9.]*\).*/\1/p' "$here/go.mod" | head -1)
stamp_file="$TB/bin/.helm-build.sha256"
want=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -d' ' -f1)
if [ -x "$TB/bin/helm" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

log "building helm $version from Go modules (cold: ~3-6 min on 2 cores)"
start=$SECONDS
cd "$here"
# helm prints its version from these (`helm version`); without them it would say v3.x-dev.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
ldflags="$ldflags -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
nice -n 10 go build -o "$TB/bin/helm.new" -ldflags "$ldflags" helm.sh/helm/v3/cmd/helm
mv "$TB/bin/helm.new" "$TB/bin/helm"
echo "$want" > "$stamp_file"
log "helm built in $((SECONDS - start)) s"
