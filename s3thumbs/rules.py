"""The filter policy, pure: which object events need a task, and why the others do not.

Shared by the HTTP receiver and the SQS consumer; the caller logs what it skips.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from s3thumbs.config import Settings
from s3thumbs.events import Ignored, Notification, ObjectEvent
from s3thumbs.keys import Layout, is_image_key


class Sorted(NamedTuple):
    """A notification's events that need a task, and every record skipped with its reason."""

    accepted: tuple[ObjectEvent, ...]
    skipped: tuple[Ignored, ...]


@dataclass(frozen=True)
class Rules:
    """What gets a task: allowed buckets, never our own output, image-like keys, bounded sizes."""

    layout: Layout = Layout()
    buckets: frozenset[str] | None = None
    max_bytes: int = 100 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        """The rules the settings describe."""
        return cls(settings.layout, settings.buckets, settings.max_bytes)

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

    def sort(self, notification: Notification) -> Sorted:
        """Split a notification into the events that need a task and the records skipped."""
        accepted: list[ObjectEvent] = []
        skipped = list(notification.ignored)
        for event in notification.events:
            reason = self.skip_reason(event)
            if reason:
                skipped.append(Ignored(event.bucket, event.key, reason))
            else:
                accepted.append(event)
        return Sorted(tuple(accepted), tuple(skipped))

    def shown_skips(self, skipped: tuple[Ignored, ...]) -> list[Ignored]:
        """The skipped uploads worth showing in the gallery: our own thumbnails' events are noise."""
        return [item for item in skipped if item.key and not self.layout.is_output(item.bucket, item.key)]


def log_skipped(logger: logging.Logger, skipped: Iterable[Ignored]) -> None:
    """One line per skipped record, naming the object and why."""
    for item in skipped:
        logger.info(
            "skipped s3://%s/%s: %s",
            item.bucket,
            item.key,
            item.reason,
            extra={"bucket": item.bucket, "key": item.key, "reason": item.reason},
        )
