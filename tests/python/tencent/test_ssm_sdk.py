"""Fidelity of the Tencent SSM emulator, proven with Tencent's own Python SDK (tencentcloud-sdk-python-ssm).

Every action SecretSync uses, and the error cases it maps, go through the SDK's real signing and response
parsing against the emulator started by `make testbed` (endpoint and key pairs from .testbed/env).
"""

import base64
import json
import os
import time
import urllib.request
import uuid

import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ssm.v20190923 import models, ssm_client


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `make testbed` and source .testbed/env first")
    return value


def client(secret_id=None, secret_key=None, token=None, unsigned_payload=False):
    endpoint = env("SSM_ENDPOINT")
    http = HttpProfile(endpoint=endpoint.split("://", 1)[1], protocol="http", reqTimeout=10)
    profile = ClientProfile(httpProfile=http)
    profile.unsignedPayload = unsigned_payload
    cred = credential.Credential(
        secret_id or env("SSM_SDK_SECRET_ID"), secret_key or env("SSM_SDK_SECRET_KEY"), token
    )
    return ssm_client.SsmClient(cred, env("SSM_REGION"), profile)


def req(cls, **fields):
    r = cls()
    r.from_json_string(json.dumps(fields))
    return r


def name():
    return "sdk-" + uuid.uuid4().hex[:12]


def code_of(call):
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    assert info.value.get_request_id(), "errors carry a RequestId"
    return info.value.get_code()


def create(c, secret, value="v1", version="v1", description="made by the SDK test"):
    return c.CreateSecret(
        req(
            models.CreateSecretRequest,
            SecretName=secret,
            VersionId=version,
            SecretString=value,
            Description=description,
        )
    )


def get(c, secret, version):
    return c.GetSecretValue(req(models.GetSecretValueRequest, SecretName=secret, VersionId=version))


def test_create_get_describe_update_put_list_and_delete():
    c = client()
    secret = name()
    created = create(c, secret)
    assert created.SecretName == secret and created.VersionId == "v1" and created.RequestId

    got = get(c, secret, "v1")
    assert (got.SecretString, got.VersionId) == ("v1", "v1")

    described = c.DescribeSecret(req(models.DescribeSecretRequest, SecretName=secret))
    assert described.Status == "Enabled"
    assert described.Description == "made by the SDK test"
    assert described.CreateTime > 0

    updated = c.UpdateSecret(
        req(models.UpdateSecretRequest, SecretName=secret, VersionId="v1", SecretString="v1-new")
    )
    assert updated.VersionId == "v1"
    assert get(c, secret, "v1").SecretString == "v1-new"

    binary = base64.b64encode(bytes([0, 255, 1, 254])).decode()
    put = c.PutSecretValue(
        req(models.PutSecretValueRequest, SecretName=secret, VersionId="v2", SecretBinary=binary)
    )
    assert put.VersionId == "v2"
    got = get(c, secret, "v2")
    assert got.SecretBinary == binary and got.SecretString == ""

    versions = c.ListSecretVersionIds(req(models.ListSecretVersionIdsRequest, SecretName=secret))
    assert [v.VersionId for v in versions.Versions] == ["v1", "v2"]

    c.UpdateDescription(req(models.UpdateDescriptionRequest, SecretName=secret, Description="changed"))
    assert c.DescribeSecret(req(models.DescribeSecretRequest, SecretName=secret)).Description == "changed"

    listed = c.ListSecrets(req(models.ListSecretsRequest, SearchSecretName=secret))
    assert listed.TotalCount == 1
    assert listed.SecretMetadatas[0].SecretName == secret
    assert listed.SecretMetadatas[0].Status == "Enabled"

    c.DeleteSecretVersion(req(models.DeleteSecretVersionRequest, SecretName=secret, VersionId="v2"))
    versions = c.ListSecretVersionIds(req(models.ListSecretVersionIdsRequest, SecretName=secret))
    assert [v.VersionId for v in versions.Versions] == ["v1"]

    # Deleting needs a disabled secret; a disabled secret cannot be read.
    assert code_of(lambda: c.DeleteSecret(req(models.DeleteSecretRequest, SecretName=secret))) == "OperationDenied"
    c.DisableSecret(req(models.DisableSecretRequest, SecretName=secret))
    assert code_of(lambda: get(c, secret, "v1")) == "ResourceUnavailable.ResourceDisabled"
    deleted = c.DeleteSecret(req(models.DeleteSecretRequest, SecretName=secret, RecoveryWindowInDays=0))
    assert deleted.SecretName == secret
    assert code_of(lambda: c.DescribeSecret(req(models.DescribeSecretRequest, SecretName=secret))) == "ResourceNotFound"


