"""Backfill: only what lacks current thumbnails is enqueued; failures are left alone until asked."""

from __future__ import annotations

import pytest

from s3thumbs.backfill import run
from s3thumbs.keys import Layout
from tests.support.backfill import SIZES, enqueued, plan, thumbnails, tiny_png, upload


@pytest.fixture
def backfill_plan(mocked_storage):
    return plan(mocked_storage)


def test_only_missing_and_stale_sources_are_enqueued(mocked_s3, backfill_plan):
    thumbnails(mocked_s3, "current.jpg", upload(mocked_s3, "current.jpg"))
    upload(mocked_s3, "missing.jpg")
    thumbnails(mocked_s3, "one size short.png", upload(mocked_s3, "one size short.png"), sizes=SIZES[:1])
    thumbnails(mocked_s3, "overwritten.jpg", upload(mocked_s3, "overwritten.jpg"))
    upload(mocked_s3, "overwritten.jpg", tiny_png(shade=99))  # new content: the thumbnails are of the old
    thumbnails(mocked_s3, "old settings.jpg", upload(mocked_s3, "old settings.jpg"), fingerprint="0123456789ab")
    upload(mocked_s3, "notes.txt", b"not an image")

    summary, keys = enqueued(backfill_plan)

    assert keys == ["missing.jpg", "old settings.jpg", "one size short.png", "overwritten.jpg"]
    assert (summary.sources, summary.current, summary.missing, summary.stale) == (5, 1, 2, 2)
    assert summary.line(dry_run=False) == "5 images: 1 current, 2 missing, 2 stale, 0 failed for good; enqueued 4"


def test_a_missing_or_stale_manifest_is_work_left(mocked_s3, backfill_plan):
    # Every size current, but no manifest (an app waits for it) or one of an older upload.
    thumbnails(mocked_s3, "no manifest.jpg", upload(mocked_s3, "no manifest.jpg"), manifest=False)
    thumbnails(mocked_s3, "old manifest.jpg", upload(mocked_s3, "old manifest.jpg"), manifest_etag="0" * 32)
    thumbnails(mocked_s3, "complete.jpg", upload(mocked_s3, "complete.jpg"))

    summary, keys = enqueued(backfill_plan)

    assert keys == ["no manifest.jpg", "old manifest.jpg"]
    assert (summary.current, summary.missing, summary.stale) == (1, 1, 1)


def test_with_a_shared_output_bucket_each_source_bucket_is_judged_by_its_own_thumbnails(mocked_s3, mocked_storage):
    shared = Layout("thumbnails/", "thumbs")
    mocked_s3.create_bucket(Bucket="thumbs")
    mocked_s3.create_bucket(Bucket="other")
    thumbnails(mocked_s3, "same.jpg", upload(mocked_s3, "same.jpg"), layout=shared)
    upload(mocked_s3, "same.jpg", bucket="other")
    shared_plan = plan(mocked_storage, shared)

    assert enqueued(shared_plan)[1] == []
    assert enqueued(shared_plan, bucket="other")[1] == ["same.jpg"]


def test_a_dry_run_publishes_nothing_and_counts_the_same(mocked_s3, backfill_plan):
    upload(mocked_s3, "a.jpg")
    thumbnails(mocked_s3, "b.jpg", upload(mocked_s3, "b.jpg"))

    summary = run(backfill_plan, "photos", "", None)

    assert summary.keys == ["a.jpg"]
    assert summary.line(dry_run=True) == "2 images: 1 current, 1 missing, 0 stale, 0 failed for good; would enqueue 1"


def test_the_prefix_and_unusual_keys_are_respected(mocked_s3, backfill_plan):
    for key in ("in/a b+c ü.jpg", "in/sub/d.webp", "out/e.jpg"):
        upload(mocked_s3, key)

    _, keys = enqueued(backfill_plan, "in/")

    assert keys == ["in/a b+c ü.jpg", "in/sub/d.webp"]


@pytest.mark.slow  # 10 s: thousands of objects through moto
def test_thousands_of_keys_over_several_pages_enqueue_exactly_what_is_not_current(mocked_s3, backfill_plan):
    keys = [f"photos/{i:05d}.jpg" for i in range(2000)]
    etag = upload(mocked_s3, keys[0])
    for key in keys[1:]:
        mocked_s3.put_object(Bucket="photos", Key=key, Body=tiny_png())
    current = set(keys[::10])
    for key in current:
        thumbnails(mocked_s3, key, etag)
    batches: list[int] = []

    summary = run(backfill_plan, "photos", "", lambda events: batches.append(len(events)))

    assert sorted(summary.keys) == sorted(set(keys) - current)
    assert (summary.sources, summary.current, summary.missing) == (2000, 200, 1800)
    assert sum(batches) == 1800 and max(batches) <= 200
