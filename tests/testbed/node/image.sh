#!/usr/bin/env bash
# Builds the SecretSync image and imports it into the node's containerd (namespace k8s.io) as
# testbed.invalid/secretsync:TAG, once per TAG given (default: dev). Used by tests/node_e2e.rs; run by hand after
# `make testbed` to try deploy/ on the node.
#   - With the test bed's plain dockerd (DOCKER_NOSWARM_SOCKET, as in `make test`): `make image`
#     (deploy/image/build.sh), then `docker save` of the new tags piped into `ctr images import`.
#   - Without it: the same static binary (build.sh's cargo command) and the same FROM-scratch content as
#     deploy/image/Dockerfile (binary, CA bundle, USER 65532:65532, ENTRYPOINT /secretsync, CMD run), written by
#     mkimage.py.
# The name is not deploy/'s `secretsync:<version>` on purpose: tests that apply deploy/ or the Helm chart only to
# look at the objects (e2e.rs runs the controller as host processes next to them) must never get real pods.
# Warm (nothing to compile), it takes a few seconds: the import of a ~25 MB layer containerd mostly has already.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
sock=${TESTBED_NODE_CONTAINERD:?TESTBED_NODE_CONTAINERD is not set: the node is not up (source .testbed/env)}
tags=("$@"); [ ${#tags[@]} -gt 0 ] || tags=(dev)
refs=(); for t in "${tags[@]}"; do refs+=("testbed.invalid/secretsync:$t"); done
log() { printf '[node-image] %s\n' "$*" >&2; }
start=$SECONDS
if [ -n "${DOCKER_NOSWARM_SOCKET:-}" ] && [ -S "$DOCKER_NOSWARM_SOCKET" ]; then
  export DOCKER_HOST=unix://$DOCKER_NOSWARM_SOCKET
  bash deploy/image/build.sh >&2
  for r in "${refs[@]}"; do docker tag secretsync:dev "$r"; done
  docker save "${refs[@]}" | ctr -a "$sock" -n k8s.io images import - >/dev/null
  for r in "${refs[@]}"; do docker rmi "$r" >/dev/null; done   # only the extra tags; secretsync:dev stays
  how="make image + docker save"
else
  target=$(rustc -vV | sed -n 's/^host: //p')
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --bin secretsync --target "$target" \
    --target-dir target/static >&2
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  ref_list=$(IFS=,; echo "${refs[*]}")
  python3 tests/testbed/node/mkimage.py "$out/image.tar" "$ref_list" /secretsync \
    "target/static/$target/release/secretsync=/secretsync" \
    /etc/ssl/certs/ca-certificates.crt=/etc/ssl/certs/ca-certificates.crt \
    --user 65532:65532 --cmd run --port 8080
  ctr -a "$sock" -n k8s.io images import "$out/image.tar" >/dev/null
  how="static build + mkimage.py (no dockerd)"
fi
log "imported ${refs[*]} in $((SECONDS - start)) s ($how)"
printf '%s\n' "${refs[@]}"
