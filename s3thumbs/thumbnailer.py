"""The use case, without Celery: make or delete the thumbnails of one source object."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from s3thumbs import manifest
from s3thumbs.budget import MIB
from s3thumbs.config import Settings
from s3thumbs.errors import Forbidden, SourceChanged
from s3thumbs.imaging import RenderSpec, render
from s3thumbs.keys import Layout
from s3thumbs.prefixes import SizeRules
from s3thumbs.storage import NewObject, ObjectInfo, Storage

logger = logging.getLogger(__name__)

ETAG_META = "s3thumbs-source-etag"
SETTINGS_META = "s3thumbs-settings"
SIZE_META = "s3thumbs-size"
THUMBHASH_META = "s3thumbs-thumbhash"


@dataclass(frozen=True)
class Job:
    """Everything a task needs besides the object: the rules and the limits."""

    spec: RenderSpec
    layout: Layout
    max_bytes: int
    buckets: frozenset[str] | None = None
    cache_control: str | None = None
    rules: SizeRules | None = None  # S3THUMBS_RULES; None: ``spec``'s sizes for every key

    def spec_for(self, key: str) -> RenderSpec | None:
        """What to render for ``key``: the spec with the sizes its prefix gets; None for no thumbnails."""
        if self.rules is None:
            return self.spec
        sizes = self.rules.sizes_for(key)
        return replace(self.spec, sizes=sizes) if sizes else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Job:
        """The rendering rules and limits the settings describe."""
        spec = RenderSpec(
            settings.sizes,
            settings.format,
            settings.quality,
            settings.max_pixels,
            settings.max_decode_mib * MIB,
            keep_copyright=settings.keep_metadata == "copyright",
            crop=settings.crop,
        )
        return cls(
            spec, settings.layout, settings.max_bytes, settings.buckets, settings.cache_control, settings.size_rules
        )


@dataclass(frozen=True)
class ThumbnailInfo:
    """One thumbnail as written (or found current)."""

    key: str
    width: int
    height: int
    bytes: int
    content_type: str


@dataclass(frozen=True)
class Outcome:
    """A task's summary: what happened to one source object."""

    bucket: str
    key: str
    status: str  # written | current | gone | deleted | ignored
    source_etag: str | None = None
    thumbnails: list[ThumbnailInfo] = field(default_factory=list)
    source_bytes: int | None = None  # for the status store; not part of the task's result
    ms: float | None = None  # how long a render took, for the status store; not part of the result
    manifest: dict[str, Any] | None = None  # what was written, for completion events; not part of the result

    def to_dict(self) -> dict[str, Any]:
        """The JSON result stored by the result backend."""
        result = asdict(self)
        del result["source_bytes"], result["ms"], result["manifest"]
        return result


def make_thumbnails(storage: Storage, job: Job, bucket: str, key: str) -> Outcome:
    """Write every size of ``bucket/key`` unless current ones already match its eTag and settings.

    The last content wins: what is rendered is the content the GET's own eTag names, and the eTag
    is checked again once everything is written; a source that changed meanwhile raises
    SourceChanged, so the retry renders the newer content over what was just written.
    """
    where = {"bucket": bucket, "key": key}
    if ignored := _ignored(job, bucket, key):
        return ignored
    spec = job.spec_for(key)
    if spec is None:
        logger.info("s3://%s/%s: skipped, no thumbnails under its prefix (S3THUMBS_RULES)", bucket, key, extra=where)
        return Outcome(bucket, key, "ignored")
    # The GET of the source and the HEAD of its manifest go at once: one round trip, and the body
    # is read only if the manifest does not already describe this eTag.
    out_bucket = job.layout.output_bucket(bucket)
    manifest_key = job.layout.manifest_key(bucket, key)
    started = time.perf_counter()
    download, found_manifest = storage.get_and_head((bucket, key), (out_bucket, manifest_key))
    if isinstance(download, Exception):
        raise download
    if download is None:
        logger.info("s3://%s/%s is gone: nothing to render", bucket, key, extra=where)
        return Outcome(bucket, key, "gone")
    with download:
        if isinstance(found_manifest, Exception):
            raise found_manifest
        source = download.info
        current = _current_thumbnails(storage, job.layout, spec, bucket, key, source.etag, found_manifest)
        if current is not None:
            logger.info(
                "s3://%s/%s: skipped, thumbnails already current for eTag %s", bucket, key, source.etag, extra=where
            )
            return Outcome(bucket, key, "current", source.etag, current, source.size)
        with download.spool(job.max_bytes) as file:
            rendering = render(file, spec)
    made_with = {ETAG_META: source.etag, SETTINGS_META: spec.fingerprint}
    objects = [
        NewObject(
            job.layout.thumbnail_key(bucket, key, thumb.box),
            thumb.body,
            thumb.content_type,
            {**made_with, SIZE_META: f"{thumb.width}x{thumb.height}", THUMBHASH_META: rendering.thumbhash},
        )
        for thumb in rendering.thumbnails
    ]
    storage.put_all(out_bucket, objects, job.cache_control)  # the sizes are uploaded at once
    written = [
        ThumbnailInfo(obj.key, thumb.width, thumb.height, len(thumb.body), thumb.content_type)
        for obj, thumb in zip(objects, rendering.thumbnails, strict=True)
    ]
    facts = manifest.build(
        job.layout, bucket, key, source.etag, spec.fingerprint, rendering.size, rendering.thumbhash,
        rendering.thumbnails,
    )  # fmt: skip
    storage.put(out_bucket, manifest_key, manifest.body(facts), manifest.CONTENT_TYPE, made_with)  # last
    # One check after writing covers the whole time since the GET: a source deleted meanwhile takes
    # what was written with it; one overwritten meanwhile is rendered again by the retry.
    if (gone := _gone_or_changed(storage, bucket, key, source.etag)) is not None:
        storage.delete(out_bucket, [t.key for t in written] + [manifest_key])
        return gone
    elapsed_ms = (time.perf_counter() - started) * 1000
    total = sum(t.bytes for t in written)
    logger.info(
        "s3://%s/%s: wrote %d thumbnails (%d bytes) in %.0f ms: %s",
        bucket,
        key,
        len(written),
        total,
        elapsed_ms,
        ", ".join(t.key for t in written),
        extra={**where, "keys": [t.key for t in written], "bytes": total, "ms": round(elapsed_ms)},
    )
    return Outcome(bucket, key, "written", source.etag, written, source.size, round(elapsed_ms, 1), facts)


