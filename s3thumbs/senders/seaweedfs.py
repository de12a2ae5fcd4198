"""SeaweedFS's filer webhook: its own JSON, one event per filer entry change, keys as they are.

SeaweedFS has no S3 notification API; its filer posts ``{"event_type", "key", "message"}`` for every
entry under ``/buckets/``: ``create``; ``update`` (an overwrite, or new metadata); ``delete`` (the entry
in ``message.old_entry``); ``rename`` (old ``key``, new ``new_parent_path``/``new_entry.name``).
``key`` is the filer path ``/buckets/<bucket>/<object key>``. Noise, skipped with a reason: directory
entries (a bucket, an implicit folder), multipart internals under ``/buckets/<bucket>/.uploads/``
(which may claim an image MIME type), and the filer's own ``/buckets/.system/`` records.
The eTag is ``extended["Seaweed-X-Amz-ETag"]``, base64 of the hex eTag string.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from s3thumbs.errors import InvalidEvent
from s3thumbs.events import Action, Ignored, Notification, ObjectEvent, names, optional_int, optional_str, text

EVENT_TYPES = frozenset({"create", "update", "delete", "rename"})
BUCKETS = "/buckets/"
UPLOADS = ".uploads/"
ETAG = "Seaweed-X-Amz-ETag"


def is_seaweedfs(document: dict[str, Any]) -> bool:
    """True for a SeaweedFS filer event."""
    return "event_type" in document and "key" in document and "message" in document


def parse(document: dict[str, Any]) -> Notification:
    """The object events of one filer event (a rename is two), and the noise skipped."""
    event_type = text(document, "event_type")
    path = document.get("key")
    message = document.get("message")
    if event_type not in EVENT_TYPES or not isinstance(path, str) or not isinstance(message, dict):
        raise InvalidEvent("not a SeaweedFS filer event (event_type, key, message)")
    names(path)
    old, new = _entry(message, "old_entry"), _entry(message, "new_entry")
    if event_type == "delete":
        return _one("removed", path, old, "delete")
    if event_type == "rename":
        parent, name = message.get("new_parent_path"), new.get("name") if new else None
        if not isinstance(parent, str) or not isinstance(name, str):
            raise InvalidEvent("SeaweedFS rename has no new_parent_path and new_entry.name")
        names(parent, name)
        removed = _one("removed", path, old, "rename")
        created = _one("created", f"{parent.rstrip('/')}/{name}", new, "rename")
        return Notification("seaweedfs", removed.events + created.events, removed.ignored + created.ignored)
    return _one("created", path, new, event_type)


def _entry(message: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = message.get(name)
    if entry is not None and not isinstance(entry, dict):
        raise InvalidEvent(f"SeaweedFS {name} is not an object")
    return entry


def _one(what: Action, path: str, entry: dict[str, Any] | None, event_type: str) -> Notification:
    """One entry change at ``path``, as an object event or a skipped record."""
    bucket, _, key = path.removeprefix(BUCKETS).partition("/") if path.startswith(BUCKETS) else ("", "", path)
    skip = _noise(path, bucket, key, entry)
    if skip is not None:
        return Notification("seaweedfs", ignored=(Ignored(bucket, key, skip, "store_internal"),))
    attributes = entry.get("attributes") if entry else None
    attributes = attributes if isinstance(attributes, dict) else {}
    event = ObjectEvent(
        action=what,
        bucket=bucket,
        key=key,
        event_name=f"seaweedfs:{event_type}",
        size=optional_int(attributes.get("file_size")) if what == "created" else None,
        etag=_etag(entry) if what == "created" else None,
        content_type=optional_str(attributes.get("mime")) if what == "created" else None,
    )
    return Notification("seaweedfs", (event,))


def _noise(path: str, bucket: str, key: str, entry: dict[str, Any] | None) -> str | None:
    """Why an entry is the filer's business rather than an object's, or None for an object."""
    if not path.startswith(BUCKETS) or not bucket or not key:
        return "not an object of a bucket (a bucket or a path outside /buckets/)"
    if bucket.startswith("."):
        return "the filer's own records"
    if key.startswith(UPLOADS):
        return "a multipart upload's internals"
    if entry is not None and entry.get("is_directory") is True:
        return "a directory"
    return None


def _etag(entry: dict[str, Any] | None) -> str | None:
    """The hex eTag S3 reports, from the entry's base64 of it; None when it is absent or garbled."""
    extended = entry.get("extended") if entry else None
    value = extended.get(ETAG) if isinstance(extended, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("ascii") or None
    except (binascii.Error, ValueError):
        return None
