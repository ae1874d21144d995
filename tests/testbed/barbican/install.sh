#!/usr/bin/env bash
# Barbican and Keystone: the real OpenStack services from PyPI (pinned in requirements.txt), served by gunicorn, in
# one venv at .testbed/venv-barbican that also holds python-barbicanclient and pytest for tests/python/barbican.
# Their databases live on Debian's PostgreSQL 15 server (up.sh runs its own instance under .testbed/postgres).
source "$(dirname "$0")/../lib.sh"
apt_install python3-venv postgresql
python_venv barbican "$ROOT/tests/testbed/barbican/requirements.txt"
