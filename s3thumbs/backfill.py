"""Backfill: find the images of a bucket that lack a thumbnail, and enqueue them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from s3thumbs.events import ObjectEvent
from s3thumbs.keys import Layout, Size, is_image_key
from s3thumbs.storage import ObjectInfo, Storage

BATCH = 200

Publish = Callable[[Sequence[ObjectEvent]], None]
Progress = Callable[[Iterator[ObjectInfo]], Iterator[ObjectInfo]]


@dataclass(frozen=True)
class Plan:
    """Where to look: the storage, the output layout and the sizes every source needs."""

    storage: Storage
    layout: Layout
    sizes: tuple[Size, ...]

    def existing(self, bucket: str, prefix: str) -> set[str]:
        """Source keys that have a thumbnail of every size (listed, not opened)."""
        out_bucket = self.layout.output_bucket(bucket)
        complete: set[str] | None = None
        for size in self.sizes:
            folder = self.layout.thumbnail_key("", size)
            keys = {info.key[len(folder):] for info in self.storage.list_objects(out_bucket, folder + prefix)}
            complete = keys if complete is None else complete & keys
        return complete or set()


@dataclass(frozen=True)
class Summary:
    """What a backfill found and did."""

    sources: int
    complete: int
    missing: int


def run(plan: Plan, bucket: str, prefix: str, publish: Publish | None,
        progress: Progress = lambda items: items) -> Summary:
    """List sources under ``prefix``; publish a task for each one lacking a thumbnail.

    ``publish=None`` is a dry run.
    """
    complete = plan.existing(bucket, prefix)
    sources = done = 0
    batch: list[ObjectEvent] = []
    missing = 0
    for info in progress(plan.storage.list_objects(bucket, prefix)):
        if plan.layout.is_output(bucket, info.key) or not is_image_key(info.key):
            continue
        sources += 1
        if info.key in complete:
            done += 1
            continue
        missing += 1
        if publish is not None:
            batch.append(ObjectEvent("created", bucket, info.key, "backfill", info.size, info.etag))
            if len(batch) >= BATCH:
                publish(batch)
                batch = []
    if batch and publish is not None:
        publish(batch)
    return Summary(sources, done, missing)
