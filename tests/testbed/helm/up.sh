#!/usr/bin/env bash
# Nothing to start: helm is a client. Names the binary for tests/helm.rs, and keeps helm's cache, config and data
# (repositories, plugins) under .testbed/, away from the user's home.
source "$(dirname "$0")/../lib.sh"
mkdir -p "$TB/helm/cache" "$TB/helm/config" "$TB/helm/data"
cat > "$TB/env.d/helm.env" <<ENV
export HELM_BIN=$TB/bin/helm
export HELM_CACHE_HOME=$TB/helm/cache
export HELM_CONFIG_HOME=$TB/helm/config
export HELM_DATA_HOME=$TB/helm/data
ENV
