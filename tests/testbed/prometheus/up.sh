#!/usr/bin/env bash
# Nothing to start (tests/observability.rs starts and stops its own Prometheus): names the binaries.
source "$(dirname "$0")/../lib.sh"
cat > "$TB/env.d/prometheus.env" <<ENV
export PROMETHEUS_BIN=$(command -v prometheus || echo /usr/bin/prometheus)
export PROMTOOL_BIN=$(command -v promtool || echo /usr/bin/promtool)
ENV
