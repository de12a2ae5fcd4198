"""End to end on real parts: moto's S3 server → SNS → receiver process → broker → worker process → S3."""

from __future__ import annotations

import io
import struct
import uuid
import zlib

import httpx
import pytest
from celery.result import AsyncResult
from PIL import Image

from s3thumbs import celery_app
from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from s3thumbs.messages import task_id
from tests.services import (
    empty_rabbitmq,
    empty_redis,
    notify_through_sns,
    object_exists,
    receiver,
    s3_client,
    s3thumbs_env,
    wait_for,
    worker,
)

TOKEN = "pipeline-token"
SIZES = {"128x128": (128, 85), "512x512": (512, 341), "1024x1024": (1024, 683)}


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request, redis_server):
    """(broker URL, result backend URL): Redis for both, or RabbitMQ with Redis results."""
    urls = empty_redis(redis_server, 2, 3)
    if request.param == "redis":
        return urls["broker_url"], urls["result_backend"]
    return empty_rabbitmq(request.getfixturevalue("rabbitmq_server").url, "s3thumbs"), urls["result_backend"]


@pytest.fixture
def redis_broker(redis_server):
    urls = empty_redis(redis_server, 2, 3)
    return urls["broker_url"], urls["result_backend"]


@pytest.fixture
def bucket():
    return f"e2e-{uuid.uuid4().hex[:12]}"


def jpeg(width: int = 3000, height: int = 2000) -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").resize((width, height)).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels: a decompression bomb's first bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\0" * 1024)
    chunk += struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return b"\x89PNG\r\n\x1a\n" + chunk


def env_for(moto_endpoint: str, broker_urls: tuple[str, str], **extra: str) -> dict[str, str]:
    broker_url, backend = broker_urls
    return s3thumbs_env(broker_url=broker_url, result_backend=backend, s3_endpoint_url=moto_endpoint,
                        auth_token=TOKEN, **extra)


def assert_thumbnails(s3, bucket: str, key: str, expected: dict[str, tuple[int, int]] = SIZES) -> None:
    for size, dims in expected.items():
        out = f"thumbnails/{size}/{key}"
        # moto's threaded server lists a new object a moment before its headers are stored
        wait_for(lambda out=out: written_by_s3thumbs(s3, bucket, out), 30, f"s3://{bucket}/{out}")
        obj = s3.get_object(Bucket=bucket, Key=out)
        assert obj["ContentType"] == "image/jpeg"
        assert Image.open(io.BytesIO(obj["Body"].read())).size == dims


def written_by_s3thumbs(s3, bucket: str, key: str) -> bool:
    return object_exists(s3, bucket, key) and "s3thumbs-settings" in s3.head_object(Bucket=bucket, Key=key)["Metadata"]


def result_of(backend: str, bucket: str, key: str, etag: str) -> AsyncResult:
    """The result of the task the receiver published for moto's event (task ids are deterministic)."""
    event = ObjectEvent("created", bucket, key, "ObjectCreated:Put", etag=etag)
    app = celery_app.create_app(Settings(broker_url="memory://", result_backend=backend))
    return AsyncResult(task_id(event), app=app)


def test_upload_through_sns_makes_every_size(moto_endpoint, broker, bucket, tmp_path):
    env = env_for(moto_endpoint, broker)
    s3 = s3_client(moto_endpoint)
    key = "photos/summer trip+1é.jpg"
    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log"):
        notify_through_sns(moto_endpoint, bucket, url.replace("://", f"://sns:{TOKEN}@") + "/events")
        etag = s3.put_object(Bucket=bucket, Key=key, Body=jpeg())["ETag"].strip('"')
        assert_thumbnails(s3, bucket, key)
        head = s3.head_object(Bucket=bucket, Key=f"thumbnails/512x512/{key}")
        assert head["Metadata"]["s3thumbs-source-etag"] == etag
        result = result_of(broker[1], bucket, key, etag)
        wait_for(result.ready, 10, "the task's result")
        assert result.result["status"] == "written"
        assert {t["key"] for t in result.result["thumbnails"]} == {f"thumbnails/{s}/{key}" for s in SIZES}


