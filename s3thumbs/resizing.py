"""Resizing: on libvips' vectorised filters when pyvips is installed (the ``fast`` extra), else Pillow's.

Pillow's wheel resizes without SIMD. libvips' ``reduce`` runs the same kernels (Catmull-Rom cubic,
Lanczos-3) with Highway SIMD: a 1500 px photo into a 1024 box in half Pillow's time, copies in and
out included. Only the filtering moves; decoding, colour, orientation and encoding stay Pillow's, and
so does every resize libvips would do differently (16-bit, float, palette or unpremultiplied alpha,
a region that does not end on a whole pixel), an image too small to gain, and one whose packed copy
for libvips would take more memory than Pillow's own resize. Pillow's box ``reduce()`` still does the
whole factors first, so libvips is handed a few times the thumbnail's pixels, never a big PNG's.
Without pyvips, or when it cannot load its library, every resize is Pillow's: the same sizes, and
pixels within rounding of each other (``tests/test_resizing.py``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from PIL import Image

from s3thumbs import budget

logger = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

# Modes whose bytes libvips filters as plain 8-bit bands; premultiplied alpha is linear, so it may.
LIBVIPS_BANDS = {"L": 1, "La": 2, "RGB": 3, "RGBa": 4}
_KERNELS = {Image.Resampling.BICUBIC: "cubic", Image.Resampling.LANCZOS: "lanczos3"}
# Below this many source pixels the copies and libvips' set-up cost more than its filter saves
# (a 512 px image into 128: 1.7 ms against Pillow's 1.0).
MIN_PIXELS = 500_000
# A packed copy this small may outgrow Pillow's own buffers: a few MB is nothing against a decode's
# peak, and a 1024 px premultiplied image filtered into 512 takes libvips 3 ms against Pillow's 12.
SMALL_COPY = 4 * 1024 * 1024  # a 1024×1024 RGBa image


@functools.cache
def libvips() -> Any | None:
    """pyvips, set up for one image at a time on one core; None when it is not there."""
    try:
        import pyvips  # optional; loaded in the process that resizes, after any fork
    except (ImportError, OSError) as exc:  # not installed, or its libvips cannot be loaded
        logger.debug("resizing with Pillow: pyvips unavailable (%s)", exc)
        return None
    # pyvips hands every libvips message to logging, at INFO a dozen lines of each image's internals
    # ("reduceh: 9 point mask"); a worker's log is about objects, so only libvips' warnings stay.
    logging.getLogger("pyvips").setLevel(logging.WARNING)
    pyvips.cache_set_max(0)  # every image is new: nothing to reuse
    pyvips.concurrency_set(1)  # a worker process is one core's worth
    return pyvips


def engine() -> str:
    """What filters the resizes, for logs: libvips and its version, or Pillow."""
    vips = libvips()
    return f"libvips {vips.version(0)}.{vips.version(1)}.{vips.version(2)}" if vips else "Pillow"


def resize(
    im: Image.Image,
    size: tuple[int, int],
    resample: Image.Resampling,
    box: Box | None = None,
    reducing_gap: float | None = None,
) -> Image.Image:
    """``im.resize(size, resample, box=box, reducing_gap=reducing_gap)``, on libvips where it is faster."""
    vips = libvips()
    box = box or (0, 0, *im.size)
    if (
        vips is None
        or im.mode not in LIBVIPS_BANDS
        or resample not in _KERNELS
        or im.width * im.height < MIN_PIXELS
        or box[:2] != (0, 0)  # regions here start at the corner; any other stays Pillow's
        or size[0] > box[2]
        or size[1] > box[3]  # reduce only shrinks
    ):
        return im.resize(size, resample, box=box, reducing_gap=reducing_gap)
    if reducing_gap is not None:  # Pillow's rule: reduce by the whole factors first
        across = int(box[2] / size[0] / reducing_gap) or 1
        down = int(box[3] / size[1] / reducing_gap) or 1
        if across > 1 or down > 1:
            im = im.reduce((across, down))
            box = (0, 0, box[2] / across, box[3] / down)
    width, height = box[2], box[3]
    # libvips centres its output on the input: with a whole-pixel region that is Pillow's placement
    # exactly; a fractional one (4000 px reduced by 3) would shift by up to half a pixel. And a big
    # packed copy libvips reads must not outgrow what Pillow's resize allocates (its intermediate,
    # as wide as the target and as tall as the source, and its output): no higher peak than Pillow's.
    packed = im.width * im.height * LIBVIPS_BANDS[im.mode]  # the whole image is copied, region or not
    pillows = budget.image_bytes((size[0], int(height)), im.mode) + budget.image_bytes(size, im.mode)
    if width != int(width) or height != int(height) or packed > max(pillows, SMALL_COPY):
        return im.resize(size, resample, box=box)
    return _filtered(vips, im, (int(width), int(height)), size, _KERNELS[resample])


def _filtered(vips: Any, im: Image.Image, region: tuple[int, int], size: tuple[int, int], kernel: str) -> Image.Image:
    """The corner ``region`` of ``im`` filtered down to ``size`` by libvips' reduce, as a Pillow image."""
    shrunk = vips.Image.new_from_memory(im.tobytes(), im.width, im.height, LIBVIPS_BANDS[im.mode], "uchar")
    if region != im.size:
        shrunk = shrunk.crop(0, 0, *region)  # a view, not a copy
    shrunk = shrunk.reduce(region[0] / size[0], region[1] / size[1], kernel=kernel)
    pixels = shrunk.write_to_memory()
    del shrunk  # and with it the packed copy of the input, before Pillow copies the output
    return Image.frombuffer(im.mode, size, pixels, "raw", im.mode, 0, 1)
