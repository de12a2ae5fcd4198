"""S3THUMBS_KEEP_METADATA=copyright: the photographer's credit kept, nothing that locates or identifies."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from s3thumbs.config import ConfigError, Settings
from s3thumbs.imaging import RenderSpec, render
from s3thumbs.keys import Size
from tests.support import images, phone

ARTIST, COPYRIGHT = "Ana Fotógrafa", "© 2026 Ana Fotógrafa, all rights reserved"


def credited(long_artist: bool = False) -> Image.Exif:
    """EXIF as a camera app writes it, the credit in UTF-8, with GPS, camera make and model, date."""
    exif = images.exif(orientation=6, gps=True)
    exif[ExifTags.Base.Artist] = b"x" * 2000 if long_artist else ARTIST.encode()
    exif[ExifTags.Base.Copyright] = COPYRIGHT.encode()
    return exif


def as_read(text: str) -> str:
    """What Pillow reads from an EXIF text field holding ``text`` in UTF-8."""
    return text.encode().decode("latin-1")


def thumbnails(source: bytes, fmt: str, keep: bool) -> list[Image.Image]:
    spec = RenderSpec((Size(64, 64), Size(256, 256)), fmt, keep_copyright=keep)
    return [Image.open(io.BytesIO(t.body)) for t in render(io.BytesIO(source), spec).thumbnails]


SOURCES = {
    "jpeg": lambda exif: images.encode(images.stored(images.pattern(400, 200), 6), "JPEG", exif=exif),
    "heic": lambda exif: phone.heic(images.pattern(400, 200), exif=exif.tobytes()),
}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_artist_and_copyright_are_kept_and_nothing_else(source, fmt):
    data = SOURCES[source](credited())
    assert images.CAMERA.encode() in data

    for thumbnail in thumbnails(data, fmt, keep=True):
        exif = thumbnail.getexif()
        assert dict(exif) == {ExifTags.Base.Artist: as_read(ARTIST), ExifTags.Base.Copyright: as_read(COPYRIGHT)}
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_by_default_no_metadata_at_all(fmt):
    for thumbnail in thumbnails(SOURCES["jpeg"](credited()), fmt, keep=False):
        assert dict(thumbnail.getexif()) == {}


def test_a_credit_longer_than_a_credit_line_is_dropped():
    [small, _] = thumbnails(SOURCES["jpeg"](credited(long_artist=True)), "jpeg", keep=True)

    assert dict(small.getexif()) == {ExifTags.Base.Copyright: as_read(COPYRIGHT)}


def test_keeping_the_copyright_changes_the_settings_hash_so_thumbnails_are_made_again():
    sizes = (Size(64, 64),)

    assert RenderSpec(sizes, keep_copyright=True).fingerprint != RenderSpec(sizes).fingerprint


def test_the_setting_takes_none_or_copyright():
    assert Settings.from_env({"S3THUMBS_KEEP_METADATA": "copyright"}).keep_metadata == "copyright"
    with pytest.raises(ConfigError, match="S3THUMBS_KEEP_METADATA"):
        Settings.from_env({"S3THUMBS_KEEP_METADATA": "all"})


XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:exif="http://ns.adobe.com/exif/1.0/"'
    ' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" exif:GPSLatitude="48,51.4N" photoshop:City="Secretville">'
    '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">© 2026 Ana &amp; Co</rdf:li></rdf:Alt></dc:rights>'
    "<dc:creator><rdf:Seq><rdf:li>Ana Fotógrafa</rdf:li><rdf:li>Bo</rdf:li></rdf:Seq></dc:creator>"
    "<exif:GPSLongitude>2,21.05E</exif:GPSLongitude>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
).encode()
BOMB = (  # entities within entities: a billion laughs, in small
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;</x>'
)


def xmp_of(thumbnail: Image.Image) -> bytes:
    raw = thumbnail.info.get("xmp") or thumbnail.info.get("XML:com.adobe.xmp") or b""
    return raw.encode() if isinstance(raw, str) else raw


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_xmp_rights_and_creators_are_kept_and_nothing_else(fmt):
    source = images.encode(images.pattern(400, 200), "JPEG", xmp=XMP)

    for thumbnail in thumbnails(source, fmt, keep=True):
        kept = xmp_of(thumbnail)
        assert "© 2026 Ana &amp; Co".encode() in kept
        assert "<rdf:li>Ana Fotógrafa</rdf:li><rdf:li>Bo</rdf:li>".encode() in kept
        assert b"GPS" not in kept and b"Secretville" not in kept and b"48,51" not in kept
        rdf = thumbnail.getxmp()["xmpmeta"]["RDF"]["Description"]
        assert rdf["creator"]["Seq"]["li"] == ["Ana Fotógrafa", "Bo"]


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_no_xmp_without_the_setting(fmt):
    source = images.encode(images.pattern(400, 200), "JPEG", xmp=XMP)

    for thumbnail in thumbnails(source, fmt, keep=False):
        assert xmp_of(thumbnail) == b""


def test_hostile_xmp_is_not_expanded_and_the_picture_still_renders():
    source = images.encode(images.pattern(400, 200), "JPEG", xmp=BOMB)

    for thumbnail in thumbnails(source, "jpeg", keep=True):
        assert thumbnail.size[0] > 0
        assert xmp_of(thumbnail) == b""
