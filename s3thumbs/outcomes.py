"""After a task: status records, metrics and failure markers, as handlers of Celery's task signals.

One handler per moment (``task_prerun``, ``task_success``, ``task_retry``, ``task_failure``), like
``deadletters``; the tasks themselves only do the work. Failures that happen outside a task's own
code (a hard time limit, a lost pool process) reach ``task_failure`` too, in the worker's main
process. Nothing here decides whether work happens: a store that does not answer is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from billiard.exceptions import WorkerLostError
from botocore.exceptions import BotoCoreError, ClientError
from celery import Celery, Task, signals
from celery.exceptions import Retry, TimeLimitExceeded

from s3thumbs import completions
from s3thumbs.completions import Completions
from s3thumbs.errors import PermanentFailure, S3ThumbsError
from s3thumbs.failures import FailureMarkers
from s3thumbs.metrics import WorkerMetrics
from s3thumbs.status import Record, Statuses
from s3thumbs.storage import Storage
from s3thumbs.thumbnailer import Outcome

logger = logging.getLogger(__name__)


def attach(task: Task, outcome: Outcome) -> None:
    """Hand a task's whole outcome to the handlers; its JSON result keeps only the SPEC's fields."""
    task.request.s3thumbs_outcome = outcome


@dataclass
class Outcomes:
    """Records what became of each task of ``names``: statuses, metrics, failure markers."""

    names: Collection[str]
    storage: Callable[[], Storage]
    statuses: Callable[[], Statuses | None]
    markers: Callable[[], FailureMarkers | None]
    metrics: WorkerMetrics
    completions: Completions | None = None  # with S3THUMBS_EVENTS_URL: an event per outcome

    def install(self, app: Celery) -> None:
        """Connect the handlers, for the tasks of ``app`` only."""
        started: dict[str, float] = {}

        def ours(sender: Any) -> bool:
            return getattr(sender, "name", None) in self.names and getattr(sender, "app", None) is app

        def on_prerun(sender: Any = None, task_id: str = "", **_: Any) -> None:
            if ours(sender):
                started[task_id] = time.perf_counter()

        def on_success(sender: Any = None, **_: Any) -> None:
            if not ours(sender):
                return
            outcome: Outcome | None = getattr(sender.request, "s3thumbs_outcome", None)
            seconds = time.perf_counter() - started.pop(sender.request.id, time.perf_counter())
            if outcome is not None:
                self.succeeded(sender.name, outcome, seconds)

        def on_retry(sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
            if ours(sender):
                self.retried(sender.name, sender.max_retries, request, reason)

        def on_failure(
            sender: Any = None,
            task_id: str = "",
            exception: BaseException | None = None,
            args: Any = None,
            kwargs: Any = None,
            **_: Any,
        ) -> None:
            if not ours(sender):
                return
            started.pop(task_id, None)
            bucket, key = (list(args or []) + ["", ""])[:2]
            retries = int(getattr(sender.request, "retries", 0) or 0)
            etag = (kwargs or {}).get("etag") if isinstance(kwargs, dict) else None
            self.failed(sender.name, str(bucket), str(key), task_id, exception, retries, etag)

        for signal, handler in (
            (signals.task_prerun, on_prerun),
            (signals.task_success, on_success),
            (signals.task_retry, on_retry),
            (signals.task_failure, on_failure),
        ):
            signal.connect(handler, weak=False)

    def succeeded(self, task: str, outcome: Outcome, seconds: float) -> None:
        """Record the status and count the task; a success clears an earlier failure marker."""
        self.metrics.tasks.labels(task, outcome.status).inc()
        if outcome.status == "ignored":
            return
        if outcome.status == "written":
            self.metrics.task_seconds.observe(seconds)
            self.metrics.bytes_read.inc(outcome.source_bytes or 0)
            self.metrics.bytes_written.inc(sum(t.bytes for t in outcome.thumbnails))
        if (store := self.statuses()) is not None:
            facts = outcome.manifest or {}
            fits = {t["key"]: t["fit"] for t in facts.get("thumbnails", [])}
            thumbs = tuple(
                {"key": t.key, "width": t.width, "height": t.height, "bytes": t.bytes, "fit": fits.get(t.key, "inside")}
                for t in outcome.thumbnails
            )
            store.save(
                [
                    Record(
                        outcome.bucket,
                        outcome.key,
                        outcome.status,
                        etag=outcome.source_etag,
                        size=outcome.source_bytes,
                        thumbnails=thumbs,
                        ms=outcome.ms,
                        thumbhash=facts.get("thumbhash"),
                        shown=(facts["width"], facts["height"]) if facts else None,
                    )
                ]
            )
        if outcome.status in ("written", "deleted") and (markers := self.markers()) is not None:
            markers.clear(outcome.bucket, outcome.key)
        if self.completions is not None and outcome.status in ("written", "deleted"):
            # Nothing for "current" and "gone": nothing changed that an app has not heard of.
            make = completions.ready if outcome.status == "written" else completions.deleted
            self.completions.send(make(outcome))

    def retried(self, task: str, max_retries: int | None, request: Any, reason: Any) -> None:
        """Log the retry with its countdown, and count it."""
        self.metrics.tasks.labels(task, "retried").inc()
        args = list(getattr(request, "args", None) or []) + ["", ""]
        bucket, key = str(args[0]), str(args[1])
        retries = int(getattr(request, "retries", 0) or 0)
        countdown = reason.when if isinstance(reason, Retry) else None
        cause = reason.exc if isinstance(reason, Retry) and reason.exc is not None else reason
        logger.warning(
            "s3://%s/%s: retry %d of %s in %s s: %s",
            bucket,
            key,
            retries + 1,
            max_retries,
            countdown,
            cause,
            extra={"bucket": bucket, "key": key, "task_id": getattr(request, "id", None)},
        )

    def failed(
        self,
        task: str,
        bucket: str,
        key: str,
        task_id: str,
        exception: BaseException | None,
        retries: int,
        etag: str | None = None,
    ) -> None:
        """Log the failure once, mark the source, record "failed" and count it."""
        where = {"bucket": bucket, "key": key, "task_id": task_id}
        reason = failure_reason(exception, retries)
        if isinstance(exception, PermanentFailure):
            logger.warning("s3://%s/%s failed for good: %s", bucket, key, reason, extra=where)
        else:
            logger.error("s3://%s/%s failed for good %s", bucket, key, reason, extra=where)
        # Whatever the cause: backfill leaves it alone until it changes.
        etag = self._mark(bucket, key, reason, etag)
        if (store := self.statuses()) is not None:
            store.save([Record(bucket, key, "failed", reason=reason)])
        self.metrics.tasks.labels(task, "failed").inc()
        if self.completions is not None:
            self.completions.send(completions.failed(bucket, key, etag, reason))

    def _mark(self, bucket: str, key: str, reason: str, etag: str | None) -> str | None:
        """Mark the source as failed for good, for backfill: with the eTag its event named, else the one S3
        has now, which is returned (None when unknown). A marker that cannot be written is only logged."""
        markers = self.markers()
        if etag:
            etag = etag.strip('"')
        elif markers is not None or self.completions is not None:
            try:
                source = self.storage().head(bucket, key)
            except (S3ThumbsError, BotoCoreError, ClientError) as e:  # the failure is recorded regardless
                logger.warning(
                    "s3://%s/%s: could not look up its eTag for the failure marker: %s", bucket, key, e,
                    extra={"bucket": bucket, "key": key},
                )  # fmt: skip
                return None
            etag = source.etag if source is not None else None
        if markers is not None and etag:
            markers.mark(bucket, key, etag, reason)
        return etag


def failure_reason(exception: BaseException | None, retries: int) -> str:
    """Why a task failed for good, in words for the status record and the log."""
    if isinstance(exception, PermanentFailure):
        return str(exception)
    if isinstance(exception, TimeLimitExceeded):
        return f"took longer than the hard time limit ({exception.args[0] if exception.args else '?'} s)"
    if isinstance(exception, WorkerLostError):
        return f"its worker process died under it, {retries + 1} time(s): {exception}"
    if retries:
        return f"after {retries} retries: {exception}"
    return f"{type(exception).__name__}: {exception}"
