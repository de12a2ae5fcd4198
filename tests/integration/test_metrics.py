"""The worker's Prometheus metrics, scraped after real work: the sum of its pool processes."""

from __future__ import annotations

import httpx

from s3thumbs.events import ObjectEvent
from tests.support import images
from tests.support.buckets import s3_client
from tests.support.metrics import samples, value
from tests.support.processes import s3thumbs_env, wait_for, worker
from tests.support.publishing import publish_events
from tests.support.servers import free_port


def test_the_worker_serves_the_sum_of_its_pool_processes(moto_server_url, redis_factory, tmp_path):
    s3 = s3_client(moto_server_url)
    s3.create_bucket(Bucket="metrics")
    picture = images.jpeg(640, 480)
    s3.put_object(Bucket="metrics", Key="a.jpg", Body=picture)
    s3.put_object(Bucket="metrics", Key="b.jpg", Body=picture)
    s3.put_object(Bucket="metrics", Key="broken.jpg", Body=b"no image here")
    server = redis_factory()
    port = free_port()
    env = s3thumbs_env(
        broker_url=server.url_for(0),
        result_backend=server.url_for(1),
        s3_endpoint_url=moto_server_url,
        sizes="64x64",
        metrics_port=str(port),
    )
    url = f"http://127.0.0.1:{port}/metrics"

    with worker(env, tmp_path / "worker.log", "--concurrency", "2"):
        publish_events(
            server.url_for(0),
            [ObjectEvent("created", "metrics", key, "test") for key in ("a.jpg", "b.jpg", "broken.jpg")],
        )

        def finished() -> bool:
            text = httpx.get(url, timeout=2).text
            return (
                value(text, "s3thumbs_tasks_total", task="s3thumbs.thumbnail", outcome="written") == 2
                and value(text, "s3thumbs_tasks_total", task="s3thumbs.thumbnail", outcome="failed") == 1
            )

        wait_for(finished, 60, "the worker's metrics to count three tasks")
        text = httpx.get(url, timeout=2).text

    assert value(text, "s3thumbs_source_bytes_read_total") == 2 * len(picture)
    assert value(text, "s3thumbs_thumbnail_bytes_written_total") > 0
    assert value(text, "s3thumbs_task_seconds_count") == 2
    assert value(text, "s3thumbs_queue_depth") == 0
    assert ("s3thumbs_queue_depth", ()) in samples(text)
