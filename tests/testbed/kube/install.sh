#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd from the Go modules pinned in go.mod/go.sum.
# Rebuilds only when go.mod, go.sum or this script change, so a warm run costs a hash and a stat.
source "$(dirname "$0")/../lib.sh"
here="$ROOT/tests/testbed/kube"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
apt_install openssl curl ca-certificates
command -v go >/dev/null || { log "go is required (1.26 or newer) to build kube-apiserver and etcd"; exit 1; }

k8s_version=$(sed -n 's/^[[:space:]]*k8s.io\/kubernetes v\([0-9.]*\).*/\1/p' "$here/go.mod" | head -1)
minor=$(echo "$k8s_version" | cut -d. -f2)
stamp_file="$TB/bin/.kube-build.sha256"
want=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -d' ' -f1)
if [ -x "$TB/bin/kube-apiserver" ] && [ -x "$TB/bin/etcd" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

log "building kube-apiserver v$k8s_version and etcd from Go modules (cold: ~6-15 min on 2 cores)"
start=$SECONDS
cd "$here"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$k8s_version -X k8s.io/component-base/version.gitMajor=1"
ldflags="$ldflags -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
go build -o "$TB/bin/kube-apiserver.new" -ldflags "$ldflags" k8s.io/kubernetes/cmd/kube-apiserver
go build -o "$TB/bin/etcd.new" -ldflags "-s -w" go.etcd.io/etcd/server/v3
mv "$TB/bin/kube-apiserver.new" "$TB/bin/kube-apiserver"
mv "$TB/bin/etcd.new" "$TB/bin/etcd"
echo "$want" > "$stamp_file"
log "control plane built in $((SECONDS - start)) s"
