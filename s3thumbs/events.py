"""Notifications in, object events out. Pure: bytes or dicts in, values out.

Understands a MinIO webhook body (``EventName``/``Key``/``Records``), an S3 event (``Records``),
an SNS HTTP envelope (``Notification``, ``SubscriptionConfirmation``…) and an EventBridge
"Object Created"/"Object Deleted" event. Keys in Records are URL-encoded (``+`` for space,
MinIO also ``%2F``) and are decoded here, once; EventBridge keys come as they are.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args
from urllib.parse import unquote_plus

from s3thumbs.errors import InvalidEvent

Action = Literal["created", "removed"]
# Why a record needs no task, as a fixed code: the label of s3thumbs_events_skipped_total. The reason
# in words, which may quote what the sender wrote, goes to the log and the JSON answer only.
SkipCode = Literal[
    "not_content", "test_event", "invalid_name", "bucket_not_allowed", "own_output", "not_image", "too_large"
]
SKIP_CODES: tuple[SkipCode, ...] = get_args(SkipCode)

# Only these change an object's content; PutTagging, PutRetention… are MinIO "created" events too.
CREATED = frozenset(
    {"ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:Copy", "ObjectCreated:CompleteMultipartUpload"}
)
# A lifecycle expiration removes the object as surely as a DELETE does.
REMOVED_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")
EVENTBRIDGE_ACTIONS: dict[str, Action] = {"Object Created": "created", "Object Deleted": "removed"}


@dataclass(frozen=True)
class ObjectEvent:
    """One object that was created or removed."""

    action: Action
    bucket: str
    key: str
    event_name: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    content_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; ``from_dict`` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectEvent:
        """Rebuild an event written by ``to_dict``."""
        return cls(**data)


@dataclass(frozen=True)
class Ignored:
    """A record that needs no work, and why: in words, and as one of the fixed ``SKIP_CODES``."""

    bucket: str
    key: str
    reason: str
    code: SkipCode


@dataclass(frozen=True)
class Notification:
    """What one body asked for: the events to act on and the records that need nothing."""

    kind: str
    events: tuple[ObjectEvent, ...] = ()
    ignored: tuple[Ignored, ...] = ()


@dataclass(frozen=True)
class SubscriptionRequest:
    """An SNS (Un)SubscriptionConfirmation: to be confirmed only for an allowed topic."""

    message_type: str
    topic_arn: str
    subscribe_url: str


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


def _plain(body: bytes | str) -> bool:
    """True when a body cannot hold a lone surrogate: ASCII without any ``\\u`` escape.

    S3 and MinIO URL-encode keys, so their bodies usually are, and need no walk.
    """
    if isinstance(body, bytes):
        return body.isascii() and b"\\u" not in body
    return body.isascii() and "\\u" not in body


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
        kind = "minio" if "EventName" in document else "s3"
        return _parse_records(document["Records"], kind)
    if document.get("Event") == "s3:TestEvent":
        return Notification(
            "s3-test-event", ignored=(Ignored(_text(document, "Bucket"), "", "test event", "test_event"),)
        )
    if document.get("source") == "aws.s3" and "detail-type" in document:
        return _parse_eventbridge(document)
    raise InvalidEvent("body is not an S3, MinIO, SNS or EventBridge notification")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


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


def _text(mapping: dict[str, Any], name: str, default: str = "") -> str:
    value = mapping.get(name, default)
    return value if isinstance(value, str) else default


def _field(mapping: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(mapping, dict) or name not in mapping:
            raise InvalidEvent(f"record has no {'.'.join(path)}")
        mapping = mapping[name]
    return mapping


def _optional_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _version(value: Any) -> str | None:
    """A version id; S3 and moto say "null" for objects written while versioning was off."""
    version = _optional_str(value)
    return None if version == "null" else version


def _names(*names: Any) -> None:
    """Bucket names and keys must be strings that S3 could hold: valid Unicode."""
    for name in names:
        if not isinstance(name, str):
            raise InvalidEvent("bucket names and object keys must be strings")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidEvent(f"{name!r} is not valid Unicode") from e


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _action(event_name: str) -> Action | None:
    name = event_name.removeprefix("s3:")
    if name in CREATED:
        return "created"
    if name.startswith(REMOVED_PREFIXES):
        return "removed"
    return None


def _parse_sns(document: dict[str, Any]) -> Notification | SubscriptionRequest:
    message_type = _text(document, "Type")
    if message_type in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        return SubscriptionRequest(message_type, _text(document, "TopicArn"), _text(document, "SubscribeURL"))
    if message_type != "Notification":
        raise InvalidEvent(f"unknown SNS message type {message_type!r}")
    message = document.get("Message")
    if not isinstance(message, str):
        raise InvalidEvent("SNS notification has no Message string")
    inner = parse_body(message)
    if isinstance(inner, SubscriptionRequest):
        raise InvalidEvent("SNS notification wraps another SNS envelope")
    return Notification("sns/" + inner.kind, inner.events, inner.ignored)


def _parse_records(records: Any, kind: str) -> Notification:
    if not isinstance(records, list):
        raise InvalidEvent("Records is not a list")
    events: list[ObjectEvent] = []
    ignored: list[Ignored] = []
    for record in records:
        event_name = _field(record, "eventName")
        bucket = _field(record, "s3", "bucket", "name")
        raw_key = _field(record, "s3", "object", "key")
        if not isinstance(event_name, str):
            raise InvalidEvent("eventName must be a string")
        _names(bucket, raw_key)
        try:
            key = unquote_plus(raw_key, errors="strict")
        except UnicodeDecodeError as e:
            raise InvalidEvent(f"object key {raw_key!r} is not valid URL-encoded UTF-8") from e
        action = _action(event_name)
        if action is None:
            ignored.append(Ignored(bucket, key, f"event {event_name} does not change content", "not_content"))
            continue
        obj = record["s3"]["object"]
        events.append(
            ObjectEvent(
                action=action,
                bucket=bucket,
                key=key,
                event_name=event_name,
                size=_optional_int(obj.get("size")) if action == "created" else None,
                etag=_optional_str(obj.get("eTag")) if action == "created" else None,
                version_id=_version(obj.get("versionId")),
                sequencer=_optional_str(obj.get("sequencer")),
                content_type=_optional_str(obj.get("contentType")),
            )
        )
    return Notification(kind, tuple(events), tuple(ignored))


def _parse_eventbridge(document: dict[str, Any]) -> Notification:
    detail_type = _text(document, "detail-type")
    bucket = _field(document, "detail", "bucket", "name")
    key = _field(document, "detail", "object", "key")
    _names(bucket, key)
    action = EVENTBRIDGE_ACTIONS.get(detail_type)
    if action is None:
        return Notification(
            "eventbridge", ignored=(Ignored(bucket, key, f"event {detail_type} needs no work", "not_content"),)
        )
    obj = document["detail"]["object"]
    event = ObjectEvent(
        action=action,
        bucket=bucket,
        key=key,
        event_name=detail_type,
        size=_optional_int(obj.get("size")) if action == "created" else None,
        etag=_optional_str(obj.get("etag", obj.get("eTag"))) if action == "created" else None,
        version_id=_version(obj.get("version-id")),
        sequencer=_optional_str(obj.get("sequencer")),
    )
    return Notification("eventbridge", (event,))
