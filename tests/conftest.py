"""What every kind of test needs: fake AWS credentials, and S3 inside moto's in-process mock."""

from __future__ import annotations

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from s3thumbs.storage import Storage

pytest_plugins = ["tests.support.servers", "tests.support.stores"]

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    """Fake credentials, so no test can ever reach a real AWS account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mocked_s3():
    """An S3 client inside moto's mock, with the bucket ``photos``."""
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="photos")
        yield client


@pytest.fixture
def mocked_storage(mocked_s3):
    return Storage(mocked_s3)


@pytest.fixture
def cli_runner(monkeypatch):
    """A click runner for ``s3thumbs`` commands, without the caller's broker, S3, sizes or token settings."""
    for name in (
        "S3THUMBS_BROKER_URL",
        "S3THUMBS_RESULT_BACKEND",
        "S3THUMBS_S3_ENDPOINT_URL",
        "S3THUMBS_SIZES",
        "S3THUMBS_AUTH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()
