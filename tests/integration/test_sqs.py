"""End to end through SQS: moto's server → SQS → ``s3thumbs sqs`` process → Redis → worker process → S3."""

from __future__ import annotations

import os
import signal

import pytest

from tests.support import images
from tests.support.buckets import NOTIFIED_EVENTS, assert_thumbnails, client, fresh_bucket, s3_client
from tests.support.processes import Service, s3thumbs_env, wait_for, worker
from tests.support.queues import make_queue, messages_left
from tests.support.servers import empty_redis


def test_upload_through_sqs_makes_every_size(moto_server_url, redis_server, tmp_path):
    env = s3thumbs_env(**empty_redis(redis_server, 5, 6), s3_endpoint_url=moto_server_url)
    s3, sqs = s3_client(moto_server_url), client("sqs", moto_server_url)
    bucket = fresh_bucket(s3, "sqs")
    url, arn = make_queue(sqs, bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": NOTIFIED_EVENTS}]},
    )
    key = "photos/summer trip+1é.jpg"
    consumer = Service(["sqs", url, "--endpoint-url", moto_server_url, "--wait", "1"], env, tmp_path / "sqs.log")
    try:
        with worker(env, tmp_path / "worker.log"):
            consumer.wait_log(f"polling {url}")
            s3.put_object(Bucket=bucket, Key=key, Body=images.jpeg(3000, 2000))
            assert_thumbnails(s3, bucket, key)
            consumer.wait_log("a thumbnail (output prefix or bucket)", count=3)
            wait_for(lambda: messages_left(sqs, url) == 0, 10, "an empty queue")
        assert consumer.log().count(f"published created for s3://{bucket}/{key}") == 1
        assert consumer.log().count("published ") == 1
        os.killpg(consumer.process.pid, signal.SIGTERM)
        assert consumer.process.wait(15) == 0
        with pytest.raises(ProcessLookupError):
            os.killpg(consumer.process.pid, 0)  # nothing left in its process group
        assert "stopped polling" in consumer.log()
    finally:
        consumer.stop()
