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
from s3thumbs.keys import Layout, is_image_key, name_problem
from s3thumbs.prefixes import SizeRules


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
    sizes: SizeRules | None = None  # S3THUMBS_RULES: a prefix may get no thumbnails at all

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        """The rules the settings describe."""
        return cls(settings.layout, settings.buckets, settings.max_bytes, settings.size_rules)

    def skip(self, event: ObjectEvent) -> Ignored | None:
        """Why an event needs no task (as a skipped record), or None when it does."""
        if problem := name_problem(event.bucket, event.key):
            return Ignored(event.bucket, event.key, f"S3 could never hold this object: {problem}", "invalid_name")
        if self.buckets is not None and event.bucket not in self.buckets:
            return Ignored(event.bucket, event.key, "bucket not in S3THUMBS_BUCKETS", "bucket_not_allowed")
        if self.layout.is_output(event.bucket, event.key):
            return Ignored(event.bucket, event.key, "a thumbnail (output prefix or bucket)", "own_output")
        if not is_image_key(event.key, event.content_type):
            return Ignored(event.bucket, event.key, "not an image key", "not_image")
        if self.sizes is not None and not self.sizes.sizes_for(event.key):
            return Ignored(event.bucket, event.key, "no thumbnails under this prefix (S3THUMBS_RULES)", "no_sizes")
        if event.action == "created" and event.size is not None and event.size > self.max_bytes:
            return Ignored(event.bucket, event.key, "larger than S3THUMBS_MAX_BYTES", "too_large")
        return None

    def sort(self, notification: Notification) -> Sorted:
        """Split a notification into the events that need a task and the records skipped."""
        accepted: list[ObjectEvent] = []
        skipped = list(notification.ignored)
        for event in notification.events:
            if skipped_record := self.skip(event):
                skipped.append(skipped_record)
            else:
                accepted.append(event)
        return Sorted(tuple(accepted), tuple(skipped))

    def shown_skips(self, skipped: tuple[Ignored, ...]) -> list[Ignored]:
        """The skipped uploads worth showing in the gallery: not our own thumbnails' events, nor names
        S3 could never hold."""
        return [
            item
            for item in skipped
            if name_problem(item.bucket, item.key) is None and not self.layout.is_output(item.bucket, item.key)
        ]


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
