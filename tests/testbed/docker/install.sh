#!/usr/bin/env bash
# Docker Swarm: Debian's real dockerd (docker.io, which brings containerd and runc), openssl for the mutual-TLS
# certificates, and the official Python SDK in .testbed/venv-docker for the interop tests.
source "$(dirname "$0")/../lib.sh"
apt_install docker.io openssl python3-venv
python_venv docker "$ROOT/tests/python/docker/requirements.txt"
