#!/usr/bin/env bash
# AWS Secrets Manager: moto's server (PyPI `moto[server]`, a third-party implementation of the AWS APIs, not ours)
# for Secrets Manager and STS, and boto3 (AWS's Python SDK) with pytest for tests/python/aws, in one venv at
# .testbed/venv-aws.
source "$(dirname "$0")/../lib.sh"
apt_install python3-venv openssl curl
python_venv aws "$ROOT/tests/python/aws/requirements.txt"
