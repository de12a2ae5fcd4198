"""Big 8-bit PNGs: decoded by libvips' loader and box-shrunk while their rows stream in (``fast`` extra).

Pillow inflates a 12 MP RGBA PNG into a 48 MB image and premultiplies it into another before its
box ``reduce()``: the decode is most of the render. libvips inflates with zlib-ng and passes each
strip of rows through the premultiply and the box, so only the shrunk image is ever whole. The
arithmetic is Pillow's: alpha premultiplied, then the rounded box average of the same whole factors,
the edge blocks averaged over the pixels they have; every value within one level of Pillow's. Only
files where nothing else can differ come this way: 8 bits a sample, greyscale or RGB with or without
alpha, no tRNS, and no chunk between the first pixel data and IEND but more pixel data (Pillow reads
such chunks, an eXIf orientation among them, only by decoding). A file libvips refuses is Pillow's
to decode, and to judge.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image

from s3thumbs import budget, resizing

logger = logging.getLogger(__name__)

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow's mode of an 8-bit PNG, the mode its premultiplied shrink has, and libvips' band count.
_MODES = {"L": ("L", 1), "LA": ("La", 2), "RGB": ("RGB", 3), "RGBA": ("RGBa", 4)}


@dataclass(frozen=True)
class Shrunk:
    """A PNG box-shrunk on load: premultiplied when it has alpha, the picture in ``region``."""

    image: Image.Image
    # Pillow's reduce() rounds a size up: the last block holds part of a source block.
    region: tuple[float, float, float, float]


def shrink_on_load(im: Image.Image, source: IO[bytes], stored: tuple[int, int], gap: float) -> Shrunk | None:
    """``im`` (a lazily opened PNG read from ``source``) box-shrunk by the whole factors Pillow's resize
    to ``stored`` with ``reducing_gap=gap`` would take; None where Pillow decodes it."""
    vips = resizing.libvips()
    if vips is None or im.format != "PNG" or im.mode not in _MODES or "transparency" in im.info:
        return None
    if im.width * im.height < resizing.MIN_PIXELS:  # set-up costs more than the stream saves
        return None
    across = max(1, int(im.width / stored[0] / gap))
    down = max(1, int(im.height / stored[1] / gap))
    mode, bands = _MODES[im.mode]
    try:
        # libvips reads the file from memory (a stream read through Python costs a tenth more time): no
        # more than Pillow would allocate for the pixels, which this path never holds whole.
        if across == down == 1 or source.seek(0, 2) > budget.image_bytes(im.size, im.mode):
            return None
        if not _pixels_then_end(source):
            return None
        source.seek(0)
        # A libvips source reads the bytes where they are (a buffer would be copied).
        read = vips.Source.new_from_memory(source.read())
        loaded = vips.Image.new_from_source(read, "", access="sequential", fail_on="error")
        if loaded.get("vips-loader") != "pngload_source" or loaded.format != "uchar" or loaded.bands != bands:
            return None
        floats = loaded.premultiply() if bands in (2, 4) else loaded.cast("float")
        shrunk = _box_average(floats, across, down).round("rint").cast("uchar")
        pixels = shrunk.write_to_memory()
    except vips.Error as e:
        logger.debug("libvips did not decode a PNG, Pillow will: %s", str(e).splitlines()[0] if str(e) else e)
        return None
    finally:
        source.seek(0)  # where Pillow's decoder, if it is to run, expects the file
    image = Image.frombuffer(mode, (shrunk.width, shrunk.height), pixels, "raw", mode, 0, 1)
    return Shrunk(image, (0, 0, im.width / across, im.height / down))


def _pixels_then_end(source: IO[bytes]) -> bool:
    """Whether, after the first IDAT chunk, only IDAT chunks come before IEND (lengths read, data skipped)."""
    source.seek(0)
    if source.read(len(_SIGNATURE)) != _SIGNATURE:
        return False
    in_pixels = False
    while len(head := source.read(8)) == 8:
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            return in_pixels
        if kind == b"IDAT":
            in_pixels = True
        elif in_pixels:
            return False
        source.seek(length + 4, 1)  # the data and its CRC
    return False  # cut short: Pillow says how


def _box_average(image: Any, across: int, down: int) -> Any:
    """Pillow's ``reduce((across, down))`` of a libvips image: each block's mean, a partial block at the
    right or bottom edge averaged over the pixels it has (libvips' own shrink would repeat the last ones)."""
    rows = [
        _joined([image.crop(left, top, width, height).shrink(x, y) for left, width, x in _spans(image.width, across)])
        for top, height, y in _spans(image.height, down)
    ]
    return _joined(rows, "vertical")


def _spans(size: int, factor: int) -> list[tuple[int, int, int]]:
    """(start, length, factor) of the whole blocks along a side, and of the partial one ending it."""
    whole = size // factor * factor
    return [(0, whole, factor)] + ([(whole, size - whole, size - whole)] if whole < size else [])


def _joined(parts: list[Any], direction: str = "horizontal") -> Any:
    return parts[0] if len(parts) == 1 else parts[0].join(parts[1], direction)
