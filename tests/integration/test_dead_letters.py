"""Nothing just vanishes: tasks that fail for good leave a dead letter that can be listed and re-driven."""

from __future__ import annotations

import json

import pytest
from celery.result import AsyncResult

from s3thumbs.events import ObjectEvent
from tests.support import images
from tests.support.buckets import fresh_bucket, object_exists, s3_client
from tests.support.processes import run_s3thumbs, s3thumbs_env, wait_for, worker
from tests.support.publishing import Results, publish_events
from tests.support.servers import empty_redis


def dead_letters(env: dict[str, str]) -> list[dict]:
    result = run_s3thumbs(env, "dead-letters", "list", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def publish(env: dict[str, str], bucket: str, key: str) -> AsyncResult:
    """Ask for the thumbnails of ``bucket/key`` (no eTag: whatever is there); the task's result."""
    [task_id] = publish_events(env["S3THUMBS_BROKER_URL"], [ObjectEvent("created", bucket, key, "test")])
    return Results(env["S3THUMBS_RESULT_BACKEND"]).of(task_id)  # the reader lives as long as its result


def test_a_bad_image_leaves_a_dead_letter_that_redrives_once_fixed(moto_server_url, broker_and_backend, tmp_path):
    broker, backend = broker_and_backend
    env = s3thumbs_env(broker_url=broker, result_backend=backend, s3_endpoint_url=moto_server_url)
    s3 = s3_client(moto_server_url)
    bucket, key = fresh_bucket(s3, "dl"), "broken/holiday 1+1é.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=images.jpeg(1200, 800)[:700])
    with worker(env, tmp_path / "worker.log") as service:
        result = publish(env, bucket, key)
        wait_for(result.ready, 30, "the task to fail")
        assert result.state == "FAILURE"
        service.wait_log(f"s3://{bucket}/{key}: dead letter recorded")
        for _ in range(2):  # listing keeps the records
            [letter] = dead_letters(env)
            assert (letter["task"], letter["bucket"], letter["key"]) == ("s3thumbs.thumbnail", bucket, key)
            assert letter["exception"] == "BadImage"
            assert "cannot decode image" in letter["reason"]
            assert letter["task_id"] == result.id
        assert "1 dead letter(s)" in run_s3thumbs(env, "dead-letters").stderr

        s3.put_object(Bucket=bucket, Key=key, Body=images.jpeg(1200, 800))
        redriven = run_s3thumbs(env, "dead-letters", "redrive")
        assert redriven.returncode == 0, redriven.stderr
        assert f"re-driven s3thumbs.thumbnail s3://{bucket}/{key}" in redriven.stdout
        for size in ("128x128", "512x512", "1024x1024"):
            wait_for(lambda size=size: object_exists(s3, bucket, f"thumbnails/{size}/{key}"), 30, size)
        assert dead_letters(env) == []


def test_exhausted_retries_leave_a_dead_letter(redis_server, tmp_path):
    unreachable = "http://127.0.0.1:9"  # discard port: nothing listens, every S3 call is refused
    env = s3thumbs_env(
        **empty_redis(redis_server, 7, 8), s3_endpoint_url=unreachable, max_retries="2", visibility_timeout="200"
    )
    with worker(env, tmp_path / "worker.log") as service:
        result = publish(env, "photos", "a.jpg")
        wait_for(result.ready, 60, "the retries to run out")
        assert result.state == "FAILURE"
        # The result is stored before the worker's log lines about it reach the file.
        service.wait_log("s3://photos/a.jpg failed for good after 2 retries")
        log = service.log()
        assert "s3://photos/a.jpg: retry 1 of 2 in" in log
        assert "s3://photos/a.jpg: retry 2 of 2 in" in log
        service.wait_log("s3://photos/a.jpg: dead letter recorded")
        [letter] = dead_letters(env)
        assert letter["retries"] == 2
        assert letter["exception"] == "EndpointConnectionError"


@pytest.mark.slow
def test_a_render_that_outlives_the_time_limit_fails_once_and_is_not_requeued(
    moto_server_url, redis_server, slow_jpeg, tmp_path
):
    env = s3thumbs_env(
        **empty_redis(redis_server, 7, 8),
        s3_endpoint_url=moto_server_url,
        task_time_limit="1",
        max_retries="1",
        visibility_timeout="30",
    )
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "dl")
    s3.put_object(Bucket=bucket, Key="poison.jpg", Body=slow_jpeg)
    with worker(env, tmp_path / "worker.log") as service:
        result = publish(env, bucket, "poison.jpg")
        wait_for(result.ready, 60, "the task to end")
        assert result.state == "FAILURE"
        service.wait_log(f"s3://{bucket}/poison.jpg: dead letter recorded")
        [letter] = dead_letters(env)
        assert letter["exception"] in ("TimeLimitExceeded", "TimedOut")
        # Bounded: no redelivery, even after the visibility timeout's sweep would have found it.
        redis = redis_server.client(7)
        wait_for(lambda: redis.llen("s3thumbs") == 0 and redis.hlen("unacked") == 0, 30, "an empty queue")
        assert service.log().count(f"Task s3thumbs.thumbnail[{result.id}] received") == 1
        assert not any(
            k.startswith("thumbnails/")
            for k in (o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        )