def _gone_or_changed(storage: Storage, bucket: str, key: str, etag: str) -> Outcome | None:
    """None while the source still has ``etag``; "gone" if it was deleted; raises if it changed."""
    now = storage.head(bucket, key)
    if now is None:
        logger.info(
            "s3://%s/%s was deleted while it was rendered: nothing kept",
            bucket,
            key,
            extra={"bucket": bucket, "key": key},
        )
        return Outcome(bucket, key, "gone")
    if now.etag != etag:
        raise SourceChanged(f"s3://{bucket}/{key} changed from eTag {etag} to {now.etag} while it was rendered")
    return None


def delete_thumbnails(storage: Storage, job: Job, bucket: str, key: str) -> Outcome:
    """Delete every size of ``bucket/key``, unless a current version of the source still exists."""
    if ignored := _ignored(job, bucket, key):
        return ignored
    source = storage.head(bucket, key)
    if source is not None:
        logger.info(
            "s3://%s/%s: skipped delete, the source still exists", bucket, key, extra={"bucket": bucket, "key": key}
        )
        return Outcome(bucket, key, "current", source.etag)
    # Every size any prefix may get: what an earlier S3THUMBS_RULES made goes too.
    sizes = job.rules.all_sizes() if job.rules is not None else job.spec.sizes
    keys = [job.layout.thumbnail_key(bucket, key, size) for size in sizes]
    keys.append(job.layout.manifest_key(bucket, key))
    storage.delete(job.layout.output_bucket(bucket), keys)
    logger.info(
        "s3://%s/%s was removed: deleted %s",
        bucket,
        key,
        ", ".join(keys),
        extra={"bucket": bucket, "key": key, "keys": keys},
    )
    return Outcome(bucket, key, "deleted")


def _ignored(job: Job, bucket: str, key: str) -> Outcome | None:
    if job.buckets is not None and bucket not in job.buckets:
        raise Forbidden(f"bucket {bucket!r} is not in S3THUMBS_BUCKETS")
    if job.layout.is_output(bucket, key):
        logger.info("s3://%s/%s: skipped, a thumbnail", bucket, key, extra={"bucket": bucket, "key": key})
        return Outcome(bucket, key, "ignored")
    return None


def _current_thumbnails(
    storage: Storage, layout: Layout, spec: RenderSpec, bucket: str, key: str, etag: str, manifest: ObjectInfo | None
) -> list[ThumbnailInfo] | None:
    """The thumbnails, if the manifest and every size exist and were made from this eTag with these settings.

    ``manifest`` is what a HEAD of the manifest found; the sizes are looked at, all at once, only
    when it is current.
    """
    if not made_from(manifest, etag, spec.fingerprint):
        return None
    out_bucket = layout.output_bucket(bucket)
    sizes = storage.head_all([(out_bucket, layout.thumbnail_key(bucket, key, size)) for size in spec.sizes])
    found = []
    for info in sizes:
        if isinstance(info, Exception):
            raise info
        if info is None or not made_from(info, etag, spec.fingerprint):
            return None
        width, _, height = info.metadata.get(SIZE_META, "").partition("x")
        if not (width.isdigit() and height.isdigit()):
            return None
        found.append(ThumbnailInfo(info.key, int(width), int(height), info.size, info.content_type or ""))
    return found if len(found) == len(spec.sizes) else None


def made_from(info: ObjectInfo | None, etag: str, fingerprint: str) -> bool:
    """True for a thumbnail made from the source with this eTag, with the settings of this fingerprint."""
    return info is not None and info.metadata.get(ETAG_META) == etag and info.metadata.get(SETTINGS_META) == fingerprint
