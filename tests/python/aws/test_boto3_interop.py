"""What SecretSync wrote to AWS Secrets Manager (moto's server on the test bed), read back with AWS's own SDK.

SecretSync writes through its own Rust client (the ignored Rust test `interop_write` in tests/aws_secrets_manager.rs):
three values on one name (the last back to the first), a label and a description, and bytes that are not UTF-8 on
`<name>-binary`. boto3 then reads the values, the versions, the tags and the description.
"""

import json
import os
import pathlib
import secrets
import subprocess

import boto3
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `make testbed` and source .testbed/env first")
    return value


@pytest.fixture(scope="module")
def sm():
    return boto3.client(
        "secretsmanager",
        endpoint_url=env("AWSSM_ENDPOINT"),
        verify=env("AWSSM_CA_CERT"),
        region_name=env("AWSSM_REGION"),
        aws_access_key_id=env("AWSSM_ACCESS_KEY_ID"),
        aws_secret_access_key=env("AWSSM_SECRET_ACCESS_KEY"),
    )


@pytest.fixture(scope="module")
def written(sm):
    name = "interop-" + secrets.token_hex(4)
    run_env = dict(os.environ, AWSSM_INTEROP_NAME=name)
    out = subprocess.run(
        # --workspace: the feature set `make test` built with, so nothing is compiled again here.
        ["cargo", "test", "--quiet", "--workspace", "--test", "aws_secrets_manager", "--", "--ignored",
         "--exact", "interop_write", "--nocapture"],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("{"))
    yield name, json.loads(line)["digest"]
    for secret in (name, name + "-binary"):
        sm.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)


def test_a_value_back_to_an_earlier_one_is_current_in_a_version_of_its_own(sm, written):
    name, _ = written
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "one"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "two"
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert len(versions) == 3, versions


def test_tags_hold_the_marker_the_digest_and_the_current_version(sm, written):
    name, digest = written
    described = sm.describe_secret(SecretId=name)
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    current = next(v for v, stages in described["VersionIdsToStages"].items() if "AWSCURRENT" in stages)
    assert tags["team"] == "interop"
    assert tags["secretsync-digest"] == digest
    assert tags["secretsync-version"] == current
    assert tags["secretsync-owner"] == "team-a/db"
    assert described["Description"] == "written by SecretSync"
    # The value is never in a tag.
    assert "one" not in tags.values()


def test_bytes_that_are_not_utf8_are_a_secret_binary(sm, written):
    name, _ = written
    value = sm.get_secret_value(SecretId=name + "-binary")
    assert value["SecretBinary"] == bytes([0xFF, 0x00, 0xFE])
    assert "SecretString" not in value
