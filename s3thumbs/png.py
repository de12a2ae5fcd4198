"""Big 8-bit PNGs: decoded and resized by libvips in one streaming pass (the ``fast`` extra).

Pillow inflates a 12 MP RGBA PNG into a 48 MB image, premultiplies it into another, and only then
box-reduces and filters. libvips inflates with zlib-ng and passes each strip of rows through the
premultiply (rounded, as Pillow rounds it) and its SIMD Lanczos-3 ``reduce`` straight to the largest
thumbnail: never whole at full size, and filtered from the whole image (a box first only past twice
``REDUCING_GAP``). The result is Pillow's ``resize(size, LANCZOS, reducing_gap=REDUCING_GAP)`` within
rounding, placed exactly where Pillow places it. Only files where nothing else can differ come
this way: 8 bits a sample, greyscale or RGB with or without alpha, no tRNS, not interlaced or
animated, an orientation from an eXIf chunk or none, and nothing between the first pixel data and
IEND but more pixel data (Pillow reads such chunks, an eXIf orientation among them, only by
decoding). So do only files where libvips costs no more than Pillow (the limits below). A file
libvips refuses is Pillow's to decode, and to judge.
"""

from __future__ import annotations

import io
import logging
import mmap
import struct
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from PIL import Image

from s3thumbs import budget, resizing

logger = logging.getLogger(__name__)

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Writers cut pixel data into chunks of 8 KiB or more: a 100 MP RGBA PNG takes ~50,000. More, and the
# file is left to Pillow rather than walked here.
MAX_CHUNKS = 100_000
# libvips' reduce box-shrinks by the whole factors that leave its filter this much, as Pillow's
# ``reducing_gap`` does: a filter's taps grow with its factor, and a 100 MP PNG filtered down to 128 px
# whole took longer than Pillow alone. Below twice the gap (a 12 MP photo into 1024) it filters the
# whole image: the exact Lanczos, sharper than Pillow alone's box at 1.3.
REDUCING_GAP = 2.0
# libvips is slower than Pillow on very long, thin images (a 6,000,000×16 PNG: 2.6 s against 0.15).
MAX_ASPECT = 16
# Below this factor libvips' Lanczos strays further from Pillow's than rounding (a 1.1× step on noise:
# a mean 0.6 level apart, a few pixels 40).
MIN_FACTOR = 1.25
# libvips inflates the pixel data to its very end, where Pillow stops at the last row: zlib data after
# the rows costs it about 0.1 s per MB of file (1,000 MB of zeros in 1 MB). Capped here at some 3.5 s,
# the order of Pillow's honest decode of a PNG at the 100 MP limit; a bigger file is Pillow's.
MAX_FILE_BYTES = 32 * 1024 * 1024
# What Pillow turns into an EXIF orientation besides an eXIf chunk (ImageMagick's text chunk, XMP).
_OTHER_ORIENTATIONS = ("Raw profile type exif",)
_XMP_ORIENTATION = "tiff:Orientation"
# APNG's chunks: with any of them Pillow may read another frame, or another region, as the image.
_ANIMATION = (b"acTL", b"fcTL", b"fdAT")
# Pillow's mode of an 8-bit PNG, the mode its thumbnail is made in (alpha premultiplied), and bands.
_MODES = {"L": ("L", 1), "LA": ("La", 2), "RGB": ("RGB", 3), "RGBA": ("RGBa", 4)}


def resized_on_load(im: Image.Image, source: IO[bytes], file_size: int, size: tuple[int, int]) -> Image.Image | None:
    """``im`` (a lazily opened PNG read from ``source``, ``file_size`` bytes) resized to ``size`` with
    Lanczos-3 by libvips, premultiplied when it has alpha; None where Pillow is to decode it."""
    vips = resizing.libvips()
    if vips is None or not _read_alike(im):
        return None
    if im.width * im.height < resizing.MIN_PIXELS or max(im.size) > MAX_ASPECT * min(im.size):
        return None  # too small to gain, or too thin
    if min(im.width / size[0], im.height / size[1]) < MIN_FACTOR:
        return None  # not enough of a reduction
    mode, bands = _MODES[im.mode]
    try:
        # libvips reads the whole file at once (a stream read through Python costs a tenth more time),
        # where it lies, never copied; one larger than its own pixels (padding, private chunks) is Pillow's.
        if file_size > min(MAX_FILE_BYTES, budget.image_bytes(im.size, im.mode)) or not _pixels_then_end(source):
            return None
        with _in_place(source) as data:
            try:
                pixels = _libvips_resized(vips, data, bands, (im.width / size[0], im.height / size[1]))
            except vips.Error as e:  # handled here, so nothing of libvips holds the file past this block
                logger.debug("libvips did not decode a PNG, Pillow will: %s", str(e).splitlines()[0] if str(e) else e)
                pixels = None
        if pixels is None:
            return None
    finally:
        source.seek(0)  # where Pillow's decoder, if it is to run, expects the file
    if len(pixels) != size[0] * size[1] * bands:  # never seen; Pillow's path is the safe one
        return None
    return Image.frombuffer(mode, size, pixels, "raw", mode, 0, 1)


