#!/usr/bin/env bash
# Debian's Prometheus server and promtool (package `prometheus`), for tests/observability.rs. Nothing is started
# here: the test runs its own Prometheus on a free loopback port with its data in a temporary directory, and stops
# it by PID. (In containers /usr/sbin/policy-rc.d keeps the package's own service from starting.)
source "$(dirname "$0")/../lib.sh"
apt_install prometheus
