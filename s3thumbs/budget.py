"""How much memory an image needs to decode and convert, estimated from its header before decoding.

Pillow keeps an image as rows: ``width × bytes per pixel`` each (1 for L, P and 1-bit, 2 for 16-bit
grey, 4 for everything else, RGB included) plus a pointer per row, so a 1×100,000,000 image costs far
more than its pixel count suggests. Some decoders hold more for a while: a progressive or
multi-scan JPEG keeps every DCT coefficient of the whole image (2 bytes per sample at full
resolution, whatever the shrink on load), libtiff a whole decoded strip or tile and its compressed
bytes, the WebP decoder three canvases of its own, libheif and libavif their planes, an interleaved
copy and the whole file. Then come the copies rendering makes: a mode conversion, the premultiplied
alpha, the first resize (with libvips, ``resizing``, its packed input and output). The estimate is
the most that is alive at any one moment; ``imaging.render`` refuses an image over its budget before
decoding a byte of it.
``tests/integration/test_decode_memory.py`` measures real peaks against these estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PIL import Image

from s3thumbs import colours, resizing

# A pointer per row, in Pillow's image storage.
ROW_POINTER_BYTES = 8
# Python objects, decoder state, small buffers: what every decode costs on top of its images.
DECODE_OVERHEAD = 8 * 1024 * 1024
# A JPEG block: 64 coefficients of 2 bytes.
JPEG_BLOCK_BYTES = 128
# Pillow's WebP decoder keeps two canvases of the animation decoder and the frame it hands over.
WEBP_CANVASES = 3
# libheif's decoded planes, per pixel, by chroma subsampling (8 bits; twice that for 10 and 12).
HEIF_PLANE_BYTES = {420: 1.5, 422: 2.0, 444: 3.0}
# libavif's planes (up to 4:4:4, or 10-bit 4:2:0) and the RGBA buffer it converts them into.
AVIF_BYTES_PER_PIXEL = 7
MIB = 1024 * 1024
# The worker holds a source this size or smaller in memory while it is decoded (larger ones on disk).
SOURCE_IN_MEMORY = 16 * MIB


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel in Pillow's storage of an image of ``mode``."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def image_bytes(size: tuple[int, int], mode: str) -> int:
    """What Pillow allocates for an image of this size and mode."""
    width, height = size
    return height * (width * pixel_bytes(mode) + ROW_POINTER_BYTES)


def jpeg_coefficient_bytes(size: tuple[int, int], sampling: list[tuple[int, int]]) -> int:
    """The whole-image coefficient buffer libjpeg keeps for a progressive or multi-scan JPEG.

    ``sampling`` holds each component's (horizontal, vertical) sampling factors. Each component has
    ``ceil(side × factor / max factor / 8)`` blocks a side, rounded up to whole sampling units.
    """
    width, height = size
    h_max = max((h for h, _ in sampling), default=1) or 1
    v_max = max((v for _, v in sampling), default=1) or 1
    total = 0
    for h, v in sampling:
        h, v = max(h, 1), max(v, 1)
        across = math.ceil(math.ceil(width * h / h_max) / 8)
        down = math.ceil(math.ceil(height * v / v_max) / 8)
        total += _round_up(across, h) * _round_up(down, v) * JPEG_BLOCK_BYTES
    return total


def tiff_strip_bytes(width: int, rows: int, bits_per_pixel: int, compressed: int) -> int:
    """libtiff's buffers for one strip or tile of ``rows`` rows: decoded, and its compressed bytes."""
    return rows * math.ceil(width * bits_per_pixel / 8) + compressed


def heif_decoder_bytes(size: tuple[int, int], mode: str, chroma: int, bit_depth: int) -> int:
    """What libheif holds while decoding: its planes, and the interleaved image pillow-heif copies
    into Pillow's (the file's bytes are counted by the caller)."""
    grey = mode in ("L", "LA") or mode.startswith("I")
    planes = 1.0 if grey else HEIF_PLANE_BYTES.get(chroma, 3.0)
    planes += 1.0 if mode in ("LA", "RGBA") else 0.0
    sample = 2 if bit_depth > 8 else 1
    return int(size[0] * size[1] * (planes + Image.getmodebands(mode)) * sample)


def webp_canvas_bytes(size: tuple[int, int]) -> int:
    """What the WebP decoder holds besides the image it returns."""
    return WEBP_CANVASES * size[0] * size[1] * 4


