"""A JPEG's structure, read before decoding: how many scans it has.

Each scan of a progressive (or multi-scan) JPEG makes the decoder pass over the whole image's
coefficients again; a file that repeats one scan thousands of times costs seconds of CPU per
megabyte. Counting them needs only the markers: segment lengths are skipped, and entropy-coded data
ends at the first marker that is not a stuffed 0xFF00 or a restart marker.
"""

from __future__ import annotations

import re
import struct
from typing import IO

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
