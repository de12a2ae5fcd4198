"""Backfill: only what lacks current thumbnails is enqueued; failures are left alone until asked."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from s3thumbs.backfill import Plan, run
from s3thumbs.failures import FAILED, FailureMarkers
from s3thumbs.imaging import RenderSpec
from s3thumbs.keys import Layout, Size
from tests.services import s3_client, s3thumbs_env, wait_for, worker

SIZES = (Size(64, 64), Size(16, 16))
FINGERPRINT = RenderSpec(SIZES).fingerprint
LAYOUT = Layout()


def tiny_png(shade: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, 100, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def upload(s3, key: str, body: bytes | None = None) -> str:
    s3.put_object(Bucket="photos", Key=key, Body=tiny_png() if body is None else body)
    return s3.head_object(Bucket="photos", Key=key)["ETag"].strip('"')


def thumbnails(s3, key: str, etag: str, fingerprint: str = FINGERPRINT, sizes=SIZES) -> None:
    """Thumbnails as the worker writes them: every size, with the source eTag and settings hash."""
    for size in sizes:
        s3.put_object(Bucket="photos", Key=LAYOUT.thumbnail_key(key, size), Body=b"t",
                      Metadata={"s3thumbs-source-etag": etag, "s3thumbs-settings": fingerprint})


@pytest.fixture
def plan(storage):
    return Plan(storage, LAYOUT, SIZES, FINGERPRINT)


def enqueued(plan, prefix: str = "", **options):
    published: list = []
    summary = run(plan, "photos", prefix, published.extend, **options)
    assert sorted(e.key for e in published) == sorted(summary.keys)
    assert all(e.bucket == "photos" and e.action == "created" for e in published)
    return summary, sorted(e.key for e in published)


def test_only_missing_and_stale_sources_are_enqueued(s3, plan):
    thumbnails(s3, "current.jpg", upload(s3, "current.jpg"))
    upload(s3, "missing.jpg")
    thumbnails(s3, "one size short.png", upload(s3, "one size short.png"), sizes=SIZES[:1])
    thumbnails(s3, "overwritten.jpg", upload(s3, "overwritten.jpg"))
    upload(s3, "overwritten.jpg", tiny_png(shade=99))  # new content: the thumbnails are of the old
    thumbnails(s3, "old settings.jpg", upload(s3, "old settings.jpg"), fingerprint="0123456789ab")
    upload(s3, "notes.txt", b"not an image")

    summary, keys = enqueued(plan)

    assert keys == ["missing.jpg", "old settings.jpg", "one size short.png", "overwritten.jpg"]
    assert (summary.sources, summary.current, summary.missing, summary.stale) == (5, 1, 2, 2)
    assert summary.line(dry_run=False) == "5 images: 1 current, 2 missing, 2 stale, 0 failed for good; enqueued 4"


def test_a_dry_run_publishes_nothing_and_counts_the_same(s3, plan):
    upload(s3, "a.jpg")
    thumbnails(s3, "b.jpg", upload(s3, "b.jpg"))

    summary = run(plan, "photos", "", None)

    assert summary.keys == ["a.jpg"]
    assert summary.line(dry_run=True) == "2 images: 1 current, 1 missing, 0 stale, 0 failed for good; would enqueue 1"


def test_the_prefix_and_unusual_keys_are_respected(s3, plan):
    for key in ("in/a b+c ü.jpg", "in/sub/d.webp", "out/e.jpg"):
        upload(s3, key)

    _, keys = enqueued(plan, "in/")

    assert keys == ["in/a b+c ü.jpg", "in/sub/d.webp"]


def test_sources_that_failed_for_good_wait_for_a_change_or_retry_failed(storage, s3, redis_factory):
    markers = FailureMarkers.from_backend(redis_factory().url_for(1))
    plan = Plan(storage, LAYOUT, SIZES, FINGERPRINT, markers)
    broken = upload(s3, "broken.jpg", b"not a jpeg")
    markers.mark("photos", "broken.jpg", broken, "cannot decode image")
    old = upload(s3, "fixed.jpg", b"was broken")
    markers.mark("photos", "fixed.jpg", old, "cannot decode image")
    upload(s3, "fixed.jpg")  # re-uploaded since: the marker is for other content

    summary, keys = enqueued(plan)
    assert keys == ["fixed.jpg"]
    assert summary.line(dry_run=False) == ("2 images: 0 current, 1 missing, 0 stale, 1 failed for good "
                                           "(left alone; --retry-failed enqueues them); enqueued 1")

    summary, keys = enqueued(plan, retry_failed=True)
    assert keys == ["broken.jpg", "fixed.jpg"]
    assert (summary.retried, summary.failed) == (1, 0)


def test_thousands_of_keys_over_several_pages_enqueue_exactly_what_is_not_current(s3, plan):
    keys = [f"photos/{i:05d}.jpg" for i in range(2000)]
    etag = upload(s3, keys[0])
    for key in keys[1:]:
        s3.put_object(Bucket="photos", Key=key, Body=tiny_png())
    current = set(keys[::10])
    for key in current:
        thumbnails(s3, key, etag)
    batches: list[int] = []

    summary = run(plan, "photos", "", lambda events: batches.append(len(events)))

    assert sorted(summary.keys) == sorted(set(keys) - current)
    assert (summary.sources, summary.current, summary.missing) == (2000, 200, 1800)
    assert sum(batches) == 1800 and max(batches) <= 200


@pytest.mark.slow
def test_a_second_backfill_after_the_worker_drained_the_queue_enqueues_nothing(moto_endpoint, redis_factory,
                                                                                tmp_path):
    """The acceptance run: 2,000 keys, 10 % current, one broken; a real worker drains the queue."""
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket="backfill")
    keys = [f"in/{i:05d} ü+.png" for i in range(2000)]
    s3.put_object(Bucket="backfill", Key=keys[0], Body=tiny_png())
    etag = s3.head_object(Bucket="backfill", Key=keys[0])["ETag"].strip('"')
    broken = keys[7]

    def put(key: str) -> None:
        s3.put_object(Bucket="backfill", Key=key, Body=b"not an image" if key == broken else tiny_png())
        if keys.index(key) % 10 == 0:
            for size in SIZES:
                s3.put_object(Bucket="backfill", Key=LAYOUT.thumbnail_key(key, size), Body=b"t",
                              Metadata={"s3thumbs-source-etag": etag, "s3thumbs-settings": FINGERPRINT})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, keys))
    server = redis_factory()
    env = s3thumbs_env(broker_url=server.url_for(0), result_backend=server.url_for(1), s3_endpoint_url=moto_endpoint,
                       sizes=",".join(map(str, SIZES)))

    def backfill() -> str:
        done = subprocess.run([sys.executable, "-m", "s3thumbs", "backfill", "backfill", "--prefix", "in/"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert backfill() == "2000 images: 200 current, 1800 missing, 0 stale, 0 failed for good; enqueued 1800"
    with server.client(0) as broker:
        assert broker.llen("s3thumbs") == 1800
        with worker(env, tmp_path / "worker.log", "--concurrency", "2"):
            with server.client(1) as backend:
                wait_for(lambda: broker.llen("s3thumbs") == 0 and backend.hexists(FAILED, f"backfill/{broken}"),
                         300, "the worker to drain the queue")
            wait_for(lambda: _count(s3, "thumbnails/16x16/in/") == 1999, 60, "every thumbnail")

    second = backfill()
    assert re.fullmatch(r"2000 images: 1999 current, 0 missing, 0 stale, 1 failed for good \(left alone; "
                        r"--retry-failed enqueues them\); enqueued 0", second), second


def _count(s3, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="backfill", Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)