def test_recovery_window_and_restore():
    c = client()
    secret = name()
    create(c, secret)
    c.DisableSecret(req(models.DisableSecretRequest, SecretName=secret))
    c.DeleteSecret(req(models.DeleteSecretRequest, SecretName=secret, RecoveryWindowInDays=7))
    assert c.DescribeSecret(req(models.DescribeSecretRequest, SecretName=secret)).Status == "PendingDelete"
    assert code_of(lambda: get(c, secret, "v1")) == "ResourceUnavailable.ResourcePendingDeleted"
    assert code_of(lambda: create(c, secret)) == "ResourceInUse.SecretExists"
    c.RestoreSecret(req(models.RestoreSecretRequest, SecretName=secret))
    assert c.DescribeSecret(req(models.DescribeSecretRequest, SecretName=secret)).Status == "Disabled"


def test_name_version_and_existence_rules():
    c = client()
    secret = name()
    create(c, secret)
    assert code_of(lambda: create(c, secret)) == "ResourceInUse.SecretExists"
    assert code_of(lambda: create(c, "-starts-with-dash")) == "InvalidParameterValue"
    assert code_of(lambda: create(c, "a" * 129)) == "InvalidParameterValue"
    assert code_of(lambda: create(c, "has.dot")) == "InvalidParameterValue"
    assert code_of(lambda: create(c, name(), version="." + "v")) == "InvalidParameterValue"
    assert code_of(lambda: create(c, name(), version="v" * 65)) == "InvalidParameterValue"
    assert code_of(lambda: create(c, name(), value="x" * (32 * 1024 + 1))) == "InvalidParameterValue"
    assert code_of(lambda: create(c, name(), description="d" * 2049)) == "InvalidParameterValue"
    put = lambda v: c.PutSecretValue(  # noqa: E731
        req(models.PutSecretValueRequest, SecretName=secret, VersionId=v, SecretString=v)
    )
    assert code_of(lambda: put("v1")) == "ResourceInUse.VersionIdExists"
    assert code_of(lambda: get(c, secret, "nope")) == "ResourceNotFound"
    assert code_of(lambda: get(c, name(), "v1")) == "ResourceNotFound"
    missing = lambda: c.UpdateSecret(  # noqa: E731
        req(models.UpdateSecretRequest, SecretName=secret, VersionId="nope", SecretString="x")
    )
    assert code_of(missing) == "ResourceNotFound"


def test_ten_version_cap():
    c = client()
    secret = name()
    create(c, secret)
    for i in range(2, 11):
        c.PutSecretValue(
            req(models.PutSecretValueRequest, SecretName=secret, VersionId=f"v{i}", SecretString=str(i))
        )
    over = lambda: c.PutSecretValue(  # noqa: E731
        req(models.PutSecretValueRequest, SecretName=secret, VersionId="v11", SecretString="11")
    )
    assert code_of(over) == "LimitExceeded"
    c.DeleteSecretVersion(req(models.DeleteSecretVersionRequest, SecretName=secret, VersionId="v1"))
    over()
    assert get(c, secret, "v11").SecretString == "11"


