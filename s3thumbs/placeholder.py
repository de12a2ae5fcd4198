"""A source's ThumbHash (https://evanw.github.io/thumbhash/): a placeholder of about 25 bytes that an
app decodes into a blurred picture with the right colours, alpha and aspect ratio while the
thumbnails load. Computed once per source, from its smallest thumbnail as displayed, scaled to fit
100×100 (the most the format takes).

The encoder follows the reference implementation (Evan Wallace's ``rgbaToThumbHash``) step by step,
and the decoder (for the gallery's placeholders) its ``thumbHashToRGBA``; the tests hold both to the
reference JavaScript. The one Python port on PyPI fails on images with alpha. The encoder's DCT is
two matrix products (numpy): under a millisecond where the reference's loops, in Python, took 7.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import math

import numpy as np
import numpy.typing as npt
from PIL import Image

MAX_SIDE = 100


def thumbhash_of(image: Image.Image) -> str:
    """The ThumbHash of ``image`` (any mode), standard base64 with padding."""
    small = image.convert("RGBA")
    small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
    return base64.b64encode(encode(small.width, small.height, small.tobytes())).decode("ascii")


def encode(w: int, h: int, rgba: bytes) -> bytes:
    """The reference encoder: ``rgba`` holds w×h pixels of 4 bytes, w and h at most 100.

    Each pixel's arithmetic is the reference's, in doubles, element by element; the DCT's sums are
    matrix products (their rounding differs from a loop's only in the last bits).
    """
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE) or len(rgba) != w * h * 4:
        raise ValueError(f"a {w}x{h} image of {len(rgba)} bytes")
    pixels = np.frombuffer(rgba, np.uint8).reshape(h, w, 4).astype(np.float64)
    alpha = pixels[..., 3] / 255
    total_alpha = float(alpha.sum())
    averages = [float((alpha * pixels[..., band]).sum()) / 255 for band in range(3)]
    if total_alpha:
        averages = [v / total_alpha for v in averages]
    has_alpha = total_alpha < w * h
    l_limit = 5 if has_alpha else 7  # fewer luminance coefficients when alpha needs the room
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    # RGBA to luminance, yellow-blue, red-green and alpha, composited atop the average colour.
    r, g, b = (averages[band] * (1 - alpha) + alpha / 255 * pixels[..., band] for band in range(3))
    l_dc, l_ac, l_scale = _channel((r + g + b) / 3, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _channel((r + g) / 2 - b, 3, 3)
    q_dc, q_ac, q_scale = _channel(r - g, 3, 3)
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    landscape = w > h
    header16 = (ly if landscape else lx) | (_round(63 * p_scale) << 3) | (_round(63 * q_scale) << 9)
    header16 |= int(landscape) << 15
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    factors = [l_ac, p_ac, q_ac]
    if has_alpha:
        a_dc, a_ac, a_scale = _channel(alpha, 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        factors.append(a_ac)
    nibbles = [_round(15 * f) for ac in factors for f in ac]
    nibbles += [0] * (len(nibbles) % 2)
    out += [low | (high << 4) for low, high in zip(nibbles[::2], nibbles[1::2], strict=True)]
    return bytes(out)


def _channel(values: npt.NDArray[np.float64], nx: int, ny: int) -> tuple[float, list[float], float]:
    """The DC term, the AC terms normalised to 0..1, and their scale, of one h×w channel's DCT.

    The AC terms come in the reference's order (``_ac_cells``)."""
    h, w = values.shape
    along_x = np.cos(np.pi / w * np.outer(np.arange(nx), np.arange(w) + 0.5))  # nx × w
    along_y = np.cos(np.pi / h * np.outer(np.arange(ny), np.arange(h) + 0.5))  # ny × h
    terms = along_y @ values @ along_x.T / (w * h)  # ny × nx: every (cy, cx) the reference may visit
    dc = float(terms[0, 0])
    ac = [float(terms[cy, cx]) for cx, cy in _ac_cells(nx, ny)]
    scale = max((abs(f) for f in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


@functools.lru_cache(maxsize=1024)  # the gallery asks for the same ones every few seconds
def data_url(thumbhash: str) -> str | None:
    """The placeholder as a ``data:image/png`` URL, or None for a hash that cannot be read."""
    try:
        picture = decode(base64.b64decode(thumbhash, validate=True))
    except (ValueError, IndexError, StopIteration, binascii.Error):
        return None
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(hash_bytes: bytes) -> Image.Image:
    """The reference decoder: a ThumbHash to an RGBA picture of at most 32×32."""
    header24 = hash_bytes[0] | (hash_bytes[1] << 8) | (hash_bytes[2] << 16)
    header16 = hash_bytes[3] | (hash_bytes[4] << 8)
    l_dc, l_scale = (header24 & 63) / 63, ((header24 >> 18) & 31) / 31
    p_dc, q_dc = ((header24 >> 6) & 63) / 31.5 - 1, ((header24 >> 12) & 63) / 31.5 - 1
    has_alpha, landscape = bool(header24 >> 23), bool(header16 >> 15)
    p_scale, q_scale = ((header16 >> 3) & 63) / 63, ((header16 >> 9) & 63) / 63
    l_limit = 5 if has_alpha else 7
    across, down = (l_limit, header16 & 7) if landscape else (header16 & 7, l_limit)
    lx, ly = max(3, across), max(3, down)
    a_dc, a_scale = ((hash_bytes[5] & 15) / 15, (hash_bytes[5] >> 4) / 15) if has_alpha else (1.0, 0.0)
    nibbles = iter(n for byte in hash_bytes[6 if has_alpha else 5 :] for n in (byte & 15, byte >> 4))

    def factors(nx: int, ny: int, scale: float) -> list[tuple[int, int, float]]:
        return [(cx, cy, (next(nibbles) / 7.5 - 1) * scale) for cx, cy in _ac_cells(nx, ny)]

    l_ac = factors(lx, ly, l_scale)
    p_ac, q_ac = factors(3, 3, p_scale * 1.25), factors(3, 3, q_scale * 1.25)  # saturation boosted, as the reference
    a_ac = factors(5, 5, a_scale) if has_alpha else []
    ratio = across / down  # the aspect ratio the hash encodes (before the minimum of 3 terms)
    w, h = (32, round(32 / ratio)) if ratio > 1 else (round(32 * ratio), 32)
    out = bytearray()
    for y in range(h):
        fy = [math.cos(math.pi / h * (y + 0.5) * c) * 2 for c in range(8)]
        for x in range(w):
            fx = [math.cos(math.pi / w * (x + 0.5) * c) for c in range(8)]
            lum = l_dc + sum(f * fx[cx] * fy[cy] for cx, cy, f in l_ac)
            p = p_dc + sum(f * fx[cx] * fy[cy] for cx, cy, f in p_ac)
            q = q_dc + sum(f * fx[cx] * fy[cy] for cx, cy, f in q_ac)
            a = a_dc + sum(f * fx[cx] * fy[cy] for cx, cy, f in a_ac)
            b = lum - 2 / 3 * p
            r = (3 * lum - b + q) / 2
            out += bytes(int(max(0.0, 255 * min(1.0, v))) for v in (r, r - q, b, a))
    return Image.frombytes("RGBA", (w, h), bytes(out))


def _ac_cells(nx: int, ny: int) -> list[tuple[int, int]]:
    """The AC terms' (cx, cy), in the order the reference stores them: row by row of cy, while
    ``cx * ny < nx * (ny - cy)``, without the DC term (0, 0)."""
    return [(cx, cy) for cy in range(ny) for cx in range(0 if cy else 1, nx) if cx * ny < nx * (ny - cy)]


def _round(value: float) -> int:
    """JavaScript's Math.round, which the reference uses: halves go up."""
    return math.floor(value + 0.5)
