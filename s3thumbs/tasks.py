"""The two Celery tasks: thin wrappers that declare the retry policy and call the thumbnailer."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval

from s3thumbs import backfill, metrics
from s3thumbs.celery_app import DELETE_TASK, RECONCILE_TASK, THUMBNAIL_TASK, publish
from s3thumbs.config import MAX_RETRY_COUNTDOWN, Settings
from s3thumbs.errors import BadImage, PermanentFailure, S3ThumbsError, SourceChanged
from s3thumbs.failures import FailureMarkers
from s3thumbs.imaging import RenderSpec
from s3thumbs.status import Record, Statuses, StatusStore
from s3thumbs.storage import Storage, make_client
from s3thumbs.thumbnailer import Job, Outcome, delete_thumbnails, make_thumbnails

logger = logging.getLogger(__name__)
T = TypeVar("T")

# What passes, and is retried with exponential backoff and full jitter: S3 throttling and 5xx
# (ClientErrors the storage layer let through), dropped, refused or cut-short connections, and a source that
# changed under us (the retry reads the new content).
TRANSIENT = (ClientError, ConnectionError, HTTPClientError, IncompleteReadError, SourceChanged)


def job_from(settings: Settings) -> Job:
    """The rendering rules and limits the settings describe."""
    spec = RenderSpec(settings.sizes, settings.format, settings.quality, settings.max_pixels)
    return Job(spec, settings.layout, settings.max_bytes, settings.buckets, settings.cache_control)


def storage_per_process(endpoint_url: str | None) -> Callable[[], Storage]:
    """A Storage built lazily once per process, so no boto3 client crosses a fork."""
    return per_process(lambda url: Storage(make_client(url)), endpoint_url)


def per_process(make: Callable[[str | None], T], url: str | None) -> Callable[[], T]:
    """``make(url)``, built lazily once per process: no client or connection crosses a fork."""
    cache: dict[int, T] = {}

    def get() -> T:
        pid = os.getpid()
        if pid not in cache:
            cache.clear()
            cache[pid] = make(url)
        return cache[pid]

    return get


def _record(store: Statuses | None, outcome: Outcome, ms: float) -> None:
    if store is None or outcome.status == "ignored":
        return
    thumbs = tuple({"key": t.key, "width": t.width, "height": t.height, "bytes": t.bytes} for t in outcome.thumbnails)
    store.save([Record(outcome.bucket, outcome.key, outcome.status, etag=outcome.source_etag,
                       size=outcome.source_bytes, thumbnails=thumbs, ms=round(ms, 1))])


def _count(task: str, outcome: Outcome, seconds: float) -> None:
    metrics.TASKS.labels(task, outcome.status).inc()
    if outcome.status == "written":
        metrics.TASK_SECONDS.observe(seconds)
        metrics.BYTES_READ.inc(outcome.source_bytes or 0)
        metrics.BYTES_WRITTEN.inc(sum(t.bytes for t in outcome.thumbnails))


def _record_failure(store: Statuses | None, bucket: str, key: str, reason: str) -> None:
    if store is not None:
        store.save([Record(bucket, key, "failed", reason=reason)])


def register(app: Celery, settings: Settings, storage: Callable[[], Storage],
             statuses: Statuses | None = None) -> None:
    """Register ``s3thumbs.thumbnail`` and ``s3thumbs.delete_thumbnails`` on ``app``."""
    job = job_from(settings)
    options: dict[str, Any] = {
        "bind": True,
        "max_retries": settings.max_retries,
        # The countdown of a retry after a lost pool process (OOM, SIGKILL).
        "default_retry_delay": 1,
        "throws": (PermanentFailure,),
    }

    status: Callable[[], Statuses | None] = (lambda: statuses) if statuses is not None \
        else per_process(StatusStore.from_backend, settings.result_backend)
    markers = per_process(FailureMarkers.from_backend, settings.result_backend)

    def run(task: Task, action: Callable[[Storage, Job, str, str], Outcome], bucket: str, key: str) -> dict[str, Any]:
        where = {"bucket": bucket, "key": key, "task_id": task.request.id}
        started = time.perf_counter()
        try:
            outcome = action(storage(), job, bucket, key)
            seconds = time.perf_counter() - started
            _record(status(), outcome, seconds * 1000)
            _count(task.name, outcome, seconds)
            if outcome.status in ("written", "deleted") and (marked := markers()) is not None:
                marked.clear(bucket, key)
            return outcome.to_dict()
        except PermanentFailure as e:
            logger.warning("s3://%s/%s failed for good: %s", bucket, key, e, extra=where)
            if isinstance(e, BadImage):
                _leave_marker(storage(), markers(), bucket, key, str(e))
            _record_failure(status(), bucket, key, str(e))
            metrics.TASKS.labels(task.name, "failed").inc()
            raise
        except SoftTimeLimitExceeded as e:
            reason = f"took longer than the soft time limit ({settings.soft_time_limit:.0f} s)"
            logger.warning("s3://%s/%s failed for good: %s", bucket, key, reason, extra=where)
            _leave_marker(storage(), markers(), bucket, key, reason)
            _record_failure(status(), bucket, key, reason)
            metrics.TASKS.labels(task.name, "failed").inc()
            raise PermanentFailure(reason) from e
        except TRANSIENT as e:
            retries = task.request.retries
            if retries >= settings.max_retries:
                logger.error("s3://%s/%s failed for good after %d retries: %s", bucket, key, retries, e, extra=where)
                _record_failure(status(), bucket, key, f"after {retries} retries: {e}")
                metrics.TASKS.labels(task.name, "failed").inc()
                raise
            metrics.TASKS.labels(task.name, "retried").inc()
            countdown = get_exponential_backoff_interval(factor=1, retries=retries, maximum=MAX_RETRY_COUNTDOWN,
                                                         full_jitter=True)
            logger.warning("s3://%s/%s: retry %d of %d in %d s: %s", bucket, key, retries + 1, settings.max_retries,
                           countdown, e, extra=where)
            raise task.retry(exc=e, countdown=countdown) from e

    @app.task(name=THUMBNAIL_TASK, **options)
    def thumbnail(self: Task, bucket: str, key: str, **_: Any) -> dict[str, Any]:
        return run(self, make_thumbnails, bucket, key)

    @app.task(name=DELETE_TASK, **options)
    def delete(self: Task, bucket: str, key: str, **_: Any) -> dict[str, Any]:
        return run(self, delete_thumbnails, bucket, key)

    @app.task(name=RECONCILE_TASK, ignore_result=True)
    def reconcile() -> None:
        """Backfill every allowed bucket: catches what a lost notification missed."""
        plan = backfill.Plan(storage(), settings.layout, settings.sizes, job.spec.fingerprint, markers())
        for bucket in sorted(settings.buckets or ()):
            summary = backfill.run(plan, bucket, "", lambda events: publish(app, events))
            logger.info("reconciled s3://%s: %s", bucket, summary.line(dry_run=False),
                        extra={"bucket": bucket, "enqueued": summary.enqueued})

    if settings.reconcile_interval:
        # A run that could not start before the next one is due is dropped, never stacked up.
        app.conf.beat_schedule = {"s3thumbs-reconcile": {
            "task": RECONCILE_TASK, "schedule": float(settings.reconcile_interval),
            "options": {"expires": float(settings.reconcile_interval)},
        }}
        app.conf.beat_schedule_filename = os.path.join(tempfile.gettempdir(), "s3thumbs-beat-schedule")


def _leave_marker(storage: Storage, markers: FailureMarkers | None, bucket: str, key: str, reason: str) -> None:
    """Mark the source as failed for good, for backfill; a marker that cannot be written is only logged."""
    if markers is None:
        return
    try:
        source = storage.head(bucket, key)
    except (S3ThumbsError, *TRANSIENT) as e:
        logger.warning("s3://%s/%s: could not leave a failure marker: %s", bucket, key, e,
                       extra={"bucket": bucket, "key": key})
        return
    if source is not None:
        markers.mark(bucket, key, source.etag, reason)