def test_signature_and_credential_failures():
    secret = name()
    describe = lambda cl: cl.DescribeSecret(req(models.DescribeSecretRequest, SecretName=secret))  # noqa: E731
    assert code_of(lambda: describe(client(secret_key="wrong-key"))) == "AuthFailure.SignatureFailure"
    assert code_of(lambda: describe(client(secret_id="AKID" + "0" * 32))) == "AuthFailure.SecretIdNotFound"
    assert code_of(lambda: describe(client(secret_id="nope"))) == "AuthFailure.InvalidSecretId"
    temp_id, temp_key = env("SSM_TEMP_SECRET_ID"), env("SSM_TEMP_SECRET_KEY")
    assert code_of(lambda: describe(client(temp_id, temp_key))) == "AuthFailure.TokenFailure"
    assert code_of(lambda: describe(client(temp_id, temp_key, "bad-token"))) == "AuthFailure.TokenFailure"
    # The right token gets through authentication to the business answer.
    assert code_of(lambda: describe(client(temp_id, temp_key, env("SSM_TEMP_TOKEN")))) == "ResourceNotFound"
    ro = client(env("SSM_READONLY_SECRET_ID"), env("SSM_READONLY_SECRET_KEY"))
    assert code_of(lambda: create(ro, secret)) == "UnauthorizedOperation"
    assert code_of(lambda: describe(ro)) == "ResourceNotFound"


def test_unsigned_payload_and_stale_timestamps():
    secret = name()
    create(client(), secret)
    # The SDK's unsigned-payload mode signs the literal UNSIGNED-PAYLOAD instead of the body.
    unsigned = client(unsigned_payload=True)
    assert unsigned.DescribeSecret(req(models.DescribeSecretRequest, SecretName=secret)).Status == "Enabled"
    # A timestamp ten minutes old, correctly signed for that time, is refused as expired.
    real_time = time.time
    try:
        time.time = lambda: real_time() - 600
        stale = lambda: client().DescribeSecret(req(models.DescribeSecretRequest, SecretName=secret))  # noqa: E731
        assert code_of(stale) == "AuthFailure.SignatureExpire"
    finally:
        time.time = real_time


def test_rate_limit_answers_request_limit_exceeded():
    from concurrent.futures import ThreadPoolExecutor

    def one(_):
        try:
            client(ro_id, ro_key).ListSecrets(req(models.ListSecretsRequest, Limit=1))
            return "ok"
        except TencentCloudSDKException as e:
            return e.get_code()

    # The read-only key pair, whose ListSecrets nothing else uses (the limit counts per key pair and action).
    ro_id, ro_key = env("SSM_READONLY_SECRET_ID"), env("SSM_READONLY_SECRET_KEY")

    # One key pair and one action, 16 at a time: well over 50 a second even on a slow machine.
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(one, range(400)))
    assert set(codes) <= {"ok", "RequestLimitExceeded"}, set(codes)
    assert "RequestLimitExceeded" in codes
    url = f"{env('SSM_ENDPOINT')}/_emulator/stats?secretId={ro_id}"
    stats = json.load(urllib.request.urlopen(url))
    assert stats["actions"]["ListSecrets"]["limited"] >= 1
    assert stats["actions"]["ListSecrets"]["maxPerSecond"] > stats["rateLimit"]


def test_unknown_region_is_refused():
    c = client()
    c.region = "xx-nowhere-1"
    assert code_of(lambda: c.DescribeSecret(req(models.DescribeSecretRequest, SecretName=name()))) == "UnsupportedRegion"


def test_unknown_actions_and_parameters_are_refused():
    c = client()
    assert code_of(lambda: c.call_json("NoSuchAction", {})) == "InvalidAction"
    assert code_of(lambda: c.call_json("DescribeSecret", {"SecretName": name(), "Bogus": 1})) == "UnknownParameter"
    assert code_of(lambda: c.call_json("DescribeSecret", {})) == "MissingParameter"
    both = {"SecretName": name(), "VersionId": "v1", "SecretString": "a", "SecretBinary": "YQ=="}
    assert code_of(lambda: c.call_json("CreateSecret", both)) == "InvalidParameter"
    bad_b64 = {"SecretName": name(), "VersionId": "v1", "SecretBinary": "***"}
    assert code_of(lambda: c.call_json("CreateSecret", bad_b64)) == "InvalidParameterValue"
