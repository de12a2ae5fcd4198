"""Images made to hurt a decoder: small files that need huge memory or CPU, and bloated profiles.

Each is a valid file (or as valid as an attacker needs): what makes it hostile is its shape.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from functools import cache

from PIL import Image, ImageCms

from tests.support.images import encode, raw_png

# Entropy-coded data ends at a marker that is no stuffing (FF00), restart (FFD0-D7) or fill (FFFF).
_END_OF_SCAN = re.compile(rb"\xff+[\x01-\xcf\xd8-\xfe]")


@cache
def tall_png(height: int = 100_000_000, bit_depth: int = 8) -> bytes:
    """A 1×``height`` black RGB PNG: a few hundred KB, a row pointer per pixel to decode."""
    row = bytes(1 + 3 * bit_depth // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row * 1000) for _ in range(height // 1000)) + compressor.flush()
    return raw_png(1, height, bit_depth, 2, idat)


@cache
def deep_tiff(mode: str, size: tuple[int, int] = (10000, 10000)) -> bytes:
    """A flat, deflated TIFF of a deep mode (``I;16``, ``I`` 32-bit, ``F`` float): tiny file, big image."""
    return encode(Image.new(mode, size), "TIFF", compression="tiff_adobe_deflate")


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment after SOI; a scan runs to the end of its entropy-coded data."""
    segments, position = [], 2
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xD9:
            segments.append((marker, position, position + 2))
            break
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        end = position + 2 + length
        if marker == 0xDA:
            found = _END_OF_SCAN.search(data, end)
            end = found.end() - 2 if found else len(data)
        segments.append((marker, position, end))
        position = end
    return segments


@cache
def scan_bomb(scans: int, size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A flat progressive JPEG whose last scan is repeated until it has ``scans`` scans: each repeat
    costs a few bytes and a pass over every block of the image."""
    data = encode(Image.new("RGB", size, (120, 130, 140)), "JPEG", progressive=True, quality=90)
    found = [segment for segment in jpeg_segments(data) if segment[0] == 0xDA]
    _, start, end = found[-1]
    return data[:end] + data[start:end] * (scans - len(found)) + data[end:]


def swapped_profile(padding: int = 0) -> bytes:
    """An RGB profile whose red and blue primaries are swapped (a pure red pixel is blue in sRGB),
    padded by a private tag of ``padding`` bytes."""
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    header, (count,) = bytearray(srgb[:128]), struct.unpack(">I", srgb[128:132])
    tags = [list(struct.unpack(">4sII", srgb[132 + 12 * i : 144 + 12 * i])) for i in range(count)]
    found = {tag[0]: tag for tag in tags}
    found[b"rXYZ"][1:], found[b"bXYZ"][1:] = found[b"bXYZ"][1:], found[b"rXYZ"][1:]
    body = bytes(srgb[132 + 12 * count :])
    table_end = 132 + 12 * (count + 1)
    shift = 12  # one more tag table entry
    entries = [(sig, offset + shift, size) for sig, offset, size in tags]
    entries.append((b"zzzz", len(srgb) + shift, padding))
    data = struct.pack(">I", count + 1) + b"".join(struct.pack(">4sII", *entry) for entry in entries)
    profile = bytes(header) + data + body + bytes(padding)
    assert len(header) + len(data) == table_end
    return struct.pack(">I", len(profile)) + profile[4:]


def with_profile(profile: bytes, fmt: str = "PNG", colour: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A 640×480 image of one colour carrying ``profile``."""
    return encode(Image.new("RGB", (640, 480), colour), fmt, icc_profile=profile)


def pixel_of(data: bytes) -> tuple[int, ...]:
    """The centre pixel of an encoded image, as RGB."""
    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
        value: tuple[int, ...] = rgb.getpixel((rgb.width // 2, rgb.height // 2))  # type: ignore[assignment]
        return value
