#!/usr/bin/env bash
# Service Fabric secret resources: our emulator (tests/emulators, bin sf-emulator), openssl for its test
# certificates, and the official Python SDK in .testbed/venv-servicefabric for the fidelity tests.
source "$(dirname "$0")/../lib.sh"
apt_install openssl curl ca-certificates python3-venv
python_venv servicefabric "$ROOT/tests/python/servicefabric/requirements.txt"
(cd "$ROOT" && cargo build --quiet -p secretsync-emulators --bin sf-emulator)
