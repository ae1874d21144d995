"""Fidelity of the Service Fabric emulator: the official Python SDK (azure-servicefabric 8.2, operation groups
mesh_secret and mesh_secret_value) drives it and must see the documented behaviour.

Endpoints come from .testbed/env (`make testbed`); the emulator's name prefixes (accepted-, instant-, failing-)
and test controls (/_emulator/...) are documented in tests/emulators/src/bin/sf_emulator.rs.
"""

import os
import time
import uuid

import pytest
import requests
from azure.servicefabric import ServiceFabricClientAPIs
from azure.servicefabric.models import (
    FabricErrorException,
    InlinedValueSecretResourceProperties,
)
from msrest.authentication import Authentication, BasicTokenAuthentication


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `make testbed` first, then `set -a; source .testbed/env; set +a`")
    return value


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client():
    return ServiceFabricClientAPIs(Authentication(), base_url=env("SF_ENDPOINT"))


def props(description="d", content_type="text/plain"):
    return InlinedValueSecretResourceProperties(description=description, content_type=content_type)


def error_of(excinfo):
    """(HTTP status, FabricError code) of a FabricErrorException."""
    exc = excinfo.value
    return exc.response.status_code, exc.error.error.code


def wait_for_status(client, name, want, limit=10.0):
    deadline = time.monotonic() + limit
    seen = []
    while time.monotonic() < deadline:
        status = client.mesh_secret.get(name).properties.status
        seen.append(status)
        if status == want:
            return seen
        time.sleep(0.05)
    pytest.fail(f"{name} never became {want}: {seen[-5:]}")


def test_create_answers_201_creating_then_get_turns_ready(client):
    name = unique("sdk-")
    raw = client.mesh_secret.create_or_update(name, props("Mongo DB connection string"), name, raw=True)
    assert raw.response.status_code == 201
    created = raw.output
    assert created.name == name
    assert isinstance(created.properties, InlinedValueSecretResourceProperties)
    assert created.properties.kind == "inlinedValue"
    assert created.properties.status == "Creating"
    assert created.properties.content_type == "text/plain"
    seen = wait_for_status(client, name, "Ready")
    assert seen[0] == "Creating"
    assert set(seen) <= {"Creating", "Ready"}


def test_create_can_answer_202_with_an_empty_body(client):
    name = unique("accepted-")
    raw = client.mesh_secret.create_or_update(name, props(), name, raw=True)
    assert raw.response.status_code == 202
    assert raw.response.content == b""
    assert raw.output is None
    assert client.mesh_secret.get(name).properties.status == "Creating"
    wait_for_status(client, name, "Ready")


def test_failed_resource_reports_status_details(client):
    name = unique("failing-")
    client.mesh_secret.create_or_update(name, props(), name)
    wait_for_status(client, name, "Failed")
    assert "emulated failure" in client.mesh_secret.get(name).properties.status_details


def test_update_answers_200_and_changes_only_the_description(client):
    name = unique("instant-")
    first = client.mesh_secret.create_or_update(name, props("one"), name, raw=True)
    assert first.response.status_code == 200
    assert first.output.properties.status == "Ready"
    again = client.mesh_secret.create_or_update(name, props("two"), name, raw=True)
    assert again.response.status_code == 200
    assert client.mesh_secret.get(name).properties.description == "two"


def test_kind_and_content_type_cannot_change(client):
    name = unique("instant-")
    client.mesh_secret.create_or_update(name, props(content_type="text/plain"), name)
    with pytest.raises(FabricErrorException) as excinfo:
        client.mesh_secret.create_or_update(name, props(content_type="application/json"), name)
    assert error_of(excinfo) == (400, "FABRIC_E_SECRET_TYPE_CANNOT_BE_CHANGED")
    assert client.mesh_secret.get(name).properties.content_type == "text/plain"


