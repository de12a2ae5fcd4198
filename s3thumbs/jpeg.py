"""A JPEG's structure, read before decoding: how many scans it has, and whether it has more than one.

Each scan of a progressive JPEG makes the decoder pass over the whole image's coefficients again; a
file that repeats one scan thousands of times costs seconds of CPU per megabyte (libjpeg refuses a
repeated scan in a baseline file). Counting them needs only the markers: segment lengths are skipped,
and entropy-coded data ends at the first marker that is not a stuffed 0xFF00 or a restart marker.
That walk reads the whole file, so a quick upper bound comes first: every SOS marker is the bytes
FF DA, which entropy-coded data never holds (other segments may, an EXIF thumbnail's scans say).
"""

from __future__ import annotations

import math
import re
import struct
from typing import IO

from PIL import Image, ImageFile

# The least factor a DCT scale (by its denominator) must leave to the filter after it. Measured at
# 1024 after encoding, against an exact Lanczos reference: libjpeg's 2x2 IDCT (1/4) lost 0.68 dB
# leaving 1.055x, 0.57 at 1.12x, 0.34 at 1.46x; its 4x4 (1/2) 0.57 dB at 1.025x, 0.48 at 1.055x, 0.36
# at 1.12x. 1/8 (the DC alone) and 3/8 stayed under 0.41 dB leaving 1.055x. A scale short of its
# margin gives way to the next larger one (1/4 to 3/8, 1/2 to the full image).
MIN_FILTER_FACTOR = {4: 1.3, 2: 1.1}
# Standard encoders write 10 scans for a colour progressive JPEG (libjpeg's default script), a few
# more when optimised (mozjpeg); anything past this is made to waste a decoder's time.
MAX_SCANS = 100
CHUNK = 1024 * 1024
SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
# Markers that stand alone, without a length: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# Where entropy-coded data ends: 0xFF (any fill bytes), then a byte that is no stuffing (0x00),
# restart marker (0xD0-0xD7) or fill (0xFF).
_END_OF_DATA = re.compile(rb"\xff+[\x01-\xcf\xd8-\xfe]")


