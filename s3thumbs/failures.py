"""Failure markers: a small object beside the thumbnails for each source that failed for good.

``{OUTPUT_PREFIX}failed/{key}`` holds the reason as JSON and the source eTag as metadata, so
backfill and reconciliation leave a broken upload alone until it changes (or ``--retry-failed``),
and anyone browsing the bucket sees why an image has no thumbnails.
"""

from __future__ import annotations

import json
import time

from s3thumbs.keys import Layout
from s3thumbs.storage import Storage
from s3thumbs.thumbnailer import ETAG_META


def mark(storage: Storage, layout: Layout, bucket: str, key: str, etag: str | None, reason: str) -> None:
    body = json.dumps({"bucket": bucket, "key": key, "etag": etag, "reason": reason, "at": time.time()})
    storage.put(layout.output_bucket(bucket), layout.failure_key(key), body.encode(), "application/json",
                {ETAG_META: etag or ""})


def clear(storage: Storage, layout: Layout, bucket: str, key: str) -> None:
    storage.delete(layout.output_bucket(bucket), [layout.failure_key(key)])


def marked(storage: Storage, layout: Layout, bucket: str, prefix: str) -> set[str]:
    """The source keys under ``prefix`` that carry a marker (listed, not opened)."""
    folder = layout.failure_key("")
    return {info.key[len(folder):] for info in storage.list_objects(layout.output_bucket(bucket), folder + prefix)}


def marked_etag(storage: Storage, layout: Layout, bucket: str, key: str) -> str | None:
    """The source eTag a marker was left for, or None without a marker."""
    info = storage.head(layout.output_bucket(bucket), layout.failure_key(key))
    return None if info is None else info.metadata.get(ETAG_META) or None
