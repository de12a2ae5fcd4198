"""The Celery app, built from Settings: at-least-once delivery, JSON only, the ``s3thumbs`` queue.

Imports no Pillow, so publishing processes stay light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amqp.exceptions import ChannelError
from celery import Celery

from s3thumbs.config import Settings
from s3thumbs.messages import QUEUE

BROKER_CONNECT_TIMEOUT = 3
# Publishers (receiver, backfill, sqs) also bound every read and write: a broker that stops
# answering without closing the connection must give an error, not a hung request.
PUBLISH_SOCKET_TIMEOUT = 2
# A pool process that grew past this (KiB) after a task is replaced: one huge image cannot bloat a
# worker for ever. The largest image S3THUMBS_MAX_PIXELS admits by default peaks near 850 MiB.
MAX_MEMORY_PER_CHILD_KIB = 1024 * 1024
MAX_TASKS_PER_CHILD = 500


def is_redis(url: str) -> bool:
    """True for a Redis broker URL."""
    return url.startswith(("redis://", "rediss://"))


def is_amqp(url: str) -> bool:
    """True for a RabbitMQ (AMQP) broker URL."""
    return url.startswith(("amqp://", "amqps://", "pyamqp://"))


def create_app(settings: Settings, *, results: bool = True) -> Celery:
    """A Celery app for at-least-once IO tasks on the ``s3thumbs`` queue.

    ``results=False`` makes a publishing app (receiver, backfill, sqs): no result backend, and
    socket timeouts on every broker read and write.
    """
    app = Celery(
        "s3thumbs",
        broker=settings.broker_url,
        backend=settings.result_backend if results else None,
        set_as_current=False,
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_default_queue=QUEUE,
        task_default_exchange=QUEUE,
        task_default_routing_key=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A lost pool process (OOM, SIGKILL) counts as a retry, so a poison image ends FAILED
        # after max_retries instead of being requeued for ever.
        task_retry_on_worker_lost=True,
        task_acks_on_failure=True,
        task_acks_on_timeout=True,
        worker_prefetch_multiplier=1,
        worker_max_memory_per_child=MAX_MEMORY_PER_CHILD_KIB,
        worker_max_tasks_per_child=MAX_TASKS_PER_CHILD,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=settings.soft_time_limit,
        result_expires=24 * 3600,
        # Off: three events per task cost the worker about 0.6 ms of CPU and Redis three publishes
        # (bench/overhead-results.md) with nobody listening; Flower turns them on itself (its
        # enable_events, on by default), as does `celery control enable_events`.
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT,
        broker_transport_options=_transport_options(settings, publisher=not results),
    )
    return app


def _transport_options(settings: Settings, publisher: bool) -> dict[str, Any]:
    if is_redis(settings.broker_url):
        options: dict[str, Any] = {
            "visibility_timeout": settings.visibility_timeout,
            # Sweep unacknowledged tasks back every ~10 s instead of ~100 s.
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT,
            "socket_keepalive": True,
        }
        if publisher:
            options["socket_timeout"] = PUBLISH_SOCKET_TIMEOUT
        return options
    if is_amqp(settings.broker_url):
        options = {"confirm_publish": True}
        if publisher:
            options.update(read_timeout=PUBLISH_SOCKET_TIMEOUT, write_timeout=PUBLISH_SOCKET_TIMEOUT)
        return options
    return {}


def broker_ready(app: Celery) -> bool:
    """True when the broker accepts a connection within a few seconds."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_CONNECT_TIMEOUT)
    except Exception:  # any failure to connect means "not ready"; the reason is irrelevant to a probe
        return False
    return True


def queue_depth(app: Celery) -> Callable[[], int | None]:
    """Asks the broker how many messages wait in the queue (Redis list length or RabbitMQ count)."""

    def depth() -> int | None:
        try:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                _, count, _ = connection.default_channel.queue_declare(QUEUE, passive=True)
                return int(count)
        except ChannelError as e:
            # Not declared yet, or (Redis) an empty list, which Redis does not keep: nothing waits.
            return 0 if str(getattr(e, "reply_code", "")) == "404" else None
        except Exception:  # a scrape must answer even while the broker is away
            return None

    return depth
