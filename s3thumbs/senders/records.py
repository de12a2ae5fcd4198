"""S3-style ``Records``: what AWS S3 sends (directly, or inside SNS), MinIO's webhook, and Ceph RGW's topics.

AWS and MinIO URL-encode each record's key (``+`` for a space, MinIO ``%2F`` for a slash too): it is
decoded here, once. Ceph RGW (``eventSource: "ceph:s3"``) sends the key as it is: a ``+`` in it is a plus.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from s3thumbs.errors import InvalidEvent
from s3thumbs.events import (
    Ignored,
    Notification,
    ObjectEvent,
    action,
    field,
    names,
    optional_int,
    optional_str,
    text,
    version,
)

# Senders whose keys arrive raw, by their records' eventSource.
RAW_KEY_SOURCES = frozenset({"ceph:s3"})


def parse(records: Any, kind: str) -> Notification:
    """The events of a ``Records`` list (``kind`` names the sender in the summary: s3, minio)."""
    if not isinstance(records, list):
        raise InvalidEvent("Records is not a list")
    events: list[ObjectEvent] = []
    ignored: list[Ignored] = []
    for record in records:
        event_name = field(record, "eventName")
        bucket = field(record, "s3", "bucket", "name")
        raw_key = field(record, "s3", "object", "key")
        if not isinstance(event_name, str):
            raise InvalidEvent("eventName must be a string")
        names(bucket, raw_key)
        raw = text(record, "eventSource") in RAW_KEY_SOURCES
        if raw:
            kind = "ceph"
        key = raw_key if raw else _decoded(raw_key)
        what = action(event_name)
        if what is None:
            ignored.append(Ignored(bucket, key, f"event {event_name} does not change content", "not_content"))
            continue
        obj = record["s3"]["object"]
        events.append(
            ObjectEvent(
                action=what,
                bucket=bucket,
                key=key,
                event_name=event_name,
                size=optional_int(obj.get("size")) if what == "created" else None,
                etag=optional_str(obj.get("eTag")) if what == "created" else None,
                version_id=version(obj.get("versionId")),
                sequencer=optional_str(obj.get("sequencer")),
                content_type=optional_str(obj.get("contentType")),
            )
        )
    return Notification(kind, tuple(events), tuple(ignored))


def _decoded(raw_key: str) -> str:
    try:
        return unquote_plus(raw_key, errors="strict")
    except UnicodeDecodeError as e:
        raise InvalidEvent(f"object key {raw_key!r} is not valid URL-encoded UTF-8") from e
