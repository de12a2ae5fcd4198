"""Completion events: ``thumbnails.ready``, ``thumbnails.failed`` and ``thumbnails.deleted``, POSTed as
JSON to ``S3THUMBS_EVENTS_URL``.

Each POST is signed afresh, ``S3thumbs-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`` keyed by ``S3THUMBS_EVENTS_SECRET``, and delivered at least once by the Celery task
``s3thumbs.deliver_event``: an answer other than 2xx, or none within 10 s, is retried with
exponential backoff (1 s, doubling up to 300 s, no jitter) 20 times, about 64 minutes in all; then
the delivery is a dead letter, and ``s3thumbs dead-letters redrive`` sends it again. A receiver
deduplicates by ``id``. The render never waits for any of this: the task that rendered only puts
the delivery on the broker, and a broker that refuses is logged, not raised.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from celery import Celery, Task

from s3thumbs.config import MAX_RETRY_COUNTDOWN
from s3thumbs.messages import DELIVER_TASK, QUEUE
from s3thumbs.thumbnailer import Outcome

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "S3thumbs-Signature"
TIMEOUT_SECONDS = 10.0
# 1 + 2 + … + 256 s, then 300 s eleven times: 3,811 s of backoff, past the hour the SPEC promises.
RETRIES = 20


class DeliveryFailed(Exception):
    """The events URL did not take the event; the delivery is retried."""


def ready(outcome: Outcome) -> dict[str, Any]:
    """``thumbnails.ready`` for a source whose thumbnails were written, with its manifest."""
    return _event("thumbnails.ready", outcome.bucket, outcome.key, outcome.source_etag, manifest=outcome.manifest)


def deleted(outcome: Outcome) -> dict[str, Any]:
    """``thumbnails.deleted`` for a source whose thumbnails were removed with it."""
    return _event("thumbnails.deleted", outcome.bucket, outcome.key, None)


def failed(bucket: str, key: str, source_etag: str | None, reason: str) -> dict[str, Any]:
    """``thumbnails.failed`` for a source that failed for good, with the reason."""
    return _event("thumbnails.failed", bucket, key, source_etag, reason=reason)


def _event(kind: str, bucket: str, key: str, source_etag: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "type": kind,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "bucket": bucket,
        "key": key,
        "source_etag": source_etag,
        **extra,
    }


def signature(secret: str, body: bytes, at: int) -> str:
    """The ``S3thumbs-Signature`` header value for ``body`` sent at unix time ``at``."""
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def post(url: str, secret: str, event: dict[str, Any]) -> int:
    """POST ``event``, signed now; its HTTP status, or DeliveryFailed (or httpx's error) when not 2xx."""
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body, int(time.time()))}
    answer = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS, follow_redirects=False)
    if not answer.is_success:
        raise DeliveryFailed(f"the events URL answered {answer.status_code}")
    return answer.status_code


@dataclass(frozen=True)
class Completions:
    """Puts a delivery of each event on the broker, from wherever an outcome becomes known."""

    app: Celery

    def send(self, event: dict[str, Any]) -> None:
        """Queue the delivery of ``event``; a broker that refuses is logged (the render stands)."""
        where = {"bucket": event["bucket"], "key": event["key"], "event_id": event["id"]}
        try:
            self.app.send_task(DELIVER_TASK, args=[event["bucket"], event["key"]], kwargs={"event": event}, queue=QUEUE)
        except Exception as e:  # never fail or delay the task whose outcome this is
            logger.error(
                "s3://%s/%s: could not queue the %s event: %s", event["bucket"], event["key"], event["type"], e,
                extra=where,
            )  # fmt: skip


def register(app: Celery, url: str, secret: str) -> None:
    """Register ``s3thumbs.deliver_event`` on ``app``."""

    @app.task(  # type: ignore[untyped-decorator]
        name=DELIVER_TASK,
        bind=True,
        ignore_result=True,
        max_retries=RETRIES,
        autoretry_for=(httpx.HTTPError, DeliveryFailed),
        retry_backoff=1,
        retry_backoff_max=MAX_RETRY_COUNTDOWN,
        retry_jitter=False,
    )
    def deliver_event(self: Task, bucket: str, key: str, event: dict[str, Any], **_: Any) -> None:
        status = post(url, secret, event)
        logger.info(
            "s3://%s/%s: %s event %s delivered (HTTP %d, attempt %d)", bucket, key, event.get("type"), event.get("id"),
            status, self.request.retries + 1, extra={"bucket": bucket, "key": key, "event_id": event.get("id")},
        )  # fmt: skip
