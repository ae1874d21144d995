#!/usr/bin/env bash
# Tencent Cloud SSM: our emulator (tests/emulators, bin ssm-emulator) and the official Python SDK in
# .testbed/venv-tencent for the fidelity tests.
source "$(dirname "$0")/../lib.sh"
apt_install curl ca-certificates python3-venv openssl
python_venv tencent "$ROOT/tests/python/tencent/requirements.txt"
(cd "$ROOT" && cargo build --quiet -p secretsync-emulators --bin ssm-emulator)
