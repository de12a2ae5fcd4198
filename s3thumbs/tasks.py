"""The Celery tasks, thin: each declares its retry policy and calls the use case.

What happens after a task (status records, metrics, failure markers, dead letters) is not here:
``outcomes`` and ``deadletters`` handle Celery's task signals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from s3thumbs.config import MAX_RETRY_COUNTDOWN
from s3thumbs.errors import PermanentFailure, SourceChanged, TimedOut
from s3thumbs.messages import DELETE_TASK, RECONCILE_TASK, THUMBNAIL_TASK
from s3thumbs.outcomes import attach
from s3thumbs.storage import Storage
from s3thumbs.thumbnailer import Job, Outcome, delete_thumbnails, make_thumbnails

# What passes, and is retried with exponential backoff and full jitter: S3 throttling and 5xx
# (ClientErrors the storage layer let through), dropped, refused or cut-short connections, and a
# source that changed under us (the retry reads the new content).
TRANSIENT = (ClientError, ConnectionError, HTTPClientError, IncompleteReadError, SourceChanged)
# Celery's autoretry: countdown uniform in [0, min(2**retries, 300)] s; PermanentFailure is
# expected (no traceback) and never retried; a lost pool process is retried after 1 s.
RETRY_POLICY: dict[str, Any] = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "retry_backoff_max": MAX_RETRY_COUNTDOWN,
    "retry_jitter": True,
    "throws": (PermanentFailure,),
    "default_retry_delay": 1,
}

Action = Callable[[Storage, Job, str, str], Outcome]


def register(app: Celery, job: Job, storage: Callable[[], Storage], *, max_retries: int) -> None:
    """Register ``s3thumbs.thumbnail`` and ``s3thumbs.delete_thumbnails`` on ``app``."""
    soft_limit = app.conf.task_soft_time_limit

    def run(task: Task, action: Action, bucket: str, key: str) -> dict[str, Any]:
        try:
            outcome = action(storage(), job, bucket, key)
        except SoftTimeLimitExceeded as e:
            raise TimedOut(f"took longer than the soft time limit ({soft_limit:.0f} s)") from e
        attach(task, outcome)
        return outcome.to_dict()

    @app.task(name=THUMBNAIL_TASK, bind=True, max_retries=max_retries, **RETRY_POLICY)  # type: ignore[untyped-decorator]
    def thumbnail(self: Task, bucket: str, key: str, **_: Any) -> dict[str, Any]:
        return run(self, make_thumbnails, bucket, key)

    @app.task(name=DELETE_TASK, bind=True, max_retries=max_retries, **RETRY_POLICY)  # type: ignore[untyped-decorator]
    def delete(self: Task, bucket: str, key: str, **_: Any) -> dict[str, Any]:
        return run(self, delete_thumbnails, bucket, key)


def register_reconcile(app: Celery, reconcile: Callable[[], None], interval: int | None) -> None:
    """Register ``s3thumbs.reconcile`` and, with an interval, schedule it with Celery beat."""
    app.task(name=RECONCILE_TASK, ignore_result=True)(reconcile)
    if interval:
        # A run that could not start before the next one is due is dropped, never stacked up.
        app.conf.beat_schedule = {
            "s3thumbs-reconcile": {
                "task": RECONCILE_TASK,
                "schedule": float(interval),
                "options": {"expires": float(interval)},
            }
        }
        # Kept in memory, not in a schedule file: nothing shared with another beat on the host, nothing
        # written to a read-only root; after a restart the first run comes one interval later.
        app.conf.beat_scheduler = "celery.beat:Scheduler"
