from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from s3thumbs.storage import Storage

pytest_plugins = ["tests.brokers"]

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
def s3():
    """An S3 client inside moto's mock, with the bucket ``photos``."""
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="photos")
        yield client


@pytest.fixture
def storage(s3):
    return Storage(s3)