def test_minio_webhook_with_bearer_token_makes_thumbnails(moto_endpoint, redis_broker, bucket, tmp_path):
    env = env_for(moto_endpoint, redis_broker)
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    key = "dir/my photo+1é.jpg"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=jpeg())["ETag"].strip('"')
    body = {"EventName": "s3:ObjectCreated:Put", "Key": f"{bucket}/{key}", "Records": [{
        "eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "", "eventName": "s3:ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "Config",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": "dir%2Fmy+photo%2B1%C3%A9.jpg", "size": 1, "eTag": etag,
                          "contentType": "image/jpeg", "sequencer": "1876A0B2C3D4E5F6"}}}]}
    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log"):
        assert httpx.post(f"{url}/events", json=body).status_code == 401
        response = httpx.post(f"{url}/events", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 202
        assert_thumbnails(s3, bucket, key)


def test_thumbnails_never_cause_thumbnails(moto_endpoint, redis_broker, bucket, tmp_path):
    env = env_for(moto_endpoint, redis_broker)
    s3 = s3_client(moto_endpoint)
    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log") as service:
        notify_through_sns(moto_endpoint, bucket, url.replace("://", f"://sns:{TOKEN}@") + "/events")
        s3.put_object(Bucket=bucket, Key="loop.jpg", Body=jpeg(800, 600))
        assert_thumbnails(s3, bucket, "loop.jpg", {"128x128": (128, 96), "512x512": (512, 384),
                                                   "1024x1024": (800, 600)})
        receiver_log = tmp_path / "receiver.log"
        wait_for(lambda: receiver_log.read_text().count("a thumbnail (output prefix or bucket)") >= 3, 10,
                 "the receiver to skip the three thumbnail events")
        assert receiver_log.read_text().count("published created for") == 1
        service.wait_log("] succeeded in ")
        assert service.log().count("Task s3thumbs.thumbnail[") == 2  # received + succeeded, once
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
        assert keys == ["loop.jpg", "thumbnails/1024x1024/loop.jpg", "thumbnails/128x128/loop.jpg",
                        "thumbnails/512x512/loop.jpg"]


BAD_INPUTS = {
    "truncated.jpg": (jpeg()[:20000], "truncated"),
    "empty.jpg": (b"", "empty file"),
    "notes.jpg": (b"these are not the pixels you are looking for\n" * 10, "not an image"),
    "huge.png": (png_header_only(11000, 10000), "over the limit of 100,000,000"),
    "bomb.png": (png_header_only(30000, 30000), "decompression bomb"),
}


def test_bad_inputs_fail_once_write_nothing_and_the_worker_goes_on(moto_endpoint, redis_broker, bucket, tmp_path):
    env = env_for(moto_endpoint, redis_broker)
    s3 = s3_client(moto_endpoint)
    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log") as service:
        notify_through_sns(moto_endpoint, bucket, url.replace("://", f"://sns:{TOKEN}@") + "/events")
        etags = {key: s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
                 for key, (body, _) in BAD_INPUTS.items()}
        for key, (_, reason) in BAD_INPUTS.items():
            result = result_of(redis_broker[1], bucket, key, etags[key])
            wait_for(result.ready, 30, f"the task for {key} to end")
            assert result.state == "FAILURE"
            assert reason in str(result.result)
            service.wait_log(f"s3://{bucket}/{key} failed for good")
        s3.put_object(Bucket=bucket, Key="good.jpg", Body=jpeg())
        assert_thumbnails(s3, bucket, "good.jpg")
        log = service.log()
        for key in BAD_INPUTS:
            assert log.count(f"s3://{bucket}/{key} failed for good") == 1
        assert "Retry in" not in log
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="thumbnails/")["Contents"]]
        assert all(key.endswith("/good.jpg") for key in listed)
