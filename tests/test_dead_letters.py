"""Nothing just vanishes: tasks that fail for good leave a dead letter that can be listed and re-driven."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid

import pytest
from celery.result import AsyncResult
from PIL import Image

from s3thumbs import celery_app
from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from s3thumbs.messages import task_id
from tests.support.publishing import publish_events
from tests.services import empty_rabbitmq, empty_redis, object_exists, s3_client, s3thumbs_env, wait_for, worker


@pytest.fixture(params=["redis", "rabbitmq"])
def brokers(request, redis_server):
    """(broker URL, result backend URL), with empty task and dead-letter queues."""
    urls = empty_redis(redis_server, 7, 8)
    if request.param == "redis":
        return urls["broker_url"], urls["result_backend"]
    url = request.getfixturevalue("rabbitmq_server").url
    return empty_rabbitmq(url, "s3thumbs", "s3thumbs.dead"), urls["result_backend"]


def jpeg(width: int = 1200, height: int = 800) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "purple").save(buffer, "JPEG")
    return buffer.getvalue()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "s3thumbs", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def dead_letters(env: dict[str, str]) -> list[dict]:
    result = cli(env, "dead-letters", "list", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def publish(env: dict[str, str], bucket: str, key: str) -> AsyncResult:
    settings = Settings.from_env(env)
    event = ObjectEvent("created", bucket, key, "test")
    publish_events(settings.broker_url, [event])
    return AsyncResult(task_id(event), app=celery_app.create_app(settings))


def test_a_bad_image_leaves_a_dead_letter_that_redrives_once_fixed(moto_endpoint, brokers, tmp_path):
    broker, backend = brokers
    env = s3thumbs_env(broker_url=broker, result_backend=backend, s3_endpoint_url=moto_endpoint)
    s3 = s3_client(moto_endpoint)
    bucket, key = f"dl-{uuid.uuid4().hex[:10]}", "broken/holiday 1+1é.jpg"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=jpeg()[:700])
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
        assert "1 dead letter(s)" in cli(env, "dead-letters").stderr

        s3.put_object(Bucket=bucket, Key=key, Body=jpeg())
        redriven = cli(env, "dead-letters", "redrive")
        assert redriven.returncode == 0, redriven.stderr
        assert f"re-driven s3thumbs.thumbnail s3://{bucket}/{key}" in redriven.stdout
        for size in ("128x128", "512x512", "1024x1024"):
            wait_for(lambda size=size: object_exists(s3, bucket, f"thumbnails/{size}/{key}"), 30, size)
        assert dead_letters(env) == []


def test_exhausted_retries_leave_a_dead_letter(redis_server, tmp_path):
    unreachable = "http://127.0.0.1:9"  # discard port: nothing listens, every S3 call is refused
    env = s3thumbs_env(**empty_redis(redis_server, 7, 8), s3_endpoint_url=unreachable, max_retries="2",
                       visibility_timeout="200")
    with worker(env, tmp_path / "worker.log") as service:
        result = publish(env, "photos", "a.jpg")
        wait_for(result.ready, 60, "the retries to run out")
        assert result.state == "FAILURE"
        log = service.log()
        assert "s3://photos/a.jpg: retry 1 of 2 in" in log
        assert "s3://photos/a.jpg: retry 2 of 2 in" in log
        assert "s3://photos/a.jpg failed for good after 2 retries" in log
        [letter] = dead_letters(env)
        assert letter["retries"] == 2
        assert letter["exception"] == "EndpointConnectionError"


@pytest.mark.slow
def test_a_render_that_outlives_the_time_limit_fails_once_and_is_not_requeued(moto_endpoint, redis_server, slow_jpeg,
                                                                             tmp_path):
    env = s3thumbs_env(**empty_redis(redis_server, 7, 8),
                       s3_endpoint_url=moto_endpoint, task_time_limit="1", max_retries="1",
                       visibility_timeout="30")
    s3 = s3_client(moto_endpoint)
    bucket = f"dl-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
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
        assert not any(k.startswith("thumbnails/") for k in
                       (o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])))
