"""Dead letters: a record of every task that failed for good, to list and to re-drive.

Redis cannot dead-letter (a rejected message is simply gone), so on every broker a failed task
leaves a JSON record on the queue ``s3thumbs.dead``, which no worker consumes: the list
``s3thumbs.dead`` on Redis, a durable queue on RabbitMQ. Records are written from Celery's
``task_failure`` signal, which fires for bad input, exhausted retries, hard time limits and a
worker lost too often, before the message is acknowledged.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from celery import Celery, signals
from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message

from s3thumbs.events import ObjectEvent
from s3thumbs.messages import ACTIONS, DEAD_QUEUE, DELIVER_TASK, QUEUE, Publish

logger = logging.getLogger(__name__)

_RETRY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


@dataclass(frozen=True)
class DeadLetter:
    """One task that failed for good: what it was asked to do, and why it failed."""

    task: str
    bucket: str
    key: str
    reason: str
    exception: str
    task_id: str
    retries: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)
    failed_at: str = ""
    worker: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeadLetter:
        """Read a record back, ignoring fields this version does not know."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def event(self) -> ObjectEvent:
        """The event whose task this was: publishing it again re-drives the task."""
        return ObjectEvent(
            ACTIONS[self.task],
            self.bucket,
            self.key,
            "redrive",
            etag=self.kwargs.get("etag"),
            version_id=self.kwargs.get("version_id"),
        )


def dead_queue() -> Queue:
    """The durable queue that holds the records."""
    return Queue(DEAD_QUEUE, routing_key=DEAD_QUEUE, durable=True)  # type: ignore[no-untyped-call]


def record(app: Celery, letter: DeadLetter) -> None:
    """Put one record on the dead-letter queue."""
    with app.producer_or_acquire() as producer:
        producer.publish(
            letter.to_dict(),
            exchange="",
            routing_key=DEAD_QUEUE,
            declare=[dead_queue()],
            serializer="json",
            delivery_mode="persistent",
            retry=True,
            retry_policy=_RETRY,
        )


def install(app: Celery, names: Collection[str]) -> None:
    """Record every failure of the tasks ``names`` of ``app`` as a dead letter."""

    def on_failure(
        sender: Any = None,
        task_id: str = "",
        exception: BaseException | None = None,
        args: Any = None,
        kwargs: Any = None,
        **_: Any,
    ) -> None:
        if getattr(sender, "name", None) not in names or getattr(sender, "app", None) is not app:
            return
        args = list(args or [])
        letter = DeadLetter(
            task=sender.name,
            bucket=str(args[0]) if args else "",
            key=str(args[1]) if len(args) > 1 else "",
            reason=str(exception) or type(exception).__name__,
            exception=type(exception).__name__,
            task_id=task_id,
            retries=int(getattr(sender.request, "retries", 0) or 0),
            kwargs=dict(kwargs or {}),
            failed_at=datetime.now(UTC).isoformat(timespec="seconds"),
            worker=socket.gethostname(),
        )
        try:
            record(app, letter)
        except Exception as e:  # the failure itself is already logged and stored; say the record is missing
            logger.error(
                "could not record dead letter for s3://%s/%s: %s",
                letter.bucket,
                letter.key,
                e,
                extra={"bucket": letter.bucket, "key": letter.key, "task_id": task_id},
            )
            return
        logger.warning(
            "s3://%s/%s: dead letter recorded (%s: %s)",
            letter.bucket,
            letter.key,
            letter.exception,
            letter.reason,
            extra={"bucket": letter.bucket, "key": letter.key, "task_id": task_id},
        )

    signals.task_failure.connect(on_failure, weak=False)


@contextmanager
def _messages(connection: Connection) -> Iterator[list[tuple[DeadLetter, Message]]]:
    """Every record, fetched without acknowledging: what is not acknowledged returns to the queue when
    the connection closes."""
    queue = dead_queue()(connection.default_channel)
    queue.declare()  # type: ignore[no-untyped-call]
    fetched: list[tuple[DeadLetter, Message]] = []
    while (message := queue.get(no_ack=False, accept=["json"])) is not None:  # type: ignore[no-untyped-call]
        fetched.append((DeadLetter.from_dict(message.decode()), message))
    yield fetched


def list_letters(app: Celery) -> list[DeadLetter]:
    """Every dead letter, oldest first; the queue keeps them."""
    with app.connection_for_read() as connection:
        with _messages(connection) as fetched:
            return [letter for letter, _ in fetched]


def redrive(
    app: Celery, publish: Publish, select: Callable[[DeadLetter], bool] = lambda letter: True
) -> list[DeadLetter]:
    """Publish the selected letters' tasks again, with their retries counted afresh; each record is
    removed once its task is on the broker."""
    done: list[DeadLetter] = []
    with app.connection_for_read() as connection:
        with _messages(connection) as fetched:
            for letter, message in fetched:
                if not select(letter):
                    continue
                if letter.task == DELIVER_TASK:  # a completion event: the same delivery, same event id
                    app.send_task(DELIVER_TASK, args=[letter.bucket, letter.key], kwargs=letter.kwargs, queue=QUEUE)
                else:
                    publish([letter.event()])
                message.ack()  # type: ignore[no-untyped-call]
                done.append(letter)
    return done
