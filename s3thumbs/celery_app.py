"""The Celery app: built from Settings, and the one way tasks are published.

Imports no Pillow, so the receiver stays light.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from celery import Celery

from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent

QUEUE = "s3thumbs"
THUMBNAIL_TASK = "s3thumbs.thumbnail"
DELETE_TASK = "s3thumbs.delete_thumbnails"
RECONCILE_TASK = "s3thumbs.reconcile"
TASK_NAMES = {"created": THUMBNAIL_TASK, "removed": DELETE_TASK}
# A publish tries twice, each try bounded by the socket timeouts below, then raises.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
BROKER_CONNECT_TIMEOUT = 3
# Publishers (receiver, backfill, sqs) also bound every read and write: a broker that stops
# answering without closing the connection must give an error, not a hung request.
PUBLISH_SOCKET_TIMEOUT = 2
# A pool process that grew past this (KiB) after a task is replaced: one huge image cannot bloat a
# worker for ever. The largest image S3THUMBS_MAX_PIXELS admits by default peaks near 850 MiB.
MAX_MEMORY_PER_CHILD_KIB = 1024 * 1024
MAX_TASKS_PER_CHILD = 500


def create_app(settings: Settings, *, results: bool = True) -> Celery:
    """A Celery app for at-least-once IO tasks on the ``s3thumbs`` queue.

    ``results=False`` makes a publishing app (receiver, backfill, sqs): no result backend, which
    the receiver must never touch, and socket timeouts on every broker read and write.
    """
    app = Celery("s3thumbs", broker=settings.broker_url,
                 backend=settings.result_backend if results else None, set_as_current=False)
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
        worker_send_task_events=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT,
        broker_transport_options=_transport_options(settings, publisher=not results),
    )
    return app


def _transport_options(settings: Settings, publisher: bool) -> dict[str, Any]:
    if settings.broker_url.startswith(("redis://", "rediss://")):
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
    if settings.broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
        options = {"confirm_publish": True}
        if publisher:
            options.update(read_timeout=PUBLISH_SOCKET_TIMEOUT, write_timeout=PUBLISH_SOCKET_TIMEOUT)
        return options
    return {}


def task_id(event: ObjectEvent) -> str:
    """The same event always gets the same task id, so logs and results line up across duplicates."""
    parts = (event.action, event.bucket, event.key, event.etag, event.version_id, event.sequencer)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(part or "" for part in parts)))


def publish(app: Celery, events: Sequence[ObjectEvent]) -> None:
    """Put one task per event on the broker; raises when the broker cannot take them."""
    with app.producer_or_acquire() as producer:
        for event in events:
            kwargs = {name: value for name, value in
                      (("etag", event.etag), ("version_id", event.version_id)) if value}
            app.send_task(TASK_NAMES[event.action], args=[event.bucket, event.key], kwargs=kwargs,
                          queue=QUEUE, task_id=task_id(event), producer=producer,
                          retry=True, retry_policy=PUBLISH_RETRY)


class Publisher:
    """Publishes batches of events over connections it holds, one per calling thread.

    A call returns only once every event of its batch is on the broker, and raises otherwise. On Redis a
    batch goes in one pipeline round trip; on RabbitMQ every message of a batch is sent, then the broker's
    confirms for all of them are awaited together (one wait per batch instead of one per message). The
    queue is declared once per connection, not once per message. After a failure the connection is
    dropped and the batch tried once more on a new one, as ``PUBLISH_RETRY`` allows a single publish.
    Messages are built as ``send_task`` builds them (``test_celery_app`` compares the two).
    """

    def __init__(self, app: Celery) -> None:
        self._app = app
        self.confirms = app.conf.broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))
        self._local = threading.local()

    def __call__(self, events: Sequence[ObjectEvent]) -> None:
        link = self._link()
        try:
            link.publish(events)
        except Exception:
            link.close()
            try:
                link.publish(events)
            except Exception:
                link.close()
                raise

    def close(self) -> None:
        """Drop the calling thread's connection; its next call opens a new one."""
        link: _Link | None = getattr(self._local, "link", None)
        if link is not None:
            link.close()

    def _link(self) -> _Link:
        link: _Link | None = getattr(self._local, "link", None)
        if link is None:
            link = self._local.link = _Link(self._app, self.confirms)
        return link


