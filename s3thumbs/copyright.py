"""``S3THUMBS_KEEP_METADATA=copyright``: the source's EXIF Artist and Copyright, in a fresh EXIF block
that holds nothing else. GPS, the camera, dates and every other field are never copied.
"""

from __future__ import annotations

from PIL import ExifTags, Image

KEPT_TAGS = (ExifTags.Base.Artist, ExifTags.Base.Copyright)
# A credit line, not a payload: a longer field is dropped rather than copied into every thumbnail.
MAX_FIELD_BYTES = 1024


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
