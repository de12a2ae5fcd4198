"""Backfill against real servers: failure markers in Redis, and a real worker draining what it enqueued."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from s3thumbs.failures import FAILED, FailureMarkers
from tests.support.backfill import SIZES, enqueued, plan, thumbnails, tiny_png, upload
from tests.support.buckets import s3_client
from tests.support.processes import run_s3thumbs, s3thumbs_env, wait_for, worker


def test_sources_that_failed_for_good_wait_for_a_change_or_retry_failed(mocked_storage, mocked_s3, redis_factory):
    markers = FailureMarkers.from_backend(redis_factory().url_for(1))
    backfill_plan = plan(mocked_storage, markers=markers)
    broken = upload(mocked_s3, "broken.jpg", b"not a jpeg")
    markers.mark("photos", "broken.jpg", broken, "cannot decode image")
    old = upload(mocked_s3, "fixed.jpg", b"was broken")
    markers.mark("photos", "fixed.jpg", old, "cannot decode image")
    upload(mocked_s3, "fixed.jpg")  # re-uploaded since: the marker is for other content

    summary, keys = enqueued(backfill_plan)
    assert keys == ["fixed.jpg"]
    assert summary.line(dry_run=False) == (
        "2 images: 0 current, 1 missing, 0 stale, 1 failed for good "
        "(left alone; --retry-failed enqueues them); enqueued 1"
    )

    summary, keys = enqueued(backfill_plan, retry_failed=True)
    assert keys == ["broken.jpg", "fixed.jpg"]
    assert (summary.retried, summary.failed) == (1, 0)


@pytest.mark.slow
def test_a_second_backfill_after_the_worker_drained_the_queue_enqueues_nothing(
    moto_server_url, redis_factory, tmp_path
):
    """The acceptance run: 2,000 keys, 10 % current, one broken; a real worker drains the queue."""
    s3 = s3_client(moto_server_url)
    s3.create_bucket(Bucket="backfill")
    keys = [f"in/{i:05d} ü+.png" for i in range(2000)]
    etag = upload(s3, keys[0], bucket="backfill")
    broken = keys[7]

    def put(key: str) -> None:
        s3.put_object(Bucket="backfill", Key=key, Body=b"not an image" if key == broken else tiny_png())
        if keys.index(key) % 10 == 0:
            thumbnails(s3, key, etag, bucket="backfill")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))
    server = redis_factory()
    env = s3thumbs_env(
        broker_url=server.url_for(0),
        result_backend=server.url_for(1),
        s3_endpoint_url=moto_server_url,
        sizes=",".join(map(str, SIZES)),
    )

    def backfill() -> str:
        done = run_s3thumbs(env, "backfill", "backfill", "--prefix", "in/", timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert backfill() == "2000 images: 200 current, 1800 missing, 0 stale, 0 failed for good; enqueued 1800"
    with server.client(0) as broker:
        assert broker.llen("s3thumbs") == 1800
        with worker(env, tmp_path / "worker.log", "--concurrency", "2"):
            with server.client(1) as backend:
                wait_for(
                    lambda: broker.llen("s3thumbs") == 0 and backend.hexists(FAILED, f"backfill/{broken}"),
                    300,
                    "the worker to drain the queue",
                )
            wait_for(lambda: _count(s3, "thumbnails/16x16/in/") == 1999, 60, "every thumbnail")

    second = backfill()
    assert re.fullmatch(
        r"2000 images: 1999 current, 0 missing, 0 stale, 1 failed for good \(left alone; "
        r"--retry-failed enqueues them\); enqueued 0",
        second,
    ), second


def _count(s3, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="backfill", Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)
