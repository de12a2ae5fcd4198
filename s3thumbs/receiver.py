"""The receiver: S3/MinIO/SNS/EventBridge notifications in, one Celery task per object out.

It never reads an object and never touches the result backend. A 2xx means every accepted
event is on the broker; a fault that passes (the broker is down) is a 503, so the sender retries.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from s3thumbs import metrics
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
from s3thumbs.gallery import Gallery
from s3thumbs.keys import Layout, is_image_key
from s3thumbs.sns import is_sns_url

logger = logging.getLogger(__name__)

Publish = Callable[[Sequence[ObjectEvent]], None]
# Seconds a request waits for the broker before answering 503 (SNS gives up on a request after 15).
PUBLISH_TIMEOUT = 5.0
# At most this many events go to the broker in one publish call, whatever the number of requests waiting.
MAX_BATCH_EVENTS = 256
# The publisher thread ends after this many idle seconds; the next request starts another.
PUBLISHER_IDLE_SECONDS = 60.0
Confirm = Callable[[str], None]
# Records skipped uploads (with their reasons) for the gallery.
RecordSkipped = Callable[[Sequence[Ignored]], None]
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


@dataclass(eq=False)
class _Waiter:
    """One request's events, and how to wake that request once they are published (or not)."""

    events: Sequence[ObjectEvent]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    abandoned: bool = field(default=False)