def test_list_returns_paged_descriptions(client):
    names = {unique("instant-list-") for _ in range(3)}
    for name in names:
        client.mesh_secret.create_or_update(name, props(), name)
    page = client.mesh_secret.list()
    assert page.continuation_token == ""
    listed = {item.name: item for item in page.items}
    assert names <= set(listed)
    for name in names:
        assert listed[name].properties.kind == "inlinedValue"


def test_values_add_get_list_show(client):
    name = unique("instant-")
    client.mesh_secret.create_or_update(name, props(), name)
    added = client.mesh_secret_value.add_value(name, "v1", "v1", value="s3cr3t-1", raw=True)
    assert added.response.status_code == 201
    assert added.output.name == "v1"
    # Reads never carry the plaintext.
    assert added.output.value is None
    client.mesh_secret_value.add_value(name, "v2", "v2", value="s3cr3t-2")

    got = client.mesh_secret_value.get(name, "v1")
    assert got.name == "v1"
    assert got.value is None
    listed = client.mesh_secret_value.list(name)
    assert [item.name for item in listed.items] == ["v1", "v2"]
    assert all(item.value is None for item in listed.items)
    # Only the privileged list_value call shows it.
    assert client.mesh_secret_value.show(name, "v1").value == "s3cr3t-1"
    assert client.mesh_secret_value.show(name, "v2").value == "s3cr3t-2"


def test_value_versions_are_immutable(client):
    name = unique("instant-")
    client.mesh_secret.create_or_update(name, props(), name)
    client.mesh_secret_value.add_value(name, "v1", "v1", value="first")
    same = client.mesh_secret_value.add_value(name, "v1", "v1", value="first", raw=True)
    assert same.response.status_code == 200
    with pytest.raises(FabricErrorException) as excinfo:
        client.mesh_secret_value.add_value(name, "v1", "v1", value="second")
    assert error_of(excinfo) == (409, "FABRIC_E_SECRET_VERSION_ALREADY_EXISTS")
    assert client.mesh_secret_value.show(name, "v1").value == "first"


def test_a_value_needs_a_value(client):
    name = unique("instant-")
    client.mesh_secret.create_or_update(name, props(), name)
    with pytest.raises(FabricErrorException) as excinfo:
        client.mesh_secret_value.add_value(name, "v1", "v1")
    assert error_of(excinfo) == (400, "FABRIC_E_SECRET_INVALID")


def test_missing_things_are_404_fabric_errors(client):
    name = unique("missing-")
    with pytest.raises(FabricErrorException) as excinfo:
        client.mesh_secret.get(name)
    assert excinfo.value.response.status_code == 404
    assert excinfo.value.error.error.code
    with pytest.raises(FabricErrorException) as excinfo:
        client.mesh_secret_value.add_value(name, "v1", "v1", value="x")
    assert excinfo.value.response.status_code == 404
    with pytest.raises(FabricErrorException) as excinfo:
        client.mesh_secret_value.show(name, "v1")
    assert excinfo.value.response.status_code == 404


def test_delete_value_then_resource(client):
    name = unique("instant-")
    client.mesh_secret.create_or_update(name, props(), name)
    client.mesh_secret_value.add_value(name, "v1", "v1", value="a")
    client.mesh_secret_value.add_value(name, "v2", "v2", value="b")
    client.mesh_secret_value.delete(name, "v1")
    assert [i.name for i in client.mesh_secret_value.list(name).items] == ["v2"]
    with pytest.raises(FabricErrorException) as excinfo:
        client.mesh_secret_value.get(name, "v1")
    assert excinfo.value.response.status_code == 404
    # Deleting the resource deletes its values; deleting again is accepted.
    client.mesh_secret.delete(name)
    with pytest.raises(FabricErrorException):
        client.mesh_secret.get(name)
    client.mesh_secret.delete(name)


