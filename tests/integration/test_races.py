"""Duplicates and races: the same event twice gives the same thumbnails; the last content always wins."""

from __future__ import annotations

import io

import pytest
from celery.result import AsyncResult
from PIL import Image

from s3thumbs.events import ObjectEvent
from tests.support import images
from tests.support.buckets import SIZES, fresh_bucket, s3_client
from tests.support.processes import s3thumbs_env, wait_for, worker
from tests.support.publishing import Results, publish_events
from tests.support.servers import empty_redis


@pytest.fixture
def race_env(moto_server_url, redis_server):
    return s3thumbs_env(**empty_redis(redis_server, 11, 12), s3_endpoint_url=moto_server_url)


@pytest.fixture
def race_results(race_env):
    with Results(race_env["S3THUMBS_RESULT_BACKEND"]) as results:
        yield results


@pytest.fixture
def race_bucket(moto_server_url):
    return fresh_bucket(s3_client(moto_server_url), "race")


def publish(env: dict[str, str], results: Results, *events: ObjectEvent) -> list[AsyncResult]:
    """Publish each event as a delivery of its own; their results."""
    broker_url = env["S3THUMBS_BROKER_URL"]
    return [results.of(task_id) for event in events for task_id in publish_events(broker_url, [event])]


def thumbnails(s3, bucket: str, key: str) -> dict[str, tuple[bytes, str]]:
    found = {}
    for size in SIZES:
        obj = s3.get_object(Bucket=bucket, Key=f"thumbnails/{size}/{key}")
        found[size] = (obj["Body"].read(), obj["Metadata"]["s3thumbs-source-etag"])
    return found


def test_the_same_event_twice_at_once_gives_identical_thumbnails_and_no_error(
    moto_server_url, race_env, race_bucket, race_results, tmp_path
):
    s3 = s3_client(moto_server_url)
    etag = s3.put_object(Bucket=race_bucket, Key="twice.jpg", Body=images.jpeg(3000, 2000))["ETag"].strip('"')
    event = ObjectEvent("created", race_bucket, "twice.jpg", "ObjectCreated:Put", etag=etag)
    with worker(race_env, tmp_path / "worker.log", "--concurrency", "2") as service:
        [first, second] = publish(
            race_env,
            race_results,
            event,
            ObjectEvent("created", race_bucket, "twice.jpg", "ObjectCreated:Put", etag=etag, sequencer="2"),
        )
        for result in (first, second):
            wait_for(result.ready, 30, "both deliveries to finish")
            assert result.state == "SUCCESS", result.result
            assert result.result["status"] in ("written", "current")
        assert "ERROR" not in service.log()
    once = thumbnails(s3, race_bucket, "twice.jpg")
    assert {source for _, source in once.values()} == {etag}
    rendered = {size: Image.open(io.BytesIO(body)).size for size, (body, _) in once.items()}
    assert rendered == {"128x128": (128, 85), "512x512": (512, 341), "1024x1024": (1024, 683)}


def test_an_old_event_after_an_overwrite_leaves_the_new_content(
    moto_server_url, race_env, race_bucket, race_results, tmp_path
):
    s3 = s3_client(moto_server_url)
    old = s3.put_object(Bucket=race_bucket, Key="photo.jpg", Body=images.jpeg(1600, 1200))["ETag"].strip('"')
    new = s3.put_object(Bucket=race_bucket, Key="photo.jpg", Body=images.jpeg(1200, 1600))["ETag"].strip('"')
    with worker(race_env, tmp_path / "worker.log"):
        [late, current] = publish(
            race_env,
            race_results,
            ObjectEvent("created", race_bucket, "photo.jpg", "ObjectCreated:Put", etag=new),
            ObjectEvent("created", race_bucket, "photo.jpg", "ObjectCreated:Put", etag=old),
        )
        for result in (late, current):
            wait_for(result.ready, 30, "both events to be handled")
    final = thumbnails(s3, race_bucket, "photo.jpg")
    assert {source for _, source in final.values()} == {new}
    assert Image.open(io.BytesIO(final["1024x1024"][0])).size == (768, 1024)


@pytest.mark.slow
def test_an_overwrite_during_rendering_is_not_overwritten_by_stale_thumbnails(
    moto_server_url, race_env, race_bucket, race_results, fault_proxy, slow_jpeg, tmp_path
):
    """The worker reads S3 through the (fault-free) proxy, so the test sees when the source's download
    has ended: the overwrite comes then, while the old content is being rendered."""
    s3 = s3_client(moto_server_url)
    old = s3.put_object(Bucket=race_bucket, Key="racy.jpg", Body=slow_jpeg)["ETag"].strip('"')
    env = race_env | {"S3THUMBS_S3_ENDPOINT_URL": fault_proxy.url}
    with worker(env, tmp_path / "worker.log") as service:
        [result] = publish(
            env, race_results, ObjectEvent("created", race_bucket, "racy.jpg", "ObjectCreated:Put", etag=old)
        )
        wait_for(lambda: fault_proxy.exchanges("GET", f"/{race_bucket}/racy.jpg"), 30, "the source's download")
        new = s3.put_object(Bucket=race_bucket, Key="racy.jpg", Body=images.jpeg(640, 480))["ETag"].strip('"')
        wait_for(result.ready, 60, "the task to settle")
        assert result.state == "SUCCESS", result.result
        service.wait_log(f"s3://{race_bucket}/racy.jpg changed")  # the log line may follow the result
    final = thumbnails(s3, race_bucket, "racy.jpg")
    assert {source for _, source in final.values()} == {new}
    assert Image.open(io.BytesIO(final["1024x1024"][0])).size == (640, 480)
