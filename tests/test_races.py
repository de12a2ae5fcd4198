"""Duplicates and races: the same event twice gives the same thumbnails; the last content always wins."""

from __future__ import annotations

import io
import time
import uuid

import pytest
from celery.result import AsyncResult
from PIL import Image

from s3thumbs import celery_app
from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from s3thumbs.messages import task_id
from tests.support.publishing import publish_events
from tests.services import empty_redis, s3_client, s3thumbs_env, wait_for, worker

SIZES = ("128x128", "512x512", "1024x1024")


@pytest.fixture
def env(moto_endpoint, redis_server):
    return s3thumbs_env(**empty_redis(redis_server, 11, 12),
                        s3_endpoint_url=moto_endpoint)


@pytest.fixture
def bucket(moto_endpoint):
    name = f"race-{uuid.uuid4().hex[:10]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


def jpeg(width: int, height: int, colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def publish(env: dict[str, str], *events: ObjectEvent) -> list[AsyncResult]:
    settings = Settings.from_env(env)
    for event in events:  # one publish per event: each is a delivery of its own
        publish_events(settings.broker_url, [event])
    results_app = celery_app.create_app(settings)
    return [AsyncResult(task_id(event), app=results_app) for event in events]


def thumbnails(s3, bucket: str, key: str) -> dict[str, tuple[bytes, str]]:
    found = {}
    for size in SIZES:
        obj = s3.get_object(Bucket=bucket, Key=f"thumbnails/{size}/{key}")
        found[size] = (obj["Body"].read(), obj["Metadata"]["s3thumbs-source-etag"])
    return found


def test_the_same_event_twice_at_once_gives_identical_thumbnails_and_no_error(moto_endpoint, env, bucket, tmp_path):
    s3 = s3_client(moto_endpoint)
    etag = s3.put_object(Bucket=bucket, Key="twice.jpg", Body=jpeg(3000, 2000, "coral"))["ETag"].strip('"')
    event = ObjectEvent("created", bucket, "twice.jpg", "ObjectCreated:Put", etag=etag)
    with worker(env, tmp_path / "worker.log", "--concurrency", "2") as service:
        [first, second] = publish(env, event, ObjectEvent("created", bucket, "twice.jpg", "ObjectCreated:Put",
                                                          etag=etag, sequencer="2"))
        for result in (first, second):
            wait_for(result.ready, 30, "both deliveries to finish")
            assert result.state == "SUCCESS", result.result
            assert result.result["status"] in ("written", "current")
        assert "ERROR" not in service.log()
    once = thumbnails(s3, bucket, "twice.jpg")
    assert {source for _, source in once.values()} == {etag}
    rendered = {size: Image.open(io.BytesIO(body)).size for size, (body, _) in once.items()}
    assert rendered == {"128x128": (128, 85), "512x512": (512, 341), "1024x1024": (1024, 683)}


def test_an_old_event_after_an_overwrite_leaves_the_new_content(moto_endpoint, env, bucket, tmp_path):
    s3 = s3_client(moto_endpoint)
    old = s3.put_object(Bucket=bucket, Key="photo.jpg", Body=jpeg(1600, 1200, "red"))["ETag"].strip('"')
    new = s3.put_object(Bucket=bucket, Key="photo.jpg", Body=jpeg(1200, 1600, "blue"))["ETag"].strip('"')
    with worker(env, tmp_path / "worker.log"):
        [late, current] = publish(env, ObjectEvent("created", bucket, "photo.jpg", "ObjectCreated:Put", etag=new),
                                  ObjectEvent("created", bucket, "photo.jpg", "ObjectCreated:Put", etag=old))
        for result in (late, current):
            wait_for(result.ready, 30, "both events to be handled")
    final = thumbnails(s3, bucket, "photo.jpg")
    assert {source for _, source in final.values()} == {new}
    assert Image.open(io.BytesIO(final["1024x1024"][0])).size == (768, 1024)


@pytest.mark.slow
def test_an_overwrite_during_rendering_is_not_overwritten_by_stale_thumbnails(moto_endpoint, env, bucket,
                                                                             slow_jpeg, tmp_path):
    s3 = s3_client(moto_endpoint)
    old = s3.put_object(Bucket=bucket, Key="racy.jpg", Body=slow_jpeg)["ETag"].strip('"')
    with worker(env, tmp_path / "worker.log") as service:
        [result] = publish(env, ObjectEvent("created", bucket, "racy.jpg", "ObjectCreated:Put", etag=old))
        service.wait_log("] received")
        time.sleep(0.5)  # past the task's first look at the source, well inside its download and render
        new = s3.put_object(Bucket=bucket, Key="racy.jpg", Body=jpeg(640, 480, "green"))["ETag"].strip('"')
        wait_for(result.ready, 60, "the task to settle")
        assert result.state == "SUCCESS", result.result
        assert f"s3://{bucket}/racy.jpg changed" in service.log()
    final = thumbnails(s3, bucket, "racy.jpg")
    assert {source for _, source in final.values()} == {new}
    assert Image.open(io.BytesIO(final["1024x1024"][0])).size == (640, 480)
