"""The one way s3thumbs puts tasks on the broker: the receiver, the SQS consumer, backfill,
reconciliation and dead-letter redrive all publish through a ``BrokerPublisher`` (the
``messages.Publish`` protocol).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from celery import Celery
from kombu.transport import redis as kombu_redis

from s3thumbs.celery_app import BROKER_CONNECT_TIMEOUT, PUBLISH_SOCKET_TIMEOUT, create_app, is_amqp, is_redis
from s3thumbs.config import Settings
from s3thumbs.events import ObjectEvent
from s3thumbs.messages import QUEUE, task_call


class BrokerPublisher:
    """Publishes batches of events over connections it holds, one per calling thread.

    A call returns only once every event of its batch is on the broker, and raises otherwise. On Redis a
    batch goes in one pipeline round trip; on RabbitMQ every message of a batch is sent, then the broker's
    confirms for all of them are awaited together (one wait per batch instead of one per message). The
    queue is declared once per connection, not once per message. After a failure the connection is
    dropped and the batch tried once more on a new one. Messages are built as Celery's ``send_task``
    builds them (a test compares the two).
    """

    def __init__(self, app: Celery) -> None:
        self._app = app
        self.confirms = is_amqp(app.conf.broker_url)
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerPublisher:
        """A publisher on the configured broker, with its own publishing app (bounded socket waits)."""
        return cls(create_app(settings, results=False))

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
        transport = KeptClientTransport if is_redis(self._app.conf.broker_url) else None
        connection = self._app.connection_for_write(transport_options=options, transport=transport)
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
        call = task_call(event)
        message = amqp.create_task_message(
            call.task_id,
            call.name,
            call.args,
            call.kwargs,
            reply_to=app.thread_oid,
            create_sent_event=app.conf.task_send_sent_event,
            ignore_result=None,
        )
        amqp.send_task_message(producer, call.name, message, queue=self._queue, declare=[], retry=False)

    def _acked(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed.difference_update([tag for tag in self._unconfirmed if tag <= delivery_tag])
        else:
            self._unconfirmed.discard(delivery_tag)

    def _refused(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked.append(delivery_tag)


class _KeptClientChannel(kombu_redis.Channel):
    """kombu's Redis channel, keeping one Redis client instead of building one for every publish or
    batch (about 90 µs each, a fifth of the receiver's time per event). A redis-py client holds no
    connection of its own (the channel's pool does) and is thread-safe, so keeping it is safe."""

    _kept_client: Any = None

    @contextlib.contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client is None:
            if self._kept_client is None:
                with super().conn_or_acquire() as created:
                    self._kept_client = created
            client = self._kept_client
        yield client


class KeptClientTransport(kombu_redis.Transport):
    """kombu's Redis transport with the kept-client channel."""

    Channel = _KeptClientChannel
