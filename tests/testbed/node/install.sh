#!/usr/bin/env bash
# Installs what the test bed's node needs (opt-in: TESTBED_NODE=1): Debian's containerd, runc and CNI plugins,
# the node binaries (kubelet, kube-proxy, kube-scheduler, kube-controller-manager: built by kube/install.sh from
# the same k8s.io/kubernetes module as kube-apiserver), and the node's images, built here FROM scratch:
# pause (a static C program) and apicheck (a static Go probe). Idempotent; a warm run takes a second.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/testbed/node/common.sh"
node_enabled || exit 0
here="$ROOT/tests/testbed/node"
apt_install containerd runc containernetworking-plugins conntrack iptables iproute2 gcc libc6-dev python3
TESTBED_NODE=1 bash "$ROOT/tests/testbed/kube/install.sh"

img="$NODE_DIR/images"
mkdir -p "$img"
stamp="$img/.sha256"
want=$(cat "$here/images/pause.c" "$here/images/apicheck.go" "$here/mkimage.py" "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$img/pause.tar" ] && [ -f "$img/apicheck.tar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
log "building the node's images (pause, apicheck) FROM scratch"
gcc -Os -static -o "$img/pause" "$here/images/pause.c"
strip "$img/pause"
(cd "$here/images" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS= go build -trimpath -ldflags "-s -w" -o "$img/apicheck" apicheck.go)
python3 "$here/mkimage.py" "$img/pause.tar" "$PAUSE_IMAGE" /pause "$img/pause=/pause"
python3 "$here/mkimage.py" "$img/apicheck.tar" testbed.invalid/apicheck:1 /apicheck "$img/apicheck=/apicheck" --port 8080
echo "$want" > "$stamp"
