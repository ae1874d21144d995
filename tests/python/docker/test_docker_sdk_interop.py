"""What SecretSync's DockerSwarm dialect writes, seen through the official `docker` Python SDK.

SecretSync writes through its own HTTP transport (reqwest); these tests read the result back with docker-py
against the same real dockerd of the test bed, over the unix socket and over mutual TLS. The value itself cannot be read from
Swarm, so it is checked with the daemon's own rule: an update may carry `Data` only if it equals the stored bytes.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[3]
# The key tests/docker_swarm.rs digests with.
KEY = b"docker-integration-test-key-32by"


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `make testbed` first, then `set -a; source .testbed/env; set +a`")
    return value


@pytest.fixture(scope="module")
def client():
    c = docker.DockerClient(base_url="unix://" + env("DOCKER_SWARM_SOCKET"), version="auto")
    yield c
    c.close()


@pytest.fixture(scope="module")
def tls_client():
    tls = docker.tls.TLSConfig(
        client_cert=(env("DOCKER_SWARM_CLIENT_CERT"), env("DOCKER_SWARM_CLIENT_KEY")),
        ca_cert=env("DOCKER_SWARM_CA_CERT"),
        verify=True,
    )
    url = env("DOCKER_SWARM_TLS_ENDPOINT").replace("tcp://", "https://", 1)
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the CA given here; only the test bed's CA may
    # vouch for the daemon.
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("REQUESTS_CA_BUNDLE", raising=False)
        mp.delenv("CURL_CA_BUNDLE", raising=False)
        c = docker.DockerClient(base_url=url, tls=tls, version="auto")
    c.api.trust_env = False
    yield c
    c.close()


def secretsync_write(name, value, labels):
    """Runs the DockerSwarm dialect once (Observe, decide, Create) through the ignored Rust test `interop_write`."""
    run_env = dict(os.environ)
    run_env.update(
        DOCKER_INTEROP_NAME=name,
        DOCKER_INTEROP_VALUE_HEX=value.hex(),
        DOCKER_INTEROP_LABELS=json.dumps(labels),
    )
    out = subprocess.run(
        # --workspace: the feature set `make test` built with, so nothing is compiled again here.
        ["cargo", "test", "--quiet", "--workspace", "--test", "docker_swarm", "--", "--ignored", "--exact",
         "interop_write", "--nocapture"],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("{"))
    return json.loads(line)


def digest(value):
    return "hmac-sha256:" + hmac.new(KEY, value, hashlib.sha256).hexdigest()


def update(client, secret, data=None):
    """POST /secrets/{id}/update with the secret's current spec (docker-py has no call for it)."""
    secret.reload()
    spec = dict(secret.attrs["Spec"])
    if data is not None:
        spec["Data"] = base64.b64encode(data).decode()
    api = client.api
    resp = api._post_json(api._url("/secrets/{0}/update", secret.id), data=spec,
                          params={"version": secret.attrs["Version"]["Index"]})
    api._raise_for_status(resp)


@pytest.fixture(scope="module")
def written(client):
    base = "interop-" + secrets.token_hex(4)
    # Not UTF-8, with the bytes that tell standard base64 from the URL-safe alphabet ('+' and '/').
    value = b"\x00\xfb\xff\xfe binary \xfa\xbf?>" + secrets.token_bytes(16)
    labels = {"team": "payments", "com.example.tier": "gold"}
    result = secretsync_write(base, value, labels)
    yield base, value, labels, result
    for s in client.secrets.list(filters={"name": base}):
        s.remove()


def test_secret_is_named_and_labelled_as_documented(client, written):
    base, value, labels, result = written
    found = client.secrets.list(filters={"label": f"secretsync.io/remote-name={base}"})
    assert [s.name for s in found] == [f"{base}-{digest(value)[len('hmac-sha256:'):][:8]}"]
    secret = found[0]
    assert secret.id == result["id"]
    assert secret.name == result["name"]
    got = secret.attrs["Spec"]["Labels"]
    assert got == {
        **labels,
        "secretsync.io/owner": "team-a/db",
        "secretsync.io/owner-uid": "uid-docker-1",
        "secretsync.io/digest": digest(value),
        "secretsync.io/remote-name": base,
    }
    # Swarm never returns the value, and SecretSync put it nowhere else.
    assert "Data" not in secret.attrs["Spec"] or not secret.attrs["Spec"]["Data"]
    assert value.hex() not in json.dumps(secret.attrs)


def test_stored_value_is_exactly_the_source_bytes(client, written):
    base, value, _, result = written
    secret = client.secrets.get(result["id"])
    # The daemon refuses an update whose Data differs from what it stores, and accepts the same bytes.
    with pytest.raises(docker.errors.APIError) as refused:
        update(client, secret, value + b"!")
    assert refused.value.status_code == 400
    assert "only updates to Labels are allowed" in str(refused.value)
    update(client, secret, value)
    secret.reload()
    assert secret.attrs["Spec"]["Labels"]["secretsync.io/digest"] == digest(value)


def test_stale_version_is_refused_as_secretsync_expects(client, written):
    _, _, _, result = written
    secret = client.secrets.get(result["id"])
    stale = secret.attrs["Version"]["Index"]
    update(client, secret)
    api = client.api
    resp = api._post_json(api._url("/secrets/{0}/update", secret.id), data=secret.attrs["Spec"],
                          params={"version": stale})
    # The answer the dialect treats as "re-read and retry".
    assert resp.status_code == 500
    assert "update out of sequence" in resp.json()["message"]


def test_same_secret_over_mutual_tls(tls_client, written):
    base, _, _, result = written
    found = tls_client.secrets.list(filters={"label": f"secretsync.io/remote-name={base}"})
    assert [s.id for s in found] == [result["id"]]


def test_secret_in_use_cannot_be_removed(client, written):
    _, _, _, result = written
    secret = client.secrets.get(result["id"])
    service = client.services.create(
        "secretsync.invalid/none:1",
        name="interop-svc-" + secrets.token_hex(4),
        secrets=[docker.types.SecretReference(secret.id, secret.name)],
    )
    try:
        with pytest.raises(docker.errors.APIError) as refused:
            secret.remove()
        assert refused.value.status_code == 400
        assert "in use" in str(refused.value)
    finally:
        service.remove()