def _libvips_resized(vips: Any, data: bytes | mmap.mmap, bands: int, shrinks: tuple[float, float]) -> Any:
    """The PNG in ``data`` decoded, premultiplied where it has alpha and reduced by ``shrinks`` (the
    packed 8-bit pixels, a buffer); None if libvips reads it as other than 8-bit ``bands`` bands."""
    loaded = vips.Image.new_from_source(vips.Source.new_from_memory(data), "", access="sequential", fail_on="error")
    if loaded.get("vips-loader") != "pngload_source" or loaded.get("bits-per-sample") != 8:
        return None  # 2 and 4 bits a sample are scaled up by each library in its own way
    if loaded.format != "uchar" or loaded.bands != bands:
        return None
    if bands in (2, 4):  # libvips premultiplies in floats: rounded back, as Pillow's RGBa is
        loaded = loaded.premultiply().round("rint").cast("uchar")
    # The filter on 8-bit bands is the vectorised one; the shrinks make exactly the size asked.
    return loaded.reduce(*shrinks, kernel="lanczos3", gap=REDUCING_GAP).write_to_memory()


@contextmanager
def _in_place(source: IO[bytes]) -> Iterator[bytes | mmap.mmap]:
    """The whole file as libvips reads it, without a copy where the file allows one: a BytesIO's own
    bytes (``getvalue`` hands them over; ``read`` would copy them, ``getbuffer`` too when they are
    shared), or a file on disk mapped (its pages the kernel's cache, not this process's heap)."""
    data: bytes | mmap.mmap
    if isinstance(source, io.BytesIO):
        data = source.getvalue()
    else:
        try:
            data = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
        except (AttributeError, OSError, ValueError):  # no file descriptor to map: read it
            source.seek(0)
            data = source.read()
    try:
        yield data
    finally:
        # libvips let go of the mapping with the last image made from it: the file may be closed after this.
        if isinstance(data, mmap.mmap):
            with suppress(BufferError):
                data.close()


def _read_alike(im: Image.Image) -> bool:
    """Whether libvips would read the pixels, and Pillow the orientation, of ``im`` from what its
    header says: 8-bit modes, no colour key, not interlaced (libvips would hold the whole image), not
    a frame of an animation, an orientation from nowhere but an eXIf chunk."""
    if im.format != "PNG" or im.mode not in _MODES or "transparency" in im.info:
        return False
    if im.info.get("interlace") or "bbox" in im.info or getattr(im, "n_frames", 1) != 1:
        return False
    xmp = im.info.get("XML:com.adobe.xmp", "")
    xmp_text = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else str(xmp)
    return _XMP_ORIENTATION not in xmp_text and not any(key in im.info for key in _OTHER_ORIENTATIONS)


def _pixels_then_end(source: IO[bytes]) -> bool:
    """Whether, after the first IDAT chunk, only IDAT chunks come before IEND, and no chunk of an animation
    anywhere (lengths read, data skipped)."""
    source.seek(0)
    if source.read(len(_SIGNATURE)) != _SIGNATURE:
        return False
    in_pixels = False
    for _ in range(MAX_CHUNKS):
        if len(head := source.read(8)) < 8:
            break
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            return in_pixels
        if kind in _ANIMATION:
            return False
        if kind == b"IDAT":
            in_pixels = True
        elif in_pixels:
            return False
        source.seek(length + 4, 1)  # the data and its CRC
    return False  # cut short (Pillow says how), or in more chunks than a writer makes