class _Link:
    """One connection and its producer."""

    def __init__(self, app: Celery, confirms: bool) -> None:
        self._app = app
        self._confirms = confirms
        self._connection: Any = None
        self._producer: Any = None
        self._queue: Any = None
        self._sent = 0  # messages sent on the current channel: the last delivery tag
        self._unconfirmed: set[int] = set()
        self._nacked: list[int] = []

    def close(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it is being dropped because it failed
                connection.close()

    def _open(self) -> Any:
        # RabbitMQ: confirms are selected on the channel below and awaited per batch, not per message.
        options = {"confirm_publish": False} if self._confirms else {}
        redis = self._app.conf.broker_url.startswith(("redis://", "rediss://"))
        connection = self._app.connection_for_write(transport_options=options,
                                                    transport=_redis_transport() if redis else None)
        self._connection = connection
        connection.ensure_connection(max_retries=1, timeout=BROKER_CONNECT_TIMEOUT)
        producer = self._app.amqp.Producer(connection)
        self._queue = self._app.amqp.queues[QUEUE]
        producer.maybe_declare(self._queue)
        if self._confirms:
            self._sent, self._unconfirmed, self._nacked = 0, set(), []
            channel = producer.channel
            # Confirms may be read while later messages are sent: follow them all, whoever reads them.
            channel.events["basic_ack"].add(self._acked)
            channel.events["basic_nack"].add(self._refused)
            channel.confirm_select()
        self._producer = producer
        return producer

    def publish(self, events: Sequence[ObjectEvent]) -> None:
        producer = self._producer or self._open()
        if not self._confirms:
            with producer.batch():  # Redis: one pipeline; other transports publish at once
                for event in events:
                    self._send(producer, event)
            return
        for event in events:
            self._sent += 1
            self._unconfirmed.add(self._sent)
            self._send(producer, event)
        while self._unconfirmed and not self._nacked:
            self._connection.drain_events(timeout=PUBLISH_SOCKET_TIMEOUT)
        if self._nacked:
            raise ConnectionError(f"the broker refused message(s) {self._nacked}")

    def _send(self, producer: Any, event: ObjectEvent) -> None:
        """What ``send_task`` does for our tasks, without its routing and result bookkeeping."""
        app, amqp = self._app, self._app.amqp
        name = TASK_NAMES[event.action]
        kwargs = {name: value for name, value in (("etag", event.etag), ("version_id", event.version_id)) if value}
        message = amqp.create_task_message(task_id(event), name, [event.bucket, event.key], kwargs,
                                           reply_to=app.thread_oid, create_sent_event=app.conf.task_send_sent_event,
                                           ignore_result=None)
        amqp.send_task_message(producer, name, message, queue=self._queue, declare=[], retry=False)

    def _acked(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed.difference_update([tag for tag in self._unconfirmed if tag <= delivery_tag])
        else:
            self._unconfirmed.discard(delivery_tag)

    def _refused(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked.append(delivery_tag)


def _redis_transport() -> Any:
    """kombu's Redis transport, keeping one Redis client per channel instead of building one for every
    publish or batch (about 90 µs each, a fifth of the receiver's time per event). A redis-py client
    holds no connection of its own (the channel's pool does) and is thread-safe, so keeping it is safe."""
    from kombu.transport import redis as kombu_redis

    class KeptClientChannel(kombu_redis.Channel):
        _kept_client: Any = None

        @contextlib.contextmanager
        def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
            if client is None:
                if self._kept_client is None:
                    with super().conn_or_acquire() as created:
                        self._kept_client = created
                client = self._kept_client
            yield client

    class Transport(kombu_redis.Transport):
        Channel = KeptClientChannel

    return Transport


def broker_ready(app: Celery) -> bool:
    """True when the broker accepts a connection within a few seconds."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_CONNECT_TIMEOUT)
    except Exception:  # any failure to connect means "not ready"; the reason is irrelevant to a probe
        return False
    return True
