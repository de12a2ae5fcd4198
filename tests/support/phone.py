"""HEIC and AVIF files as phones and cameras write them, and as an attacker would.

pillow-heif (the ``heif`` extra) writes HEIC the way an iPhone does: the rotation or mirroring as the
container's ``irot``/``imir`` and, in the EXIF block, the same orientation again. Pillow writes AVIF
with ``irot``/``imir`` and no EXIF orientation.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence
from functools import cache

import pillow_heif
from PIL import Image

from tests.support import images


def heic(im: Image.Image, orientation: int | None = None, tile: int = 0, **options: object) -> bytes:
    """``im`` stored turned for ``orientation`` as a HEIC, ``tile`` > 0 as an iPhone's grid of tiles."""
    if orientation is not None:
        options["exif"] = images.exif(orientation).tobytes()
    heif = pillow_heif.from_pillow(images.stored(im, orientation))
    buffer = io.BytesIO()
    heif.save(buffer, quality=options.pop("quality", 70), tile_size=tile, **options)
    return buffer.getvalue()


def avif(im: Image.Image, orientation: int | None = None, **options: object) -> bytes:
    """``im`` stored turned for ``orientation`` as an AVIF (the turn in ``irot``/``imir``)."""
    if orientation is not None:
        options["exif"] = images.exif(orientation)
    return images.encode(
        images.stored(im, orientation), "AVIF", quality=options.pop("quality", 70), speed=10, **options
    )


@cache
def oriented_heic(w: int, h: int, orientation: int) -> bytes:
    return heic(images.pattern(w, h), orientation)


@cache
def oriented_avif(w: int, h: int, orientation: int) -> bytes:
    return avif(images.pattern(w, h), orientation)


def several(colours: Sequence[str], primary: int) -> bytes:
    """A HEIC of one 64×48 image per colour, ``colours[primary]`` the primary one."""
    frames = [Image.new("RGB", (64 + 16 * i, 48), colour) for i, colour in enumerate(colours)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "HEIF", save_all=True, append_images=frames[1:], primary_index=primary, quality=50)
    return buffer.getvalue()


def hdr(patches: Sequence[tuple[float, float, float]], transfer: int, primaries: int = 9) -> bytes:
    """A 10-bit HEIC of 32×16 patches of these linear BT.709 colours (1.0: reference white,
    203 cd/m²), stored in ``primaries`` with a PQ (16) or HLG (18, greys only) transfer, as cameras
    write HDR."""
    rows = []
    for colour in patches:
        light = [sum(m * c for m, c in zip(row, colour, strict=True)) for row in _BT709_TO[primaries]]
        rows.append(struct.pack("<3H", *(round(_encode(v, transfer) * 65535) for v in light)) * 32)
    data = b"".join(row for row in rows for _ in range(16))
    heif = pillow_heif.from_bytes("RGB;16", (32, 16 * len(patches)), data)
    buffer = io.BytesIO()
    heif.save(
        buffer, quality=-1, chroma=444, color_primaries=primaries, transfer_characteristics=transfer,
        matrix_coefficients=9, full_range_flag=1,
    )  # fmt: skip
    return buffer.getvalue()


def p3(patches: Sequence[tuple[float, float, float]]) -> bytes:
    """An 8-bit HEIC of 32×16 patches of these linear BT.709 colours, stored in Display P3 with the
    sRGB curve (nclx 12/13), as phones describe wide-gamut photos without an ICC profile."""
    im = Image.new("RGB", (32, 16 * len(patches)))
    for row, colour in enumerate(patches):
        light = [sum(m * c for m, c in zip(line, colour, strict=True)) for line in _BT709_TO[12]]
        im.paste(tuple(round(_srgb_encode(v) * 255) for v in light), (0, 16 * row, 32, 16 * row + 16))
    buffer = io.BytesIO()
    pillow_heif.from_pillow(im).save(
        buffer, quality=-1, chroma=444, color_primaries=12, transfer_characteristics=13,
        matrix_coefficients=6, full_range_flag=1,
    )  # fmt: skip
    return buffer.getvalue()


def declaring(data: bytes, width: int, height: int) -> bytes:
    """``data`` with every image spatial extent (``ispe``) claiming width×height."""
    out = bytearray(data)
    start = 0
    while (at := out.find(b"ispe", start)) != -1:
        out[at + 8 : at + 16] = struct.pack(">II", width, height)  # after the version and flags
        start = at + 4
    return bytes(out)


# Linear BT.709 → linear BT.2020 (ITU-R BT.2087) and → Display P3, to state test colours in the
# file's own primaries.
_BT709_TO = {
    9: ((0.6274, 0.3293, 0.0433), (0.0691, 0.9195, 0.0114), (0.0164, 0.0880, 0.8956)),
    12: ((0.8225, 0.1774, 0.0), (0.0332, 0.9669, 0.0), (0.0171, 0.0724, 0.9108)),
}


def _encode(light: float, transfer: int) -> float:
    """Reference-white-relative display light as a PQ (ST 2084) or HLG (BT.2100) code value."""
    if transfer == 16:
        m1, m2 = 2610 / 16384, 2523 / 4096 * 128
        c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
        y = (light * 203 / 10000) ** m1
        return ((c1 + c2 * y) / (1 + c3 * y)) ** m2
    # HLG on a 1000 cd/m² display shows scene light E as 1000·E^1.2 (exactly so for greys only).
    scene = (light * 203 / 1000) ** (1 / 1.2)
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    return math.sqrt(3 * scene) if scene <= 1 / 12 else a * math.log(12 * scene - b) + c


def _srgb_encode(value: float) -> float:
    return value * 12.92 if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055
