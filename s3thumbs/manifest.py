"""The manifest: one JSON object per rendered source that says what its thumbnails are.

Written after every size, at ``Layout.manifest_key``, with the source's eTag and the settings hash as
metadata like the thumbnails: its presence with the current eTag means "ready" to an app, and its
absence or a stale one means "work left" to backfill and reconciliation. Deleted with the thumbnails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from s3thumbs.encoding import Thumbnail
from s3thumbs.keys import Layout

CONTENT_TYPE = "application/json"


def build(
    layout: Layout,
    bucket: str,
    key: str,
    source_etag: str,
    settings: str,
    size: tuple[int, int],
    thumbhash: str,
    thumbnails: Sequence[Thumbnail],
) -> dict[str, Any]:
    """The manifest of ``bucket/key`` rendered into ``thumbnails``; ``size``: the source as displayed."""
    return {
        "bucket": bucket,
        "key": key,
        "source_etag": source_etag,
        "settings": settings,
        "width": size[0],
        "height": size[1],
        "thumbhash": thumbhash,
        "thumbnails": [
            {
                "key": layout.thumbnail_key(bucket, key, thumb.box),
                "box": str(thumb.box),
                "fit": thumb.box.fit,
                "width": thumb.width,
                "height": thumb.height,
                "bytes": len(thumb.body),
                "content_type": thumb.content_type,
            }
            for thumb in thumbnails
        ],
        "rendered_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def body(manifest: dict[str, Any]) -> bytes:
    """The manifest as stored: UTF-8 JSON (keys and all text as given, nothing escaped away)."""
    return json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
