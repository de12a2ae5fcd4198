"""The receiver: S3/MinIO/SNS/EventBridge notifications in, one Celery task per object out.

It never reads an object and never touches the result backend. A 2xx means every accepted
event is on the broker; a fault that passes (the broker is down) is a 503, so the sender retries.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from s3thumbs.errors import InvalidEvent, InvalidSignature
from s3thumbs.events import (
    Ignored,
    Notification,
    ObjectEvent,
    SubscriptionRequest,
    decode_body,
    is_sns_envelope,
    parse_document,
)
from s3thumbs.keys import Layout, is_image_key
from s3thumbs.sns import is_sns_url

logger = logging.getLogger(__name__)

Publish = Callable[[Sequence[ObjectEvent]], None]
# Seconds a request waits for the broker before answering 503 (SNS gives up on a request after 15).
PUBLISH_TIMEOUT = 5.0
Confirm = Callable[[str], None]
# Raises InvalidSignature for an SNS envelope that SNS did not sign (see s3thumbs.sns.Verifier).
Verify = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Rules:
    """What the receiver lets through."""

    layout: Layout = Layout()
    buckets: frozenset[str] | None = None
    max_bytes: int = 100 * 1024 * 1024
    sns_topics: frozenset[str] | None = None

    def skip_reason(self, event: ObjectEvent) -> str | None:
        """Why an event needs no task, or None when it does."""
        if self.buckets is not None and event.bucket not in self.buckets:
            return "bucket not in S3THUMBS_BUCKETS"
        if self.layout.is_output(event.bucket, event.key):
            return "a thumbnail (output prefix or bucket)"
        if not is_image_key(event.key, event.content_type):
            return "not an image key"
        if event.action == "created" and event.size is not None and event.size > self.max_bytes:
            return "larger than S3THUMBS_MAX_BYTES"
        return None

    def sort(self, notification: Notification) -> tuple[list[ObjectEvent], list[Ignored]]:
        """The events that need a task, and every record skipped, with its reason (logged here)."""
        accepted: list[ObjectEvent] = []
        skipped = list(notification.ignored)
        for event in notification.events:
            reason = self.skip_reason(event)
            if reason:
                skipped.append(Ignored(event.bucket, event.key, reason))
            else:
                accepted.append(event)
        for item in skipped:
            logger.info("skipped s3://%s/%s: %s", item.bucket, item.key, item.reason,
                        extra={"bucket": item.bucket, "key": item.key, "reason": item.reason})
        return accepted, skipped


def create_app(publish: Publish, *, token: str | None = None, rules: Rules = Rules(),
               max_body_bytes: int = 1024 * 1024, ready: Callable[[], bool] = lambda: True,
               confirm: Confirm | None = None, verify: Verify | None = None,
               publish_timeout: float = PUBLISH_TIMEOUT) -> Starlette:
    """The receiver's ASGI app; ``publish`` puts tasks on the broker and raises when it cannot."""

    async def events(request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200)
        if token and not _authorized(request.headers.get("authorization", ""), token):
            return JSONResponse({"error": "missing or wrong token"}, 401,
                                headers={"WWW-Authenticate": 'Basic realm="s3thumbs"'})
        body = await _read_body(request, max_body_bytes)
        if body is None:
            return JSONResponse({"error": f"body over {max_body_bytes} bytes"}, 413)
        try:
            document = decode_body(body)
            refusal = await _unverified(document)
            if refusal is not None:
                return refusal
            parsed = parse_document(document)
        except InvalidEvent as e:
            logger.info("refused a body: %s", e)
            return JSONResponse({"error": str(e)}, 400)
        if isinstance(parsed, SubscriptionRequest):
            return await _subscription(parsed)
        return await _notification(parsed)

    async def _unverified(document: Any) -> Response | None:
        if verify is None or not is_sns_envelope(document):
            return None
        try:
            await run_in_threadpool(verify, document)
        except InvalidSignature as e:  # forged or foreign: 4xx, which SNS never retries
            logger.warning("refused an SNS message: %s", e)
            return JSONResponse({"error": f"SNS message not verified: {e}"}, 403)
        except Exception as e:  # the signing certificate cannot be fetched now: a fault that passes
            logger.error("could not verify an SNS message, answering 503: %s", e)
            return JSONResponse({"error": "signing certificate unavailable"}, 503, headers={"Retry-After": "5"})
        return None

    async def _notification(notification: Notification) -> Response:
        accepted, skipped = rules.sort(notification)
        if accepted:
            try:
                # A deadline of our own: whatever the broker does, the sender hears back in time. A
                # publish that finishes after it only duplicates the event when the sender retries.
                with anyio.fail_after(publish_timeout):
                    await anyio.to_thread.run_sync(publish, accepted, abandon_on_cancel=True)
            except TimeoutError:
                logger.error("broker did not take %d task(s) within %g s, answering 503", len(accepted),
                             publish_timeout)
                return JSONResponse({"error": "broker unavailable"}, 503, headers={"Retry-After": "5"})
            except Exception as e:  # whatever the broker client raised, the sender must retry later
                logger.error("broker refused %d task(s), answering 503: %s", len(accepted), e)
                return JSONResponse({"error": "broker unavailable"}, 503, headers={"Retry-After": "5"})
            for event in accepted:
                logger.info("published %s for s3://%s/%s", event.action, event.bucket, event.key,
                            extra={"bucket": event.bucket, "key": event.key, "action": event.action})
        return JSONResponse({
            "accepted": [{"bucket": e.bucket, "key": e.key, "action": e.action} for e in accepted],
            "skipped": [{"bucket": s.bucket, "key": s.key, "reason": s.reason} for s in skipped],
        }, 202 if accepted else 200)

    async def _subscription(request: SubscriptionRequest) -> Response:
        if request.message_type == "UnsubscribeConfirmation":
            return JSONResponse({"accepted": [], "skipped": [{"reason": "unsubscribe confirmation"}]}, 200)
        refusal = _refuse_subscription(request, rules.sns_topics)
        if refusal or confirm is None:
            reason = refusal or "subscription confirmation is not enabled"
            logger.warning("refused SNS subscription to %s: %s", request.topic_arn, reason)
            return JSONResponse({"error": reason}, 403)
        try:
            await run_in_threadpool(confirm, request.subscribe_url)
        except Exception as e:  # a network fault reaching SNS passes: let SNS send it again
            logger.error("could not confirm SNS subscription to %s: %s", request.topic_arn, e)
            return JSONResponse({"error": "confirmation failed"}, 503)
        logger.info("confirmed SNS subscription to %s", request.topic_arn)
        return JSONResponse({"confirmed": request.topic_arn}, 200)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if await run_in_threadpool(ready):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "broker unavailable"}, 503)

    return Starlette(routes=[
        Route("/events", events, methods=["POST", "HEAD"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ])


def _authorized(header: str, token: str) -> bool:
    """Bearer <token>, or HTTP Basic with the token as password; compared in constant time."""
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        offered = credentials.strip()
    elif scheme == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        offered = decoded.partition(":")[2]
    else:
        return False
    return hmac.compare_digest(offered.encode(), token.encode())


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_subscription(request: SubscriptionRequest, topics: frozenset[str] | None) -> str | None:
    """Why a subscription must not be confirmed, or None when it may be."""
    if topics is not None and request.topic_arn not in topics:
        return "topic not in S3THUMBS_SNS_TOPICS"
    if not is_sns_url(request.subscribe_url):
        return "SubscribeURL is not an https URL on an AWS SNS host"
    return None
