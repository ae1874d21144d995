#!/usr/bin/env bash
# Key Vault: Microsoft's Python SDK (azure-keyvault-secrets, azure-identity) in .testbed/venv-azurekv for the
# interop tests, and PyJWT/cryptography there for the stand-in's token endpoint (kv-standin.py; see README.md for
# why there is no third-party emulator). openssl makes the test certificates.
source "$(dirname "$0")/../lib.sh"
apt_install openssl curl ca-certificates python3-venv
python_venv azurekv "$ROOT/tests/python/azurekv/requirements.txt"
