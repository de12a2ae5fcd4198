"""What a notification means, whoever sent it: object events to act on, and records that need nothing.

Pure values, and the helpers every sender's reader (``senders/``) uses to read fields of untrusted JSON:
a missing or mistyped field is an ``InvalidEvent``, never a ``KeyError``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from s3thumbs.errors import InvalidEvent

Action = Literal["created", "removed"]
# Why a record needs no task, as a fixed code: the label of s3thumbs_events_skipped_total. The reason
# in words, which may quote what the sender wrote, goes to the log and the JSON answer only.
SkipCode = Literal[
    "not_content",
    "test_event",
    "invalid_name",
    "bucket_not_allowed",
    "own_output",
    "not_image",
    "too_large",
    "store_internal",
    "no_sizes",
]
SKIP_CODES: tuple[SkipCode, ...] = get_args(SkipCode)

# Only these change an object's content; PutTagging, PutRetention… are MinIO "created" events too.
CREATED = frozenset(
    {"ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:Copy", "ObjectCreated:CompleteMultipartUpload"}
)
# A lifecycle expiration removes the object as surely as a DELETE does.
REMOVED_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")


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


def text(mapping: dict[str, Any], name: str, default: str = "") -> str:
    """A string field, or ``default`` when it is missing or not a string."""
    value = mapping.get(name, default)
    return value if isinstance(value, str) else default


def field(mapping: Any, *path: str) -> Any:
    """The value at ``path`` in nested objects; InvalidEvent naming the path when it is not there."""
    for name in path:
        if not isinstance(mapping, dict) or name not in mapping:
            raise InvalidEvent(f"record has no {'.'.join(path)}")
        mapping = mapping[name]
    return mapping


def optional_str(value: Any) -> str | None:
    """A string, or None for a missing or empty value."""
    if value is None or value == "":
        return None
    return str(value)


def version(value: Any) -> str | None:
    """A version id; S3 and moto say "null" for objects written while versioning was off."""
    found = optional_str(value)
    return None if found == "null" else found


def names(*values: Any) -> None:
    """Bucket names and keys must be strings that S3 could hold: valid Unicode."""
    for name in values:
        if not isinstance(name, str):
            raise InvalidEvent("bucket names and object keys must be strings")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidEvent(f"{name!r} is not valid Unicode") from e


def optional_int(value: Any) -> int | None:
    """An integer, or None for anything else (booleans included)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def action(event_name: str) -> Action | None:
    """What an S3-style event name means: created, removed, or None for events that change no content."""
    name = event_name.removeprefix("s3:")
    if name in CREATED:
        return "created"
    if name.startswith(REMOVED_PREFIXES):
        return "removed"
    return None
