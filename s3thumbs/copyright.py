"""``S3THUMBS_KEEP_METADATA=copyright``: the source's EXIF Artist and Copyright, in a fresh EXIF block
that holds nothing else, and its XMP ``dc:rights`` and ``dc:creator``, in a fresh XMP packet. GPS,
the camera, dates and every other field are never copied. XMP is read by Pillow through defusedxml
(no entity expansion, no external entities).
"""

from __future__ import annotations

import logging
from typing import Any
from xml.sax.saxutils import escape

from PIL import ExifTags, Image

KEPT_TAGS = (ExifTags.Base.Artist, ExifTags.Base.Copyright)
# A credit line, not a payload: a longer field is dropped rather than copied into every thumbnail.
MAX_FIELD_BYTES = 1024
MAX_CREATORS = 8
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">{}</rdf:Description>'
    "</rdf:RDF></x:xmpmeta>"
)

logger = logging.getLogger(__name__)


def kept_exif(im: Image.Image) -> bytes | None:
    """The EXIF block to write into every thumbnail of ``im`` (loaded), or None when there is nothing to keep."""
    source = im.getexif()
    kept = Image.Exif()
    for tag in KEPT_TAGS:
        value = source.get(tag)
        # The bytes as written, so a UTF-8 credit stays UTF-8: Pillow reads them as Latin-1 text,
        # and would write text back as ASCII, "?" for every other character.
        raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
        if isinstance(raw, bytes):
            raw = raw.replace(b"\x00", b"").strip()
            if raw and len(raw) <= MAX_FIELD_BYTES:
                kept[tag] = raw
    return kept.tobytes() if len(kept) else None


def kept_xmp(im: Image.Image) -> bytes | None:
    """A fresh XMP packet with the source's ``dc:rights`` and ``dc:creator``, or None when it has neither."""
    try:
        description = im.getxmp().get("xmpmeta", {}).get("RDF", {}).get("Description", {})
    except Exception as e:  # whatever malformed XML raises: the picture is still rendered, without it
        logger.info("XMP not read: %s", type(e).__name__)
        return None
    if isinstance(description, list):  # several rdf:Description elements
        description = {k: v for part in description if isinstance(part, dict) for k, v in part.items()}
    if not isinstance(description, dict):
        return None
    rights = [t for t in _texts(description.get("rights")) if len(t.encode()) <= MAX_FIELD_BYTES][:1]
    creators = [t for t in _texts(description.get("creator")) if len(t.encode()) <= MAX_FIELD_BYTES][:MAX_CREATORS]
    parts = []
    if rights:
        parts.append(
            f'<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">{escape(rights[0])}</rdf:li></rdf:Alt></dc:rights>'
        )
    if creators:
        items = "".join(f"<rdf:li>{escape(name)}</rdf:li>" for name in creators)
        parts.append(f"<dc:creator><rdf:Seq>{items}</rdf:Seq></dc:creator>")
    return XMP.format("".join(parts)).encode() if parts else None


def _texts(node: Any) -> list[str]:
    """The text values of an XMP property as Pillow parses it (rdf:Alt/Seq/Bag of rdf:li, or plain)."""
    if isinstance(node, str):
        text = node.replace("\x00", "").strip()
        return [text] if text else []
    if isinstance(node, list):
        return [text for item in node for text in _texts(item)]
    if isinstance(node, dict):
        if "text" in node:
            return _texts(node["text"])
        return [text for key in ("Alt", "Seq", "Bag", "li") for text in _texts(node.get(key))]
    return []
