"""What backfill looks at: small sources, thumbnails written as the worker writes them, and what a run enqueues."""

from __future__ import annotations

from typing import Any

from s3thumbs.backfill import Plan, Summary, run
from s3thumbs.failures import FailureMarkers
from s3thumbs.imaging import RenderSpec
from s3thumbs.keys import Layout, Size
from s3thumbs.prefixes import SizeRules
from s3thumbs.storage import Storage
from s3thumbs.thumbnailer import Job
from tests.support import buckets, images

SIZES = (Size(64, 64), Size(16, 16))
FINGERPRINT = RenderSpec(SIZES).fingerprint
LAYOUT = Layout()


def plan(
    storage: Storage,
    layout: Layout = LAYOUT,
    markers: FailureMarkers | None = None,
    rules: tuple[tuple[str, tuple[Size, ...]], ...] = (),
) -> Plan:
    """A backfill of SIZES (or ``rules`` over them) into ``layout``."""
    return Plan(storage, Job(RenderSpec(SIZES), layout, 10_000_000, rules=SizeRules(SIZES, rules)), markers)


def tiny_png(shade: int = 0) -> bytes:
    return images.solid("PNG", 8, 8, (shade, 100, 200))


def upload(s3: Any, key: str, body: bytes | None = None, bucket: str = "photos") -> str:
    """Put a source (a tiny PNG unless ``body`` is given) and return its eTag."""
    return buckets.upload(s3, bucket, key, tiny_png() if body is None else body)


def thumbnails(
    s3: Any,
    key: str,
    etag: str,
    fingerprint: str = FINGERPRINT,
    sizes: tuple[Size, ...] = SIZES,
    bucket: str = "photos",
    layout: Layout = LAYOUT,
    manifest_etag: str | None = None,
    manifest: bool = True,
) -> None:
    """Thumbnails as the worker writes them: every size, then the manifest, with the source eTag
    (``manifest_etag`` for the manifest, when given) and settings hash."""
    made_with = {"s3thumbs-source-etag": etag, "s3thumbs-settings": fingerprint}
    for size in sizes:
        s3.put_object(
            Bucket=layout.output_bucket(bucket),
            Key=layout.thumbnail_key(bucket, key, size),
            Body=b"t",
            Metadata=made_with,
        )
    if manifest:
        s3.put_object(
            Bucket=layout.output_bucket(bucket),
            Key=layout.manifest_key(bucket, key),
            Body=b"{}",
            Metadata={**made_with, "s3thumbs-source-etag": manifest_etag or etag},
        )


def enqueued(plan: Plan, prefix: str = "", bucket: str = "photos", **options: Any) -> tuple[Summary, list[str]]:
    """Run backfill of ``bucket``; its summary and the keys it enqueued, which must be the ones it names."""
    published: list[Any] = []
    summary = run(plan, bucket, prefix, published.extend, **options)
    assert sorted(e.key for e in published) == sorted(summary.keys)
    assert all(e.bucket == bucket and e.action == "created" for e in published)
    return summary, sorted(e.key for e in published)
