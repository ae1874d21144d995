#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd from the Go modules pinned in go.mod/go.sum, and with TESTBED_NODE=1
# also the node's binaries from the same k8s.io/kubernetes module: kubelet, kube-proxy, kube-scheduler and
# kube-controller-manager (see node/). Rebuilds only when go.mod, go.sum or this script change, so a warm run
# costs a hash and a stat.
source "$(dirname "$0")/../lib.sh"
here="$ROOT/tests/testbed/kube"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
apt_install openssl curl ca-certificates
command -v go >/dev/null || { log "go is required (1.26 or newer) to build kube-apiserver and etcd"; exit 1; }

k8s_version=$(sed -n 's/^[[:space:]]*k8s.io\/kubernetes v\([0-9.]*\).*/\1/p' "$here/go.mod" | head -1)
minor=$(echo "$k8s_version" | cut -d. -f2)
stamp_file="$TB/bin/.kube-build.sha256"
want=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -d' ' -f1)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$k8s_version -X k8s.io/component-base/version.gitMajor=1"
ldflags="$ldflags -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
cd "$here"

if ! { [ -x "$TB/bin/kube-apiserver" ] && [ -x "$TB/bin/etcd" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$want" ]; }; then
  log "building kube-apiserver v$k8s_version and etcd from Go modules (cold: ~6-15 min on 2 cores)"
  start=$SECONDS
  go build -o "$TB/bin/kube-apiserver.new" -ldflags "$ldflags" k8s.io/kubernetes/cmd/kube-apiserver
  go build -o "$TB/bin/etcd.new" -ldflags "-s -w" go.etcd.io/etcd/server/v3
  mv "$TB/bin/kube-apiserver.new" "$TB/bin/kube-apiserver"
  mv "$TB/bin/etcd.new" "$TB/bin/etcd"
  echo "$want" > "$stamp_file"
  log "control plane built in $((SECONDS - start)) s"
fi

[ "${TESTBED_NODE:-0}" = 1 ] || exit 0
node_bins="kubelet kube-proxy kube-scheduler kube-controller-manager"
node_stamp="$TB/bin/.node-build.sha256"
have_all=1
for b in $node_bins; do [ -x "$TB/bin/$b" ] || have_all=0; done
if [ $have_all = 1 ] && [ "$(cat "$node_stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
log "building kubelet, kube-proxy, kube-scheduler, kube-controller-manager v$k8s_version (~5 min after kube-apiserver)"
start=$SECONDS
for b in $node_bins; do
  go build -o "$TB/bin/$b.new" -ldflags "$ldflags" "k8s.io/kubernetes/cmd/$b"
done
for b in $node_bins; do mv "$TB/bin/$b.new" "$TB/bin/$b"; done
echo "$want" > "$node_stamp"
log "node binaries built in $((SECONDS - start)) s"