def draft(im: Image.Image, target: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """Ask the decoder for the smallest DCT scale whose output still covers ``target``, by the margin
    that scale needs (``MIN_FILTER_FACTOR``); the region of the drafted image that holds the whole
    source, or None when it cannot shrink.

    libjpeg-turbo scales by N/8, but Pillow's ``draft`` asks only for 1/2, 1/4 or 1/8. Where 1/2 is
    Pillow's choice and 3/8 covers the target too (a 4000 px photo into a 1024 box), asking for 1/3
    gets 3/8 (libjpeg rounds up to the next N/8): a quarter fewer pixels on each side for the resize
    that follows, which costs about a third less, for 2-3 ms more decoding.
    """
    width, height = im.size
    scale = _pillows_scale(im.size, target)
    margin = MIN_FILTER_FACTOR.get(scale, 1.0)
    short = min(math.ceil(width / scale) / target[0], math.ceil(height / scale) / target[1]) < margin
    # Short of its margin, ask for more so that Pillow picks the next larger scale (3/8 below needs none).
    asked = (math.ceil(target[0] * margin), math.ceil(target[1] * margin)) if short else target
    drafted = im.draft(None, asked)
    if drafted is None:
        return None
    three_eighths = (math.ceil(width * 3 / 8), math.ceil(height * 3 / 8))  # libjpeg's own rounding
    if not isinstance(im, ImageFile.ImageFile) or im.decoderconfig != (2, 0) or len(im.tile) != 1:
        return drafted[1]
    tile = im.tile[0]
    if tile.extents is None or not _covers(three_eighths, target):
        return drafted[1]
    left, top = tile.extents[:2]
    im.tile = [tile._replace(extents=(left, top, left + three_eighths[0], top + three_eighths[1]))]
    im._size = three_eighths
    im.decoderconfig = (3, 0)
    return (0, 0, width * 3 / 8, height * 3 / 8)


def _pillows_scale(size: tuple[int, int], target: tuple[int, int]) -> int:
    """The denominator Pillow's ``draft`` picks: the largest of 8, 4, 2, 1 that still covers ``target``."""
    fits = min(size[0] // target[0], size[1] // target[1])
    return next(s for s in (8, 4, 2, 1) if fits >= s)


def _covers(size: tuple[int, int], target: tuple[int, int]) -> bool:
    return size[0] >= target[0] and size[1] >= target[1]


def too_many_scans(source: IO[bytes], limit: int = MAX_SCANS) -> bool:
    """True when the JPEG file ``source`` has more than ``limit`` scans; the position is put back."""
    return _sos_upper_bound(source) > limit and count_scans(source, limit) > limit


def has_multiple_scans(source: IO[bytes], frame_components: int) -> bool:
    """True when the first scan of a sequential JPEG leaves components for later scans, so that the
    decoder keeps the whole image's coefficients (as for any progressive JPEG)."""
    start = source.tell()
    source.seek(0)
    try:
        if source.read(2) != b"\xff\xd8":
            return False
        while (marker := _next_marker(source)) is not None and marker != EOI:
            if marker in _STANDALONE:
                continue
            header = source.read(3)
            if len(header) < 3:
                return False
            if marker == SOS:
                return header[2] < frame_components  # the scan's component count follows its length
            (length,) = struct.unpack(">H", header[:2])
            source.seek(length - 3, 1)
        return False
    finally:
        source.seek(start)


def _sos_upper_bound(source: IO[bytes]) -> int:
    """How often the bytes FF DA occur in the file: at least its number of scans."""
    start = source.tell()
    source.seek(0)
    found, carry = 0, b""
    try:
        while chunk := source.read(CHUNK):
            data = carry + chunk
            found += data.count(b"\xff\xda")
            carry = data[-1:] if data.endswith(b"\xff") else b""
        return found
    finally:
        source.seek(start)


def count_scans(source: IO[bytes], stop_after: int = MAX_SCANS) -> int:
    """The number of scans (SOS markers) in the JPEG file ``source``, counting no further than ``stop_after + 1``.

    Reads from the start of the file and puts the position back where it was. Malformed structure
    ends the count: the decoder will say what is wrong with it.
    """
    start = source.tell()
    source.seek(0)
    try:
        if source.read(2) != b"\xff\xd8":
            return 0
        scans = 0
        while scans <= stop_after:
            marker = _next_marker(source)
            if marker is None or marker == EOI:
                break
            if marker in _STANDALONE:
                continue
            header = source.read(2)
            if len(header) < 2:
                break
            (length,) = struct.unpack(">H", header)
            if length < 2:
                break
            source.seek(length - 2, 1)
            if marker == SOS:
                scans += 1
                if not _skip_entropy_coded_data(source):
                    break
        return scans
    finally:
        source.seek(start)


def _next_marker(source: IO[bytes]) -> int | None:
    """The next marker's code, skipping fill bytes; None at the end or where no marker is."""
    byte = source.read(1)
    if byte != b"\xff":
        return None
    while byte == b"\xff":
        byte = source.read(1)
    return byte[0] if byte else None


def _skip_entropy_coded_data(source: IO[bytes]) -> bool:
    """Move to the 0xFF of the marker that ends the data; False at the end of the file."""
    offset = source.tell()
    carry = b""
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return False
        data = carry + chunk
        found = _END_OF_DATA.search(data)
        if found is not None:
            source.seek(offset - len(carry) + found.end() - 2)
            return True
        # Keep a trailing run of 0xFF: its marker byte may start the next chunk.
        kept = len(data) - len(data.rstrip(b"\xff"))
        carry = data[len(data) - kept :] if kept else b""
        offset += len(chunk)