def test_api_version_must_be_6_4_preview():
    url = f"{env('SF_ENDPOINT')}/Resources/Secrets"
    ok = requests.get(url, params={"api-version": "6.4-preview"}, timeout=10)
    assert ok.status_code == 200
    bad = requests.get(url, params={"api-version": "8.2"}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["Error"]["Code"] == "E_INVALIDARG"


def test_injected_faults_are_fabric_errors_with_retry_after(client):
    name = unique("instant-")
    client.mesh_secret.create_or_update(name, props(), name)
    r = requests.post(
        f"{env('SF_ENDPOINT')}/_emulator/faults",
        json={"secret": name, "status": 429, "retryAfter": 7, "times": 1},
        timeout=10,
    )
    assert r.status_code == 204
    # msrest would retry a 429 itself; the raw view shows exactly what the emulator answers.
    raw = requests.get(f"{env('SF_ENDPOINT')}/Resources/Secrets/{name}", params={"api-version": "6.4-preview"}, timeout=10)
    assert raw.status_code == 429
    assert raw.headers["Retry-After"] == "7"
    assert raw.json()["Error"]["Code"] == "FABRIC_E_CENTRAL_SECRET_SERVICE_GENERIC"
    assert client.mesh_secret.get(name).properties.status == "Ready"


def test_every_call_is_401_while_the_central_secret_service_is_removed(client):
    name = unique("instant-")
    client.mesh_secret.create_or_update(name, props(), name)
    control = f"{env('SF_ENDPOINT')}/_emulator/central-secret-service"
    assert requests.post(control, json={"removing": True}, timeout=10).status_code == 204
    try:
        for call in (
            lambda: client.mesh_secret.get(name),
            lambda: client.mesh_secret.list(),
            lambda: client.mesh_secret_value.add_value(name, "v1", "v1", value="x"),
        ):
            with pytest.raises(FabricErrorException) as excinfo:
                call()
            assert excinfo.value.response.status_code == 401
    finally:
        requests.post(control, json={"removing": False}, timeout=10)
    assert client.mesh_secret.get(name).properties.status == "Ready"


def test_bearer_token_listener():
    token = open(env("SF_TOKEN_FILE")).read().strip()
    good = ServiceFabricClientAPIs(BasicTokenAuthentication({"access_token": token}), base_url=env("SF_TOKEN_ENDPOINT"))
    good.config.connection.verify = env("SF_CA_CERT")
    name = unique("instant-")
    good.mesh_secret.create_or_update(name, props(), name)
    assert good.mesh_secret.get(name).name == name

    bad = ServiceFabricClientAPIs(BasicTokenAuthentication({"access_token": "wrong"}), base_url=env("SF_TOKEN_ENDPOINT"))
    bad.config.connection.verify = env("SF_CA_CERT")
    with pytest.raises(FabricErrorException) as excinfo:
        bad.mesh_secret.get(name)
    assert excinfo.value.response.status_code == 401


def test_client_certificate_listener():
    good = ServiceFabricClientAPIs(Authentication(), base_url=env("SF_MTLS_ENDPOINT"))
    good.config.connection.verify = env("SF_CA_CERT")
    good.config.connection.cert = (env("SF_CLIENT_CERT"), env("SF_CLIENT_KEY"))
    name = unique("instant-")
    good.mesh_secret.create_or_update(name, props(), name)
    good.mesh_secret_value.add_value(name, "v1", "v1", value="over-mtls")
    assert good.mesh_secret_value.show(name, "v1").value == "over-mtls"

    stranger = ServiceFabricClientAPIs(Authentication(), base_url=env("SF_MTLS_ENDPOINT"))
    stranger.config.connection.verify = env("SF_CA_CERT")
    stranger.config.connection.cert = (env("SF_STRANGER_CERT"), env("SF_STRANGER_KEY"))
    stranger.config.retry_policy.retries = 0
    with pytest.raises(Exception) as excinfo:
        stranger.mesh_secret.get(name)
    assert not isinstance(excinfo.value, FabricErrorException)
