"""The receiver's HTTP side: notifications in, one task per object handed to the batcher.

Named endpoints, each reading what it needs from ``app.state.receiver``; authentication is the
``TokenAuth`` middleware and its table of doors. A 2xx means every accepted event is on the broker;
a fault that passes (the broker is down) is a 503, so the sender retries. It never reads an object,
and never waits for the status store: what it records for the gallery is written in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from s3thumbs.auth import TokenAuth, Tokens
from s3thumbs.batcher import Batcher
from s3thumbs.draining import Drain
from s3thumbs.errors import InvalidEvent, InvalidSignature
from s3thumbs.events import Notification, ObjectEvent, SubscriptionRequest
from s3thumbs.gallery import Gallery
from s3thumbs.messages import Publish
from s3thumbs.metrics import TEXT_FORMAT, ReceiverMetrics
from s3thumbs.notifications import decode_body, is_sns_envelope, parse_document
from s3thumbs.rules import Rules, log_skipped
from s3thumbs.sns import is_sns_url
from s3thumbs.status import BackgroundStatuses, Statuses, queued_records, skipped_records

logger = logging.getLogger(__name__)

# Seconds a request waits for the broker before answering 503 (SNS gives up on a request after 15).
PUBLISH_TIMEOUT = 5.0
# Seconds /readyz waits for the broker's answer: a probe needs one soon.
READY_TIMEOUT = 3.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Seconds a request's body may take to arrive: a body sent a byte at a time must not hold a connection.
BODY_TIMEOUT = 30.0
# Fetches an SNS SubscribeURL (an https URL on an AWS SNS host) to confirm a subscription.
Confirm = Callable[[str], None]
# Raises InvalidSignature for an SNS envelope that SNS did not sign (see s3thumbs.sns.Verifier).
Verify = Callable[[dict[str, Any]], None]
RETRY_LATER = {"Retry-After": "5"}


@dataclass(frozen=True)
class Receiving:
    """What the endpoints need, kept in ``app.state.receiver``."""

    batcher: Batcher
    rules: Rules
    metrics: ReceiverMetrics
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    publish_timeout: float = PUBLISH_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    ready: Callable[[], bool] = lambda: True
    confirm: Confirm | None = None
    verify: Verify | None = None
    sns_topics: frozenset[str] | None = None
    statuses: Statuses | None = None


def _receiving(request: Request) -> Receiving:
    receiving: Receiving = request.app.state.receiver
    return receiving


async def events(request: Request) -> Response:
    """``POST /events``: a notification body in, its tasks published; ``HEAD`` answers 200."""
    if request.method == "HEAD":
        return Response(status_code=200)
    deps = _receiving(request)
    try:
        async with asyncio.timeout(deps.body_timeout):
            body = await _read_body(request, deps.max_body_bytes)
    except TimeoutError:
        return JSONResponse({"error": f"body not received within {deps.body_timeout:g} s"}, 408)
    if body is None:
        return JSONResponse({"error": f"body over {deps.max_body_bytes} bytes"}, 413)
    try:
        document = decode_body(body)
        refusal = await _unverified(deps, document)
        if refusal is not None:
            return refusal
        parsed = parse_document(document)
    except InvalidEvent as e:
        logger.info("refused a body: %s", e)
        return JSONResponse({"error": str(e)}, 400)
    if isinstance(parsed, SubscriptionRequest):
        return await _subscription(deps, parsed)
    return await _notification(deps, parsed)


async def healthz(request: Request) -> Response:
    """``GET /healthz``: liveness, no I/O."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """``GET /readyz``: 200 while the broker answers, else 503 (within ``READY_TIMEOUT``)."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            ready = await run_in_threadpool(_receiving(request).ready)
    except TimeoutError:  # a broker that accepts connections and never answers is not ready
        ready = False
    if ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "broker unavailable"}, 503)


async def metrics_text(request: Request) -> Response:
    """``GET /metrics``: Prometheus text."""
    return Response(_receiving(request).metrics.text(), media_type=TEXT_FORMAT)


async def _unverified(deps: Receiving, document: Any) -> Response | None:
    if deps.verify is None or not is_sns_envelope(document):
        return None
    try:
        await run_in_threadpool(deps.verify, document)
    except InvalidSignature as e:  # forged or foreign: 4xx, which SNS never retries
        logger.warning("refused an SNS message: %s", e)
        return JSONResponse({"error": f"SNS message not verified: {e}"}, 403)
    except Exception as e:  # the signing certificate cannot be fetched now: a fault that passes
        logger.error("could not verify an SNS message, answering 503: %s", e)
        return JSONResponse({"error": "signing certificate unavailable"}, 503, headers=RETRY_LATER)
    return None


