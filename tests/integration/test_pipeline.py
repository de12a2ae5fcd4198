"""End to end on real parts: moto's S3 server → SNS → receiver process → broker → worker process → S3."""

from __future__ import annotations

import uuid

import httpx
import pytest

from s3thumbs.events import ObjectEvent
from s3thumbs.messages import task_id
from tests.support import images
from tests.support.buckets import SIZES_OF_3_2, assert_thumbnails, notify_through_sns, s3_client
from tests.support.notifications import minio_webhook
from tests.support.processes import receiver, s3thumbs_env, wait_for, worker
from tests.support.publishing import Results
from tests.support.servers import empty_redis

TOKEN = "pipeline-token"


@pytest.fixture
def redis_broker_and_backend(redis_server) -> tuple[str, str]:
    """(broker URL, result backend URL) on two emptied databases of the session's Redis."""
    urls = empty_redis(redis_server, 2, 3)
    return urls["broker_url"], urls["result_backend"]


@pytest.fixture
def unused_bucket_name() -> str:
    """A bucket name no test has used; the test creates the bucket."""
    return f"e2e-{uuid.uuid4().hex[:12]}"


def env_for(moto_server_url: str, broker_urls: tuple[str, str], **extra: str) -> dict[str, str]:
    broker_url, backend = broker_urls
    return s3thumbs_env(
        broker_url=broker_url, result_backend=backend, s3_endpoint_url=moto_server_url, auth_token=TOKEN, **extra
    )


def published_for_upload(bucket: str, key: str, etag: str) -> str:
    """The id of the task the receiver published for moto's event (task ids are deterministic)."""
    return task_id(ObjectEvent("created", bucket, key, "ObjectCreated:Put", etag=etag))


def test_upload_through_sns_makes_every_size(moto_server_url, broker_and_backend, unused_bucket_name, tmp_path):
    bucket = unused_bucket_name
    env = env_for(moto_server_url, broker_and_backend)
    s3 = s3_client(moto_server_url)
    key = "photos/summer trip+1é.jpg"
    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log"):
        notify_through_sns(moto_server_url, bucket, url.replace("://", f"://sns:{TOKEN}@") + "/events")
        etag = s3.put_object(Bucket=bucket, Key=key, Body=images.jpeg(3000, 2000))["ETag"].strip('"')
        assert_thumbnails(s3, bucket, key)
        head = s3.head_object(Bucket=bucket, Key=f"thumbnails/512x512/{key}")
        assert head["Metadata"]["s3thumbs-source-etag"] == etag
        with Results(broker_and_backend[1]) as results:
            result = results.of(published_for_upload(bucket, key, etag))
            wait_for(result.ready, 10, "the task's result")
            assert result.result["status"] == "written"
            assert {t["key"] for t in result.result["thumbnails"]} == {f"thumbnails/{s}/{key}" for s in SIZES_OF_3_2}


def test_minio_webhook_with_bearer_token_makes_thumbnails(
    moto_server_url, redis_broker_and_backend, unused_bucket_name, tmp_path
):
    bucket = unused_bucket_name
    env = env_for(moto_server_url, redis_broker_and_backend)
    s3 = s3_client(moto_server_url)
    s3.create_bucket(Bucket=bucket)
    key = "dir/my photo+1é.jpg"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=images.jpeg(3000, 2000))["ETag"].strip('"')
    body = minio_webhook(bucket, key, etag)
    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log"):
        assert httpx.post(f"{url}/events", json=body).status_code == 401
        response = httpx.post(f"{url}/events", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 202
        assert_thumbnails(s3, bucket, key)


def test_thumbnails_never_cause_thumbnails(moto_server_url, redis_broker_and_backend, unused_bucket_name, tmp_path):
    bucket = unused_bucket_name
    env = env_for(moto_server_url, redis_broker_and_backend)
    s3 = s3_client(moto_server_url)
    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log") as service:
        notify_through_sns(moto_server_url, bucket, url.replace("://", f"://sns:{TOKEN}@") + "/events")
        s3.put_object(Bucket=bucket, Key="loop.jpg", Body=images.jpeg(800, 600))
        assert_thumbnails(
            s3, bucket, "loop.jpg", {"128x128": (128, 96), "512x512": (512, 384), "1024x1024": (800, 600)}
        )
        receiver_log = tmp_path / "receiver.log"
        wait_for(
            lambda: receiver_log.read_text().count("a thumbnail (output prefix or bucket)") >= 3,
            10,
            "the receiver to skip the three thumbnail events",
        )
        assert receiver_log.read_text().count("published created for") == 1
        service.wait_log("] succeeded in ")
        assert service.log().count("Task s3thumbs.thumbnail[") == 2  # received + succeeded, once
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
        assert keys == [
            "loop.jpg",
            "thumbnails/1024x1024/loop.jpg",
            "thumbnails/128x128/loop.jpg",
            "thumbnails/512x512/loop.jpg",
            "thumbnails/manifest/loop.jpg.json",
        ]


BAD_INPUTS = {
    "truncated.jpg": (images.truncated(images.jpeg(3000, 2000)), "truncated"),
    "empty.jpg": (images.EMPTY, "empty file"),
    "notes.jpg": (b"these are not the pixels you are looking for\n" * 10, "not an image"),
    "huge.png": (images.header_only_png(11000, 10000), "over the limit of 100,000,000"),
    "bomb.png": (images.header_only_png(30000, 30000), "decompression bomb"),
}


def test_bad_inputs_fail_once_write_nothing_and_the_worker_goes_on(
    moto_server_url, redis_broker_and_backend, unused_bucket_name, tmp_path
):
    bucket = unused_bucket_name
    env = env_for(moto_server_url, redis_broker_and_backend)
    s3 = s3_client(moto_server_url)
    with (
        receiver(env, tmp_path / "receiver.log") as url,
        worker(env, tmp_path / "worker.log") as service,
        Results(redis_broker_and_backend[1]) as results,
    ):
        notify_through_sns(moto_server_url, bucket, url.replace("://", f"://sns:{TOKEN}@") + "/events")
        etags = {
            key: s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
            for key, (body, _) in BAD_INPUTS.items()
        }
        for key, (_, reason) in BAD_INPUTS.items():
            result = results.of(published_for_upload(bucket, key, etags[key]))
            wait_for(result.ready, 30, f"the task for {key} to end")
            assert result.state == "FAILURE"
            assert reason in str(result.result)
            service.wait_log(f"s3://{bucket}/{key} failed for good")
        s3.put_object(Bucket=bucket, Key="good.jpg", Body=images.jpeg(3000, 2000))
        assert_thumbnails(s3, bucket, "good.jpg")
        log = service.log()
        for key in BAD_INPUTS:
            assert log.count(f"s3://{bucket}/{key} failed for good") == 1
        assert "Retry in" not in log
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="thumbnails/")["Contents"]]
        assert all(key.endswith(("/good.jpg", "/good.jpg.json")) for key in listed)
