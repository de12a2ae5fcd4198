"""Colours a HEIF describes with an ``nclx`` box (CICP codes, ITU-T H.273) instead of an ICC profile,
brought to sRGB: a wide gamut (BT.2020, Display P3) and HDR transfer functions (PQ, HLG).

libheif hands over a 10-bit image as 8-bit values still in its own primaries and transfer, and a
thumbnail carries no nclx box, so without this a PQ photo would come out grey and washed out. The
conversion runs on each small thumbnail, never on the full-size image, in floating point (numpy,
part of the ``heif`` extra): a table per code value for the transfer function, then a matrix. A 33³
``Color3DLUT`` was tried first: interpolating across PQ's steep curve missed white by 12 levels,
and a 65³ one took 3.5 s to build. HDR (PQ, HLG) is tone-mapped the simple
way: reference white (203 cd/m², ITU-R BT.2408) is the top of sRGB, light up to 0.75 of it passes
unchanged, and brighter light rolls off smoothly instead of clipping (white itself lands at 244 of
255), on the brightest channel so hues are kept. Colours outside sRGB's gamut are clipped.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# Linear light in CICP colour primaries → linear sRGB (BT.709), and the primaries' luminance weights.
# BT.2020: ITU-R BT.2087's matrix; Display P3 (D65): derived from its chromaticities the same way.
_TO_SRGB = {
    1: ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    9: ((1.6605, -0.5876, -0.0728), (-0.1246, 1.1329, -0.0083), (-0.0182, -0.1006, 1.1187)),
    12: ((1.2249, -0.2249, 0.0), (-0.0421, 1.0421, 0.0), (-0.0196, -0.0786, 1.0983)),
}
_LUMA = {1: (0.2126, 0.7152, 0.0722), 9: (0.2627, 0.6780, 0.0593), 12: (0.2290, 0.6917, 0.0793)}
SRGB_PRIMARIES = (1, 2)  # 2: unspecified, taken as sRGB
SDR_TRANSFERS = frozenset({1, 2, 6, 13, 14, 15})  # BT.709, unspecified, BT.601, sRGB, BT.2020: decoded as sRGB
LINEAR, PQ, HLG = 8, 16, 18
REFERENCE_WHITE_NITS = 203.0
KNEE = 0.75


@dataclass(frozen=True)
class Conversion:
    """Code values in some primaries and transfer → sRGB."""

    primaries: int
    transfer: int

    def apply(self, image: Image.Image) -> Image.Image:
        """``image`` (RGB or RGBA; alpha kept) in sRGB; other modes unchanged."""
        if image.mode not in ("RGB", "RGBA"):
            return image
        codes = np.asarray(image.convert("RGB") if image.mode == "RGBA" else image)
        light = _decode_table(self.transfer)[codes]  # display light, 1.0 = reference white (HLG: scene light)
        if self.transfer == HLG:
            # The HLG system on a 1000 cd/m² display: gamma 1.2 on the scene luminance.
            luminance = light @ np.asarray(_LUMA[self.primaries], dtype=np.float32)
            light *= (1000.0 / REFERENCE_WHITE_NITS * np.maximum(luminance, 1e-6) ** 0.2)[..., None]
        srgb = np.maximum(light @ np.asarray(_TO_SRGB[self.primaries], dtype=np.float32).T, 0.0)
        if self.transfer in (PQ, HLG):
            brightest = srgb.max(axis=-1, keepdims=True)
            over = brightest > KNEE
            rolled = KNEE + (1 - KNEE) * (1 - np.exp(-(brightest - KNEE) / (1 - KNEE)))
            srgb = np.where(over, srgb * rolled / np.where(over, brightest, 1.0), srgb)
        encoded = np.where(srgb <= 0.0031308, srgb * 12.92, 1.055 * np.minimum(srgb, 1.0) ** (1 / 2.4) - 0.055)
        result = Image.fromarray(np.clip(encoded * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
        if image.mode == "RGBA":
            result.putalpha(image.getchannel("A"))
        return result


def conversion(info: Mapping[Any, Any]) -> Conversion | None:
    """How to bring an image with the nclx profile in ``info`` to sRGB, or None when it already is
    sRGB (or its codes are ones we do not know, which are then left alone)."""
    profile = info.get("nclx_profile")
    if not isinstance(profile, dict):
        return None
    primaries, transfer = profile.get("color_primaries"), profile.get("transfer_characteristics")
    if primaries in SRGB_PRIMARIES and transfer in SDR_TRANSFERS:
        return None
    if primaries not in (*SRGB_PRIMARIES, *_TO_SRGB) or transfer not in (*SDR_TRANSFERS, LINEAR, PQ, HLG):
        return None
    return Conversion(1 if primaries == 2 else int(primaries), int(transfer))


@functools.cache
def _decode_table(transfer: int) -> np.ndarray:
    """Light for each of the 256 code values."""
    return np.asarray([_light(code / 255, transfer) for code in range(256)], dtype=np.float32)


def _light(code: float, transfer: int) -> float:
    if transfer == PQ:
        return _pq_nits(code) / REFERENCE_WHITE_NITS
    if transfer == HLG:
        return _hlg_scene(code)
    if transfer == LINEAR:
        return code
    return _srgb_decode(code)


def _pq_nits(code: float) -> float:
    """SMPTE ST 2084's EOTF: a PQ code value to cd/m²."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = max(code, 0.0) ** (1 / m2)
    return float(10000.0 * (max(p - c1, 0.0) / (c2 - c3 * p)) ** (1 / m1))


def _hlg_scene(code: float) -> float:
    """ITU-R BT.2100's inverse HLG OETF: a code value to normalised scene light."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    return code * code / 3 if code <= 0.5 else (math.exp((code - c) / a) + b) / 12


def _srgb_decode(value: float) -> float:
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
