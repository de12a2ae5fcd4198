"""A pathological image cannot bloat a worker for ever: a pool process that grew past the ceiling is replaced."""

from __future__ import annotations

import pytest

from s3thumbs import celery_app
from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from tests.support import images
from tests.support.buckets import fresh_bucket, object_exists, s3_client
from tests.support.processes import s3thumbs_env, wait_for, worker
from tests.support.publishing import Results, publish_events
from tests.support.servers import empty_redis


@pytest.mark.slow
def test_a_process_that_outgrew_the_memory_ceiling_is_replaced_and_work_goes_on(
    moto_server_url, redis_server, slow_jpeg, tmp_path
):
    env = s3thumbs_env(**empty_redis(redis_server, 14, 15), s3_endpoint_url=moto_server_url)
    assert celery_app.create_app(Settings.from_env(env)).conf.worker_max_memory_per_child > 0
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "mem")
    s3.put_object(Bucket=bucket, Key="huge.jpg", Body=slow_jpeg)
    s3.put_object(Bucket=bucket, Key="small.jpg", Body=images.jpeg(800, 600))

    def publish(key: str):
        [task_id] = publish_events(env["S3THUMBS_BROKER_URL"], [ObjectEvent("created", bucket, key, "test")])
        return results.of(task_id)

    # The same ceiling the default sets, scaled down so that one 81 MP image crosses it.
    with (
        worker(env, tmp_path / "worker.log", "--max-memory-per-child", "200000") as service,
        Results(env["S3THUMBS_RESULT_BACKEND"]) as results,
    ):
        huge = publish("huge.jpg")
        wait_for(huge.ready, 60, "the huge image")
        assert huge.state == "SUCCESS"
        after = publish("small.jpg")
        wait_for(after.ready, 30, "the next image")
        assert after.state == "SUCCESS"
        assert object_exists(s3, bucket, "thumbnails/128x128/small.jpg")
        # Pool processes are numbered as they start: the huge image's was the first, the next one's a new
        # one. (Results are stored before the log lines about them reach the file: wait for those.)
        service.wait_log("ForkPoolWorker-1] s3://" + bucket + "/huge.jpg: wrote")
        service.wait_log("ForkPoolWorker-2] s3://" + bucket + "/small.jpg: wrote")
