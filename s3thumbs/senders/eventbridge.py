"""Amazon EventBridge's S3 events ("Object Created", "Object Deleted"); their keys come as they are."""

from __future__ import annotations

from typing import Any

from s3thumbs.events import (
    Action,
    Ignored,
    Notification,
    ObjectEvent,
    field,
    names,
    optional_int,
    optional_str,
    text,
    version,
)

ACTIONS: dict[str, Action] = {"Object Created": "created", "Object Deleted": "removed"}


def is_eventbridge(document: dict[str, Any]) -> bool:
    """True for an EventBridge event from S3."""
    return document.get("source") == "aws.s3" and "detail-type" in document


def parse(document: dict[str, Any]) -> Notification:
    """The event of one EventBridge document."""
    detail_type = text(document, "detail-type")
    bucket = field(document, "detail", "bucket", "name")
    key = field(document, "detail", "object", "key")
    names(bucket, key)
    what = ACTIONS.get(detail_type)
    if what is None:
        return Notification(
            "eventbridge", ignored=(Ignored(bucket, key, f"event {detail_type} needs no work", "not_content"),)
        )
    obj = document["detail"]["object"]
    event = ObjectEvent(
        action=what,
        bucket=bucket,
        key=key,
        event_name=detail_type,
        size=optional_int(obj.get("size")) if what == "created" else None,
        etag=optional_str(obj.get("etag", obj.get("eTag"))) if what == "created" else None,
        version_id=version(obj.get("version-id")),
        sequencer=optional_str(obj.get("sequencer")),
    )
    return Notification("eventbridge", (event,))
