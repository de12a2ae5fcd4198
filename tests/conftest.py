from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer
from PIL import Image

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


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3/SNS/SQS server on a free loopback port, for tests with real HTTP and processes."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def slow_jpeg(tmp_path_factory) -> bytes:
    """A progressive 81 MP noise JPEG (64 MB): about two seconds to render on a 2-core machine."""
    path = tmp_path_factory.mktemp("images") / "slow.jpg"
    Image.effect_noise((9000, 9000), 60).convert("RGB").save(path, "JPEG", quality=95, progressive=True)
    return path.read_bytes()
