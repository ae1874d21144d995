#!/usr/bin/env bash
# `make image`: builds a static secretsync binary and the image `secretsync:<version>` with the machine's own
# Docker engine (the test bed's dockerd when DOCKER_HOST is unset and .testbed/env names one).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
if [ -z "${DOCKER_HOST:-}" ] && [ -f .testbed/env ]; then set -a; source .testbed/env; set +a; fi
# The test bed's plain (non-swarm) dockerd builds images as well as any.
if [ -z "${DOCKER_HOST:-}" ] && [ -n "${DOCKER_NOSWARM_SOCKET:-}" ]; then export DOCKER_HOST=unix://$DOCKER_NOSWARM_SOCKET; fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --bin secretsync --target "$target" \
  --target-dir target/static
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "target/static/$target/release/secretsync" "$ctx/"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
cp deploy/image/Dockerfile "$ctx/"
docker build -t "secretsync:$version" -t secretsync:dev "$ctx"
echo "built secretsync:$version"