class Batcher:
    """Publishes the events of concurrent requests together, from publisher threads of its own.

    Each request hands its events over and waits. The requests that reach that point in the same turn
    of the event loop are handed to the publisher threads together; a thread takes every batch waiting
    (up to ``max_events`` events), calls ``publish`` once with all their events, and only when that call
    has returned wakes each of those requests: a request's 2xx still means its own events are on the
    broker. When the call raises, every request of that batch gets the error. A request that gave up
    waiting (its deadline passed) before a thread reached it is not published.

    Up to ``threads`` threads publish at once: more than one helps only where each call waits long for
    the broker (RabbitMQ's confirms), and then ``publish`` must be thread-safe. A thread ends after
    ``idle_seconds`` without work, calling ``publish.close()`` if there is one; the next request starts
    another.
    """

    def __init__(self, publish: Publish, *, threads: int = 1, max_events: int = MAX_BATCH_EVENTS,
                 idle_seconds: float = PUBLISHER_IDLE_SECONDS) -> None:
        self._publish = publish
        self._max_threads = threads
        self._max_events = max_events
        self._idle_seconds = idle_seconds
        self._gathering: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
        self._pending: queue.SimpleQueue[list[_Waiter] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = 0  # publisher threads alive
        self._idle = 0  # of which waiting for work

    async def publish(self, events: Sequence[ObjectEvent]) -> None:
        """Return once ``events`` are on the broker; raise what ``publish`` raised when they are not."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(events, loop, loop.create_future())
        gathering = self._gathering.get(loop)
        if gathering is None:
            # Hand over once the requests ready in this turn of the loop have joined: one wake-up of
            # a publisher thread for all of them, not one each.
            gathering = self._gathering[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathering.append(waiter)
        try:
            await waiter.future
        finally:
            waiter.abandoned = True  # published or not, nobody waits for it any more

    def close(self) -> None:
        """Let the publisher threads end once they have published what is waiting."""
        with self._lock:
            for _ in range(self._running):
                self._pending.put(None)
            self._running = self._idle = 0

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        waiters = self._gathering.pop(loop)
        with self._lock:
            self._pending.put(waiters)
            if self._idle == 0 and self._running < self._max_threads:
                self._running += 1
                self._idle += 1  # waiting for work until it has taken some
                threading.Thread(target=self._run, name="s3thumbs-publisher", daemon=True).start()

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            close = getattr(self._publish, "close", None)
            if close is not None:
                close()

    def _serve(self) -> None:
        while True:
            try:
                first = self._pending.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._pending.empty():
                        self._running -= 1
                        self._idle -= 1
                        return
                continue
            if first is None:
                return
            with self._lock:
                self._idle -= 1
            batch, stop = list(first), False
            size = sum(len(waiter.events) for waiter in batch)
            while size < self._max_events:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch += more
                size += sum(len(waiter.events) for waiter in more)
            self._publish_batch([waiter for waiter in batch if not waiter.abandoned])
            if stop:
                return
            with self._lock:
                self._idle += 1

    def _publish_batch(self, batch: list[_Waiter]) -> None:
        if not batch:
            return
        error: Exception | None = None
        try:
            self._publish([event for waiter in batch for event in waiter.events])
        except Exception as e:  # handed to every request of the batch, each answers 503
            error = e
        loops: dict[asyncio.AbstractEventLoop, list[_Waiter]] = {}
        for waiter in batch:
            loops.setdefault(waiter.loop, []).append(waiter)
        for loop, waiters in loops.items():
            try:
                loop.call_soon_threadsafe(_settle, waiters, error)
            except RuntimeError:  # that loop is closed: nobody is left to answer
                pass


def _settle(waiters: list[_Waiter], error: Exception | None) -> None:
    for waiter in waiters:
        if waiter.future.done():
            continue
        if error is None:
            waiter.future.set_result(None)
        else:
            waiter.future.set_exception(error)


def create_app(publish: Publish, *, token: str | None = None, rules: Rules = Rules(),
               max_body_bytes: int = 1024 * 1024, ready: Callable[[], bool] = lambda: True,
               confirm: Confirm | None = None, verify: Verify | None = None,
               publish_timeout: float = PUBLISH_TIMEOUT, publisher_threads: int = 1,
               gallery: Gallery | None = None, record_skipped: RecordSkipped | None = None) -> Starlette:
    """The receiver's ASGI app; ``publish`` puts tasks on the broker and raises when it cannot.

    ``publish`` is called from ``publisher_threads`` threads of its own, with the events of the requests
    waiting for the broker at that moment (see Batcher); with more than one it must be thread-safe.
    """
    batcher = Batcher(publish, threads=publisher_threads)

    def refused(request: Request) -> Response | None:
        if token and not _authorized(request.headers.get("authorization", ""), token):
            return JSONResponse({"error": "missing or wrong token"}, 401,
                                headers={"WWW-Authenticate": 'Basic realm="s3thumbs"'})
        return None

    async def events(request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200)
        if refusal := refused(request):
            return refusal
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
        # The gallery shows why an upload got no thumbnails; our own thumbnails' events are noise.
        shown = [item for item in skipped if item.key and not rules.layout.is_output(item.bucket, item.key)]
        if shown and record_skipped is not None:
            await run_in_threadpool(record_skipped, shown)
        metrics.EVENTS_RECEIVED.inc(len(accepted) + len(skipped))
        for item in skipped:
            metrics.EVENTS_SKIPPED.labels(item.reason).inc()
        if accepted:
            started = time.perf_counter()
            try:
                # A deadline of our own: whatever the broker does, the sender hears back in time. A
                # publish that finishes after it only duplicates the event when the sender retries.
                async with asyncio.timeout(publish_timeout):
                    await batcher.publish(accepted)
            except TimeoutError:
                metrics.PUBLISH_FAILURES.inc()
                logger.error("broker did not take %d task(s) within %g s, answering 503", len(accepted),
                             publish_timeout)
                return JSONResponse({"error": "broker unavailable"}, 503, headers={"Retry-After": "5"})
            except Exception as e:  # whatever the broker client raised, the sender must retry later
                metrics.PUBLISH_FAILURES.inc()
                logger.error("broker refused %d task(s), answering 503: %s", len(accepted), e)
                return JSONResponse({"error": "broker unavailable"}, 503, headers={"Retry-After": "5"})
            metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
            metrics.EVENTS_PUBLISHED.inc(len(accepted))
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

    async def metrics_text(request: Request) -> Response:
        return Response(metrics.receiver_metrics(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if await run_in_threadpool(ready):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "broker unavailable"}, 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        batcher.close()

    def guarded(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:  # the gallery shows users' images: behind the token
            return refused(request) or await endpoint(request)
        return route

    routes = [
        Route("/events", events, methods=["POST", "HEAD"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
    ]
    if gallery is not None:
        routes += [Route("/", guarded(gallery.page), methods=["GET"]),
                   Route("/gallery.json", guarded(gallery.data), methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


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
