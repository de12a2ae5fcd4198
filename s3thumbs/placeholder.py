"""A source's ThumbHash (https://evanw.github.io/thumbhash/): a placeholder of about 25 bytes that an
app decodes into a blurred picture with the right colours, alpha and aspect ratio while the
thumbnails load. Computed once per source, from its smallest thumbnail as displayed, scaled to fit
100×100 (the most the format takes).

The encoder follows the reference implementation (Evan Wallace's ``rgbaToThumbHash``) step by step;
the tests decode its output with the reference JavaScript decoder. The one Python port on PyPI
fails on images with alpha. The DCT is done separably (rows first), which gives the reference's
sums in a fraction of the time.
"""

from __future__ import annotations

import base64
import math
from operator import mul

from PIL import Image

MAX_SIDE = 100


def thumbhash_of(image: Image.Image) -> str:
    """The ThumbHash of ``image`` (any mode), standard base64 with padding."""
    small = image.convert("RGBA")
    small.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
    return base64.b64encode(encode(small.width, small.height, small.tobytes())).decode("ascii")


def encode(w: int, h: int, rgba: bytes) -> bytes:
    """The reference encoder: ``rgba`` holds w×h pixels of 4 bytes, w and h at most 100."""
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE) or len(rgba) != w * h * 4:
        raise ValueError(f"a {w}x{h} image of {len(rgba)} bytes")
    reds, greens, blues = rgba[0::4], rgba[1::4], rgba[2::4]
    alphas = [a / 255 for a in rgba[3::4]]
    total_alpha = sum(alphas)
    averages = [sum(map(mul, alphas, band)) / 255 for band in (reds, greens, blues)]
    if total_alpha:
        averages = [v / total_alpha for v in averages]
    has_alpha = total_alpha < w * h
    l_limit = 5 if has_alpha else 7  # fewer luminance coefficients when alpha needs the room
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    # RGBA to luminance, yellow-blue, red-green and alpha, composited atop the average colour.
    avg_r, avg_g, avg_b = averages
    lum, yb, rg = [], [], []
    for red, green, blue, a in zip(reds, greens, blues, alphas, strict=True):
        r = avg_r * (1 - a) + a / 255 * red
        g = avg_g * (1 - a) + a / 255 * green
        b = avg_b * (1 - a) + a / 255 * blue
        lum.append((r + g + b) / 3)
        yb.append((r + g) / 2 - b)
        rg.append(r - g)
    l_dc, l_ac, l_scale = _channel(lum, w, h, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _channel(yb, w, h, 3, 3)
    q_dc, q_ac, q_scale = _channel(rg, w, h, 3, 3)
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
        a_dc, a_ac, a_scale = _channel(alphas, w, h, 5, 5)
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
        factors.append(a_ac)
    nibbles = [_round(15 * f) for ac in factors for f in ac]
    nibbles += [0] * (len(nibbles) % 2)
    out += [low | (high << 4) for low, high in zip(nibbles[::2], nibbles[1::2], strict=True)]
    return bytes(out)


def _channel(values: list[float], w: int, h: int, nx: int, ny: int) -> tuple[float, list[float], float]:
    """The DC term, the AC terms normalised to 0..1, and their scale, of one channel's DCT.

    The reference visits (cx, cy) with ``cx * ny < nx * (ny - cy)``, row by row of cy."""
    rows = [values[y * w : (y + 1) * w] for y in range(h)]
    by_row: dict[int, list[float]] = {}  # for each cx: every row's sum of value × cos along x
    dc, ac = 0.0, []
    for cy in range(ny):
        fy = [math.cos(math.pi / h * cy * (y + 0.5)) for y in range(h)]
        cx = 0
        while cx * ny < nx * (ny - cy):
            if cx not in by_row:
                fx = [math.cos(math.pi / w * cx * (x + 0.5)) for x in range(w)]
                by_row[cx] = [sum(map(mul, row, fx)) for row in rows]
            f = sum(map(mul, by_row[cx], fy)) / (w * h)
            if cx or cy:
                ac.append(f)
            else:
                dc = f
            cx += 1
    scale = max((abs(f) for f in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def _round(value: float) -> int:
    """JavaScript's Math.round, which the reference uses: halves go up."""
    return math.floor(value + 0.5)
