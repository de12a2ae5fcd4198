"""Prometheus metrics: scraped after real work, the counters have moved."""

from __future__ import annotations

import io

import httpx
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from s3thumbs.events import ObjectEvent
from s3thumbs.receiver import create_app
from tests.support.publishing import Recorded, publish_events
from tests.brokers import free_port
from tests.faults import minio_event
from tests.services import s3_client, s3thumbs_env, wait_for, worker


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_receiver_counts_what_it_received_published_and_skipped():
    published = Recorded()
    with TestClient(create_app(published)) as http:
        before = http.get("/metrics").text
        for key in ("cat.jpg", "thumbnails/128x128/cat.jpg"):
            assert http.post("/events", json=minio_event("photos", key, "e1")).status_code in (200, 202)
        after = http.get("/metrics")

    assert after.headers["content-type"].startswith("text/plain")
    wanted = [("s3thumbs_events_received_total", {}), ("s3thumbs_events_published_total", {}),
              ("s3thumbs_events_skipped_total", {"reason": "a thumbnail (output prefix or bucket)"}),
              ("s3thumbs_publish_seconds_count", {})]
    moved = [value(after.text, name, **labels) - value(before, name, **labels) for name, labels in wanted]
    assert moved == [2, 1, 1, 1]
    assert [e.key for e in published] == ["cat.jpg"]


def test_the_worker_serves_the_sum_of_its_pool_processes(moto_endpoint, redis_factory, tmp_path):
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket="metrics")
    picture = io.BytesIO()
    Image.new("RGB", (640, 480), "orange").save(picture, "JPEG")
    s3.put_object(Bucket="metrics", Key="a.jpg", Body=picture.getvalue())
    s3.put_object(Bucket="metrics", Key="b.jpg", Body=picture.getvalue())
    s3.put_object(Bucket="metrics", Key="broken.jpg", Body=b"no image here")
    server = redis_factory()
    port = free_port()
    env = s3thumbs_env(broker_url=server.url_for(0), result_backend=server.url_for(1), s3_endpoint_url=moto_endpoint,
                       sizes="64x64", metrics_port=str(port))
    url = f"http://127.0.0.1:{port}/metrics"

    with worker(env, tmp_path / "worker.log", "--concurrency", "2"):
        publish_events(server.url_for(0), [ObjectEvent("created", "metrics", key, "test") for key in ("a.jpg", "b.jpg",
                                                                                            "broken.jpg")])

        def finished() -> bool:
            text = httpx.get(url, timeout=2).text
            return value(text, "s3thumbs_tasks_total", task="s3thumbs.thumbnail", outcome="written") == 2 \
                and value(text, "s3thumbs_tasks_total", task="s3thumbs.thumbnail", outcome="failed") == 1

        wait_for(finished, 60, "the worker's metrics to count three tasks")
        text = httpx.get(url, timeout=2).text

    assert value(text, "s3thumbs_source_bytes_read_total") == 2 * len(picture.getvalue())
    assert value(text, "s3thumbs_thumbnail_bytes_written_total") > 0
    assert value(text, "s3thumbs_task_seconds_count") == 2
    assert value(text, "s3thumbs_queue_depth") == 0
    assert ("s3thumbs_queue_depth", ()) in samples(text)
