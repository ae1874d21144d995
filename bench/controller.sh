#!/usr/bin/env bash
# The former `make bench` entry point, kept for the commands quoted in README.md: `bench/controller.sh [N] [RATE]`
# now runs bench/run.sh (see bench/README.md) with those values; everything else as `make bench`.
set -euo pipefail
N=${1:-${N:-500}} RATE=${2:-${RATE:-200}} exec bash "$(dirname "$0")/run.sh"
