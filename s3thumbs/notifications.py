"""Notification bodies in, object events out: strict JSON, then the reader of whoever sent it.

Understands a MinIO webhook body (``EventName``/``Key``/``Records``), an S3 event (``Records``; AWS,
and Ceph RGW's topics), an SNS HTTP envelope (``Notification``, ``SubscriptionConfirmation``…), an
EventBridge "Object Created"/"Object Deleted" event and a SeaweedFS filer event, detected from the
body alone. Pure: bytes or dicts in, values out.
"""

from __future__ import annotations

import json
from typing import Any

from s3thumbs.errors import InvalidEvent
from s3thumbs.events import Ignored, Notification, SubscriptionRequest, text
from s3thumbs.senders import eventbridge, records, seaweedfs


def parse_body(body: bytes | str) -> Notification | SubscriptionRequest:
    """Parse a request body strictly: JSON, and one of the notification shapes."""
    return parse_document(decode_body(body))


def decode_body(body: bytes | str) -> Any:
    """The JSON document in a body, strictly (no NaN or Infinity); InvalidEvent when there is none."""
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise InvalidEvent(f"body is not JSON: {e}") from e
    if not _plain(body):
        _require_unicode(document)
    return document


def is_sns_envelope(document: Any) -> bool:
    """True when a decoded document is an SNS HTTP envelope (whatever its Type)."""
    return isinstance(document, dict) and "Type" in document and "TopicArn" in document


def parse_document(document: Any) -> Notification | SubscriptionRequest:
    """Parse an already decoded JSON document into a notification."""
    if not isinstance(document, dict):
        raise InvalidEvent("body is not a JSON object")
    if is_sns_envelope(document):
        return _parse_sns(document)
    if "Records" in document:
        return records.parse(document["Records"], "minio" if "EventName" in document else "s3")
    if document.get("Event") == "s3:TestEvent":
        return Notification(
            "s3-test-event", ignored=(Ignored(text(document, "Bucket"), "", "test event", "test_event"),)
        )
    if eventbridge.is_eventbridge(document):
        return eventbridge.parse(document)
    if seaweedfs.is_seaweedfs(document):
        return seaweedfs.parse(document)
    raise InvalidEvent("body is not an S3, MinIO, Ceph RGW, SNS, EventBridge or SeaweedFS notification")


def _parse_sns(document: dict[str, Any]) -> Notification | SubscriptionRequest:
    message_type = text(document, "Type")
    if message_type in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        return SubscriptionRequest(message_type, text(document, "TopicArn"), text(document, "SubscribeURL"))
    if message_type != "Notification":
        raise InvalidEvent(f"unknown SNS message type {message_type!r}")
    message = document.get("Message")
    if not isinstance(message, str):
        raise InvalidEvent("SNS notification has no Message string")
    inner = parse_body(message)
    if isinstance(inner, SubscriptionRequest):
        raise InvalidEvent("SNS notification wraps another SNS envelope")
    return Notification("sns/" + inner.kind, inner.events, inner.ignored)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _plain(body: bytes | str) -> bool:
    """True when a body cannot hold a lone surrogate: ASCII without any ``\\u`` escape.

    S3 and MinIO URL-encode keys, so their bodies usually are, and need no walk.
    """
    if isinstance(body, bytes):
        return body.isascii() and b"\\u" not in body
    return body.isascii() and "\\u" not in body


def _require_unicode(document: Any) -> None:
    """Refuse lone surrogates (``\\ud800`` escapes): no sender means one, and UTF-8 cannot carry it."""
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending += node.keys()
            pending += node.values()
        elif isinstance(node, list):
            pending += node
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as e:
                raise InvalidEvent("body holds a lone surrogate: not valid Unicode") from e
