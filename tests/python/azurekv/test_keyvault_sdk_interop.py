"""What SecretSync's AzureKeyVault dialect writes, read back with Microsoft's own SDK (azure-keyvault-secrets with
azure-identity), against the Key Vault stand-in of the test bed.

The first tests hold the stand-in to the protocol the SDK expects (the 401 challenge, MSAL's client-secret and
client-certificate grants, soft delete and its pollers, paging); the last ones run the Rust dialect (through the
ignored test `interop_write`) and check value, tags, content type and version as the SDK sees them.
"""

import hashlib
import hmac
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError, ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential
from azure.keyvault.secrets import SecretClient

ROOT = Path(__file__).resolve().parents[3]
# The key tests/azure_key_vault.rs digests with.
KEY = b"dialect-tests-digest-key-32bytes"  # tests/support/dialect_case.rs key()


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `make testbed` first, then `set -a; source .testbed/env; set +a`")
    return value


def unique(prefix):
    return f"{prefix}-{secrets.token_hex(4)}"


def client_with(credential):
    # The stand-in is not under *.vault.azure.net, so the SDK's challenge-resource check is switched off.
    return SecretClient(env("AZUREKV_ENDPOINT"), credential, verify_challenge_resource=False, connection_verify=env("AZUREKV_CA_CERT"))


def secret_credential(secret=None):
    return ClientSecretCredential(
        env("AZUREKV_TENANT_ID"),
        env("AZUREKV_CLIENT_ID"),
        secret or env("AZUREKV_CLIENT_SECRET"),
        authority=env("AZUREKV_AUTHORITY"),
        disable_instance_discovery=True,
        connection_verify=env("AZUREKV_CA_CERT"),
    )


@pytest.fixture(scope="module")
def client():
    return client_with(secret_credential())


def test_set_get_update_list_with_a_client_secret(client):
    name = unique("sdk")
    first = client.set_secret(name, "one", content_type="text/plain", tags={"team": "a"})
    assert len(first.properties.version) == 32
    second = client.set_secret(name, "two")
    assert second.properties.version != first.properties.version
    got = client.get_secret(name)
    assert (got.value, got.properties.tags, got.properties.content_type) == ("two", {}, None)
    assert client.get_secret(name, first.properties.version).value == "one"
    updated = client.update_secret_properties(name, first.properties.version, content_type="x", tags={"k": "v"})
    assert (updated.content_type, updated.tags) == ("x", {"k": "v"})
    assert len(list(client.list_properties_of_secret_versions(name))) == 2
    assert name in [p.name for p in client.list_properties_of_secrets()]


def test_paging_follows_next_link(client):
    name = unique("paged")
    for i in range(30):
        client.set_secret(name, f"v{i}")
    assert len(list(client.list_properties_of_secret_versions(name, max_page_size=7))) == 30


def test_soft_delete_recover_and_purge(client):
    name = unique("soft")
    client.set_secret(name, "v")
    client.begin_delete_secret(name).wait()
    assert name in [d.name for d in client.list_deleted_secrets()]
    with pytest.raises(ResourceExistsError) as e:
        client.set_secret(name, "again")
    assert "deleted but recoverable" in str(e.value)
    client.begin_recover_deleted_secret(name).wait()
    assert client.get_secret(name).value == "v"
    client.begin_delete_secret(name).wait()
    client.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(name)


def test_certificate_credential():
    c = client_with(
        CertificateCredential(
            env("AZUREKV_TENANT_ID"),
            env("AZUREKV_CERT_CLIENT_ID"),
            env("AZUREKV_CLIENT_CERT"),
            authority=env("AZUREKV_AUTHORITY"),
            disable_instance_discovery=True,
            connection_verify=env("AZUREKV_CA_CERT"),
        )
    )
    name = unique("cert")
    c.set_secret(name, "v")
    assert c.get_secret(name).value == "v"


def test_wrong_client_secret_is_refused():
    c = client_with(secret_credential("wrong"))
    with pytest.raises(ClientAuthenticationError) as e:
        c.get_secret("anything")
    assert "AADSTS7000215" in str(e.value)


def secretsync_write(name, value, content_type, labels):
    """Runs the AzureKeyVault dialect once (check, observe, decide, Create) through the ignored Rust test."""
    run_env = dict(os.environ)
    run_env.update(
        AZUREKV_INTEROP_NAME=name,
        AZUREKV_INTEROP_VALUE=value,
        AZUREKV_INTEROP_CONTENT_TYPE=content_type,
        AZUREKV_INTEROP_LABELS=json.dumps(labels),
    )
    out = subprocess.run(
        ["cargo", "test", "--quiet", "--test", "azure_key_vault", "interop_write", "--", "--ignored", "--exact", "--nocapture"],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("{"))
    assert value not in out.stdout and value not in out.stderr, "the value was printed"
    return json.loads(line)


def test_the_sdk_reads_what_secretsync_wrote(client):
    name = unique("interop")
    value = "pässwörd-" + secrets.token_hex(8) + ' with "quotes", \\backslashes\\ and\nnewlines'
    labels = {"team": "payments", "env": "test"}
    written = secretsync_write(name, value, "application/x-password", labels)
    got = client.get_secret(name)
    assert got.value == value
    assert got.properties.content_type == "application/x-password"
    assert got.properties.version == written["version"]
    assert got.id == written["id"]
    digest = "hmac-sha256:" + hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()
    assert written["digest"] == digest
    assert got.properties.tags == {
        **labels,
        "secretsync-owner": "team-a/db",
        "secretsync-owner-uid": "uid-1",
        "secretsync-digest": digest,
    }
    assert all(value not in t for t in got.properties.tags.values())
    # Written once, and the second reconcile of interop_write wrote nothing.
    assert len(list(client.list_properties_of_secret_versions(name))) == 1
    assert got.properties.enabled is True
