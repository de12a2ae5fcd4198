"""What goes on the broker: the queue, the task names, and each task's id and arguments.

Pure: no Celery here, so every publisher (receiver, SQS, backfill, reconcile, redrive) and the
worker agree on one spelling of each name.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from s3thumbs.events import Action, ObjectEvent

QUEUE = "s3thumbs"
# Where records of tasks that failed for good wait; no worker consumes it.
DEAD_QUEUE = "s3thumbs.dead"
THUMBNAIL_TASK = "s3thumbs.thumbnail"
DELETE_TASK = "s3thumbs.delete_thumbnails"
RECONCILE_TASK = "s3thumbs.reconcile"
# Delivers one completion event to S3THUMBS_EVENTS_URL (``completions``).
DELIVER_TASK = "s3thumbs.deliver_event"
TASK_NAMES: dict[Action, str] = {"created": THUMBNAIL_TASK, "removed": DELETE_TASK}
ACTIONS: dict[str, Action] = {name: action for action, name in TASK_NAMES.items()}


@dataclass(frozen=True)
class TaskCall:
    """One task message: name, positional ``[bucket, key]``, optional keyword arguments, id."""

    name: str
    args: list[str]
    kwargs: dict[str, Any]
    task_id: str


def task_id(event: ObjectEvent) -> str:
    """The same event always gets the same task id, so logs and results line up across duplicates."""
    parts = (event.action, event.bucket, event.key, event.etag, event.version_id, event.sequencer)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(part or "" for part in parts)))


def task_call(event: ObjectEvent) -> TaskCall:
    """The task that does what ``event`` asks: SPEC's positional ``[bucket, key]`` and optional kwargs."""
    kwargs = {name: value for name, value in (("etag", event.etag), ("version_id", event.version_id)) if value}
    return TaskCall(TASK_NAMES[event.action], [event.bucket, event.key], kwargs, task_id(event))


class Publish(Protocol):
    """Puts one task per event on the broker; returns once they are all there, raises otherwise.

    ``publisher.BrokerPublisher`` is the implementation; this protocol lets the receiver, the SQS
    consumer and backfill depend on it without importing Celery.
    """

    def __call__(self, events: Sequence[ObjectEvent]) -> None: ...

    def close(self) -> None:
        """Drop the calling thread's connection, if it holds one."""