async def _notification(deps: Receiving, notification: Notification) -> Response:
    accepted, skipped = deps.rules.sort(notification)
    log_skipped(logger, skipped)
    for item in skipped:
        deps.metrics.skipped.labels(item.code).inc()
    deps.metrics.received.inc(len(accepted) + len(skipped))
    if deps.statuses is not None and (shown := deps.rules.shown_skips(skipped)):
        deps.statuses.save(skipped_records(shown))  # queued in the background: never waited for
    if accepted:
        started = time.perf_counter()
        try:
            # A deadline of our own: whatever the broker does, the sender hears back in time. A
            # publish that finishes after it only duplicates the event when the sender retries.
            async with asyncio.timeout(deps.publish_timeout):
                await deps.batcher.publish(accepted)
        except TimeoutError:
            deps.metrics.publish_failures.inc()
            logger.error(
                "broker did not take %d task(s) within %g s, answering 503", len(accepted), deps.publish_timeout
            )
            return JSONResponse({"error": "broker unavailable"}, 503, headers=RETRY_LATER)
        except Exception as e:  # whatever the broker client raised, the sender must retry later
            deps.metrics.publish_failures.inc()
            logger.error("broker refused %d task(s), answering 503: %s", len(accepted), e)
            return JSONResponse({"error": "broker unavailable"}, 503, headers=RETRY_LATER)
        deps.metrics.publish_seconds.observe(time.perf_counter() - started)
        deps.metrics.published.inc(len(accepted))
        for event in accepted:
            logger.info(
                "published %s for s3://%s/%s",
                event.action,
                event.bucket,
                event.key,
                extra={"bucket": event.bucket, "key": event.key, "action": event.action},
            )
    return JSONResponse(
        {
            "accepted": [{"bucket": e.bucket, "key": e.key, "action": e.action} for e in accepted],
            "skipped": [{"bucket": s.bucket, "key": s.key, "reason": s.reason, "code": s.code} for s in skipped],
        },
        202 if accepted else 200,
    )


async def _subscription(deps: Receiving, request: SubscriptionRequest) -> Response:
    if request.message_type == "UnsubscribeConfirmation":
        return JSONResponse({"accepted": [], "skipped": [{"reason": "unsubscribe confirmation"}]}, 200)
    refusal = _refuse_subscription(request, deps.sns_topics)
    if refusal or deps.confirm is None:
        reason = refusal or "subscription confirmation is not enabled"
        logger.warning("refused SNS subscription to %s: %s", request.topic_arn, reason)
        return JSONResponse({"error": reason}, 403)
    try:
        await run_in_threadpool(deps.confirm, request.subscribe_url)
    except Exception as e:  # a network fault reaching SNS passes: let SNS send it again
        logger.error("could not confirm SNS subscription to %s: %s", request.topic_arn, e)
        return JSONResponse({"error": "confirmation failed"}, 503)
    logger.info("confirmed SNS subscription to %s", request.topic_arn)
    return JSONResponse({"confirmed": request.topic_arn}, 200)


def _refuse_subscription(request: SubscriptionRequest, topics: frozenset[str] | None) -> str | None:
    """Why a subscription must not be confirmed, or None when it may be."""
    if topics is not None and request.topic_arn not in topics:
        return "topic not in S3THUMBS_SNS_TOPICS"
    if not is_sns_url(request.subscribe_url):
        return "SubscribeURL is not an https URL on an AWS SNS host"
    return None


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


def create_app(
    publish: Publish,
    *,
    token: str | None = None,
    gallery_token: str | None = None,
    rules: Rules | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ready: Callable[[], bool] = lambda: True,
    confirm: Confirm | None = None,
    verify: Verify | None = None,
    sns_topics: frozenset[str] | None = None,
    publish_timeout: float = PUBLISH_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    publisher_threads: int = 1,
    gallery: Gallery | None = None,
    statuses: Statuses | None = None,
) -> Starlette:
    """The receiver's ASGI app; ``publish`` puts tasks on the broker and raises when it cannot.

    ``publish`` is called from ``publisher_threads`` threads of its own, with the events of the requests
    waiting for the broker at that moment (see ``Batcher``); with more than one it must be thread-safe.
    ``statuses`` gets "queued" and "skipped" records, written from a thread of their own.
    ``token`` opens ``POST /events``, ``gallery_token`` the gallery; a gallery without one answers
    loopback host names only (``s3thumbs dev``): the caller gives none to a receiver reached from elsewhere.
    """
    writer = BackgroundStatuses(statuses) if statuses is not None else None

    def record_queued(published: Sequence[ObjectEvent]) -> None:
        if writer is not None:
            writer.save(queued_records(published), keep_existing=True)

    batcher = Batcher(publish, threads=publisher_threads, listeners=[record_queued])
    receiving = Receiving(
        batcher,
        rules or Rules(),
        ReceiverMetrics(),
        max_body_bytes=max_body_bytes,
        publish_timeout=publish_timeout,
        body_timeout=body_timeout,
        ready=ready,
        confirm=confirm,
        verify=verify,
        sns_topics=sns_topics,
        statuses=writer,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        batcher.close()

    routes = [
        Route("/events", events, methods=["POST", "HEAD"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]
    if gallery is not None:
        routes += [Route("/", gallery.page, methods=["GET"]), Route("/gallery.json", gallery.data, methods=["GET"])]
    tokens = Tokens(sender=token, viewer=gallery_token, local_viewers=gallery is not None and not gallery_token)
    middleware = [Middleware(Drain), Middleware(TokenAuth, tokens=tokens)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.receiver = receiving
    return app