@dataclass(frozen=True)
class DecodePlan:
    """What rendering one image will allocate, in the order it happens."""

    decoded_size: tuple[int, int]  # after any shrink on load
    decoded_mode: str
    decoder_extra: int  # the decoder's own buffers while it runs
    normalized_mode: str | None  # a full-size converted copy, if one is made
    premultiplied_mode: str | None  # a full-size premultiplied copy, if one is made
    first_resize: tuple[int, int] | None  # the first target, in stored orientation
    resize_mode: str  # the mode the first resize works in
    reduce_factors: tuple[int, int] = (1, 1)  # the box reduction ``resize`` does first, across and down
    source_bytes: int = 0  # the encoded source, when it is held in memory

    def peak_bytes(self) -> int:
        """The most memory alive at one moment while rendering."""
        size = self.decoded_size
        decoded = image_bytes(size, self.decoded_mode)
        alive = decoded  # the decoded image stays referenced until the render ends
        peak = alive + self.decoder_extra
        for mode in (self.normalized_mode, self.premultiplied_mode):
            if mode is not None:
                alive += image_bytes(size, mode)
                peak = max(peak, alive)
        if self.first_resize is not None:
            target_width, target_height = self.first_resize
            across, down = (max(factor, 1) for factor in self.reduce_factors)
            reduced = (math.ceil(size[0] / across), math.ceil(size[1] / down))
            resize = image_bytes(reduced, self.resize_mode) if (across, down) != (1, 1) else 0
            target = image_bytes((target_width, target_height), self.resize_mode)
            # Pillow's resize runs the horizontal pass into a temporary image, then the vertical one;
            # on libvips (``resizing``) the input is copied out packed, and the output copied back.
            horizontal_pass = image_bytes((target_width, reduced[1]), self.resize_mode)
            if self.resize_mode in resizing.LIBVIPS_BANDS:
                horizontal_pass = max(horizontal_pass, image_bytes(reduced, self.resize_mode) + target)
            resize += horizontal_pass + target
            peak = max(peak, alive + resize)
        return peak + self.source_bytes + DECODE_OVERHEAD


def plan(
    im: Image.Image,
    original: tuple[int, int],
    whole_image: bool,
    stored_largest: tuple[int, int],
    region: tuple[float, float, float, float] | None,
    file_size: int,
    reducing_gap: float,
) -> DecodePlan:
    """What rendering ``im`` (opened, drafted, not loaded) will allocate, for its budget check."""
    size, mode = im.size, im.mode
    transparency = "transparency" in im.info or (mode == "P" and im.has_transparency_data)
    normalized = colours.normalized_mode(mode, transparency)
    working = normalized or mode
    premultiplied = colours.PREMULTIPLIED.get(working) if size != stored_largest else None
    resize_mode = premultiplied or working
    first = stored_largest if size != stored_largest or region not in (None, (0, 0, *size)) else None
    reduce_factors = (1, 1)
    if first is not None and resize_mode not in colours.NO_REDUCE_MODES:
        across = (region[2] - region[0]) if region else size[0]
        down = (region[3] - region[1]) if region else size[1]
        # What Pillow's resize reduces by first, on each axis (its reducing_gap rule).
        reduce_factors = (
            max(1, int(across / first[0] / reducing_gap)),
            max(1, int(down / first[1] / reducing_gap)),
        )
    return DecodePlan(
        decoded_size=size,
        decoded_mode=mode,
        decoder_extra=_decoder_extra(im, original, whole_image, file_size),
        normalized_mode=normalized,
        premultiplied_mode=premultiplied,
        first_resize=first,
        resize_mode=resize_mode,
        reduce_factors=reduce_factors,
        source_bytes=file_size if file_size <= SOURCE_IN_MEMORY else 0,
    )


def _decoder_extra(im: Image.Image, original: tuple[int, int], whole_image: bool, file_size: int) -> int:
    """What the decoder itself holds while it runs, from the header."""
    if im.format in ("JPEG", "MPO"):
        sampling = [(h, v) for _, h, v, _ in getattr(im, "layer", [])]
        return jpeg_coefficient_bytes(original, sampling) if whole_image else 0
    if im.format == "WEBP":
        return webp_canvas_bytes(im.size)
    if im.format == "HEIF":  # pillow-heif reads the whole file into memory first
        info = im.info
        return (
            heif_decoder_bytes(im.size, im.mode, int(info.get("chroma", 444)), int(info.get("bit_depth", 8)))
            + file_size
        )
    if im.format == "AVIF":  # and so does Pillow's AVIF plugin
        return im.size[0] * im.size[1] * AVIF_BYTES_PER_PIXEL + file_size
    if im.format == "TIFF":
        return _tiff_extra(getattr(im, "tag_v2", {}), im.size, file_size)
    if im.format == "PNG":
        return 2 * im.size[0] * 8  # the previous and current row, at most 8 bytes a pixel
    return 0


def _tiff_extra(tags: Any, size: tuple[int, int], file_size: int) -> int:
    """libtiff's buffers for the largest strip or tile the tags describe (a whole strip when they make no sense)."""
    width, height = size
    if tags.get(259, 1) == 1:  # uncompressed: Pillow reads it block by block itself, with no strip buffer
        return 0
    try:
        bits = sum(int(b) for b in tags.get(258, (8,))) if isinstance(tags.get(258), tuple) else int(tags.get(258, 8))
        counts = tags.get(279, tags.get(325, ()))
        compressed = min(max((int(c) for c in counts), default=file_size), file_size)
        if 322 in tags and 323 in tags:  # tiled
            return tiff_strip_bytes(int(tags[322]), int(tags[323]), bits, compressed)
        rows = min(int(tags.get(278, height)), height)
    except (TypeError, ValueError):
        return tiff_strip_bytes(width, height, 4 * 32, file_size)
    return tiff_strip_bytes(width, rows, bits, compressed)


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit
