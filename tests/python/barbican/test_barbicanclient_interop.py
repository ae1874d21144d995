"""What SecretSync's Barbican dialect writes, read back with the official python-barbicanclient.

SecretSync writes through its own Rust client (the ignored Rust test `interop_write` runs one reconcile); these
tests then read the result with python-barbicanclient over a keystoneauth1 session against the same real
Keystone and Barbican of the test bed, the way an OpenStack application would.
"""

import hashlib
import hmac
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from barbicanclient import client as barbican_client
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

ROOT = Path(__file__).resolve().parents[3]
# The key tests/barbican.rs digests with.
KEY = b"barbican-integration-test-key-32"


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `make testbed` first, then `set -a; source .testbed/env; set +a`")
    return value


@pytest.fixture(scope="module")
def client():
    auth = v3.Password(
        auth_url=env("KEYSTONE_AUTH_URL"),
        username=env("KEYSTONE_USERNAME"),
        password=env("KEYSTONE_PASSWORD"),
        project_name=env("KEYSTONE_PROJECT"),
        user_domain_name="Default",
        project_domain_name="Default",
    )
    # The key-manager endpoint comes from the catalog, as for SecretSync's password mode.
    return barbican_client.Client(session=ks_session.Session(auth=auth))


def secretsync_write(name, value, content_type=""):
    """Runs the Barbican dialect once (observe, decide, Create) through the ignored Rust test `interop_write`."""
    run_env = dict(os.environ)
    run_env.update(
        BARBICAN_INTEROP_NAME=name,
        BARBICAN_INTEROP_VALUE_HEX=value.hex(),
        BARBICAN_INTEROP_CONTENT_TYPE=content_type,
    )
    out = subprocess.run(
        # --workspace: the feature set `make test` built with, so nothing is compiled again here.
        ["cargo", "test", "--quiet", "--workspace", "--test", "barbican", "--", "--ignored", "--exact",
         "interop_write", "--nocapture"],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("{"))
    return json.loads(line)


def digest(value):
    return "hmac-sha256:" + hmac.new(KEY, value, hashlib.sha256).hexdigest()


VALUES = [
    b"  leading and trailing spaces  ",
    b"\n\nnewlines\r\n",
    bytes([0xFF, 0x00, 0xFE, 0x20, 0x80, 0x0A]),
    "unicode \u00e9 \u2713".encode(),
]


@pytest.mark.parametrize("value", VALUES, ids=["spaces", "newlines", "binary", "unicode"])
def test_payload_reads_back_byte_for_byte(client, value):
    name = "interop-" + secrets.token_hex(4)
    written = secretsync_write(name, value)
    try:
        secret = client.secrets.get(written["secret_ref"])
        assert secret.name == name
        assert secret.secret_type == "opaque"
        # SecretSync's creation tag: "secretsync:" and the uid of the SecretSync (the Rust harness's owner).
        assert secret.mode == "secretsync:uid-1"
        assert secret.content_types == {"default": "application/octet-stream"}
        assert secret.payload == value
        meta = client.secrets.get_secret_metadata(written["secret_ref"])["metadata"]
        assert meta["secretsync-digest"] == digest(value) == written["digest"]
        assert meta["secretsync-owner-namespace"] == "team-a"
        assert meta["team"] == "interop"
        # Exactly one secret of that name, as an application looking it up by name would find it.
        found = [s for s in client.secrets.list(name=name) if s.name == name]
        assert [s.secret_ref for s in found] == [written["secret_ref"]]
    finally:
        client.secrets.delete(written["secret_ref"])


def test_text_secret_reads_back_as_text(client):
    name = "interop-text-" + secrets.token_hex(4)
    value = "  text with spaces and a newline\n"
    written = secretsync_write(name, value.encode(), "text/plain")
    try:
        secret = client.secrets.get(written["secret_ref"])
        assert secret.content_types == {"default": "text/plain"}
        assert secret.payload == value
    finally:
        client.secrets.delete(written["secret_ref"])
