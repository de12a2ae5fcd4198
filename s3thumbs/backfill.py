"""Backfill: find the images of a bucket whose thumbnails are missing or stale, and enqueue them.

Listing does the bulk of the work: a source lacking any size, or its manifest, is missing. For a
source with all of them, one HEAD of the manifest (written last) tells whether it was made from the
source's current eTag with the current settings. Sources that failed for good (see ``failures``)
are left alone unless they changed since, or ``retry_failed`` is asked for. Reconciliation runs the
same plan on a schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from s3thumbs.events import ObjectEvent
from s3thumbs.failures import FailureMarkers
from s3thumbs.keys import is_image_key
from s3thumbs.messages import Publish
from s3thumbs.storage import ObjectInfo, Storage
from s3thumbs.thumbnailer import Job, made_from

logger = logging.getLogger(__name__)

BATCH = 200
LOOKUP_THREADS = 16
T = TypeVar("T")


class Progress(Protocol):
    """Wraps an iterable with a progress display (a total, when known, gives a rate and an ETA)."""

    def __call__(self, items: Iterable[T], total: int | None, description: str) -> Iterable[T]: ...


def no_progress(items: Iterable[T], total: int | None, description: str) -> Iterable[T]:
    return items


@dataclass(frozen=True)
class Plan:
    """Where to look and what counts as current: storage, and the job (output layout, each key's sizes
    and settings hash)."""

    storage: Storage
    job: Job
    markers: FailureMarkers | None = None


@dataclass
class Summary:
    """What a backfill found and did (``enqueued`` is what a dry run would enqueue)."""

    sources: int = 0
    current: int = 0
    missing: int = 0
    stale: int = 0
    failed: int = 0  # marked failed for good, left alone
    retried: int = 0  # marked failed for good, enqueued again (retry_failed)
    enqueued: int = 0
    keys: list[str] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        verb = "would enqueue" if dry_run else "enqueued"
        failed = (
            f"{self.failed} failed for good (left alone; --retry-failed enqueues them)"
            if self.failed
            else f"{self.retried} failed for good, retried"
            if self.retried
            else "0 failed for good"
        )
        return (
            f"{self.sources} images: {self.current} current, {self.missing} missing, {self.stale} stale, "
            f"{failed}; {verb} {self.enqueued}"
        )


def run(
    plan: Plan,
    bucket: str,
    prefix: str,
    publish: Publish | None,
    *,
    retry_failed: bool = False,
    progress: Progress = no_progress,
) -> Summary:
    """Publish a task for each image under ``prefix`` lacking current thumbnails; ``publish=None`` is a dry run."""
    storage, layout, job = plan.storage, plan.job.layout, plan.job
    sources = [
        info
        for info in progress(storage.list_objects(bucket, prefix), None, "listing")
        # Under a prefix S3THUMBS_RULES gives no sizes, nothing is ever made.
        if not layout.is_output(bucket, info.key) and is_image_key(info.key) and job.spec_for(info.key)
    ]
    complete = _with_every_size(plan, bucket, prefix, [source.key for source in sources])
    incomplete = [source.key for source in sources if source.key not in complete]
    failed = plan.markers.etags(bucket, incomplete) if plan.markers is not None else {}
    summary = Summary(sources=len(sources))

    def verdict(source: ObjectInfo) -> str:
        if source.key not in complete:
            if failed.get(source.key) == source.etag:
                return "retried" if retry_failed else "failed"
            return "missing"
        manifest = storage.head(layout.output_bucket(bucket), layout.manifest_key(bucket, source.key))
        if manifest is None:  # deleted since it was listed
            return "missing"
        spec = job.spec_for(source.key)
        return "current" if spec and made_from(manifest, source.etag, spec.fingerprint) else "stale"

    batch: list[ObjectEvent] = []
    with ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="backfill") as pool:
        checked = zip(sources, pool.map(verdict, sources), strict=True)
        for source, outcome in progress(checked, len(sources), "checking"):
            setattr(summary, outcome, getattr(summary, outcome) + 1)
            if outcome in ("current", "failed"):
                continue
            summary.enqueued += 1
            summary.keys.append(source.key)
            if publish is not None:
                batch.append(ObjectEvent("created", bucket, source.key, "backfill", source.size, source.etag))
                if len(batch) >= BATCH:
                    publish(batch)
                    batch = []
    if batch and publish is not None:
        publish(batch)
    return summary


def _with_every_size(plan: Plan, bucket: str, prefix: str, keys: list[str]) -> set[str]:
    """Those of ``keys`` that have a manifest and a thumbnail of each of their sizes (listed, not opened)."""
    layout, job = plan.job.layout, plan.job
    out_bucket = layout.output_bucket(bucket)
    folder = layout.manifest_folder(bucket)
    listed = plan.storage.list_objects(out_bucket, folder + prefix)
    with_manifest = {info.key[len(folder) : -len(".json")] for info in listed if info.key.endswith(".json")}
    needed = {key: spec.sizes for key in keys if key in with_manifest and (spec := job.spec_for(key))}
    have: dict[str, set[str]] = {}
    for size in {size for sizes in needed.values() for size in sizes}:
        folder = layout.size_folder(bucket, size)
        have[str(size)] = {info.key[len(folder) :] for info in plan.storage.list_objects(out_bucket, folder + prefix)}
    return {key for key, sizes in needed.items() if all(key in have[str(size)] for size in sizes)}


def reconcile(plan: Plan, buckets: Iterable[str], publish: Publish) -> None:
    """Backfill every bucket of ``buckets``: catches what a lost notification missed."""
    for bucket in sorted(buckets):
        summary = run(plan, bucket, "", publish)
        logger.info(
            "reconciled s3://%s: %s",
            bucket,
            summary.line(dry_run=False),
            extra={"bucket": bucket, "enqueued": summary.enqueued},
        )
