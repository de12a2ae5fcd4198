"""Cover boxes: a thumbnail that fills its box exactly, the overflow cropped at the centre or where the
picture draws the eye (``attention``).

The picture is first scaled, never up, until it covers the box; the crop is then taken from that small
image. A source smaller than the box gives the largest region of the box's aspect ratio it holds, at
its own scale. ``attention`` scores every pixel as libvips' attention crop does: edges (a Laplacian of
the luminance), saturated colour, and skin tones; it then keeps the window whose total score is
highest. The scores are summed into one profile per axis by Pillow's box resize, so the search is
over a few hundred numbers, not over pixels.
"""

from __future__ import annotations

from itertools import accumulate

from PIL import Image, ImageChops, ImageFilter

from s3thumbs.keys import Size

# Scores are computed on the cover-scaled image shrunk to this side at most: plenty to place a window.
SCORE_SIDE = 256
# Skin in YCbCr (BT.601, full range), the usual chroma box.
SKIN_CB = (77, 127)
SKIN_CR = (133, 173)


def cover_size(width: int, height: int, box: Size) -> tuple[int, int]:
    """The size a width×height picture is scaled to, never up, so that it covers ``box``."""
    scale = min(1.0, max(box.width / width, box.height / height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def crop_size(covering: tuple[int, int], box: Size) -> tuple[int, int]:
    """The region of the box's aspect ratio a covering picture yields: the box itself, or for a source
    smaller than the box, the largest such region it holds."""
    width, height = covering
    if width >= box.width and height >= box.height:
        return box.width, box.height
    if width * box.height > height * box.width:  # wider than the box: the height limits
        return max(1, min(width, round(height * box.width / box.height))), height
    return width, max(1, min(height, round(width * box.height / box.width)))


def crop(image: Image.Image, box: Size, mode: str) -> Image.Image:
    """``image`` (covering ``box``, as displayed) cropped to the box, at the centre or by attention."""
    size = crop_size(image.size, box)
    if size == image.size:
        return image
    if mode == "attention":
        left, top = _attention(image, size)
    else:
        left, top = (image.width - size[0]) // 2, (image.height - size[1]) // 2
    return image.crop((left, top, left + size[0], top + size[1]))


def _attention(image: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    """The top-left corner of the ``size`` window holding the most edges, saturation and skin."""
    scale = min(1.0, SCORE_SIDE / max(image.size))
    small = image.convert("RGB").resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BOX
    )
    score = _score(small)
    columns = [float(v) for v in score.resize((small.width, 1), Image.Resampling.BOX).tobytes()]
    rows = [float(v) for v in score.resize((1, small.height), Image.Resampling.BOX).tobytes()]
    left = _best_start(columns, size[0] * scale) / scale
    top = _best_start(rows, size[1] * scale) / scale
    return min(round(left), image.width - size[0]), min(round(top), image.height - size[1])


def _score(image: Image.Image) -> Image.Image:
    """Per pixel: edge strength + saturation + skin, each 0–255, summed with saturation at 8 bits."""
    edges = image.convert("L").filter(ImageFilter.Kernel((3, 3), (-1, -1, -1, -1, 8, -1, -1, -1, -1), 1, 0))
    saturation = image.convert("HSV").getchannel("S")
    _, cb, cr = image.convert("YCbCr").split()
    skin = ImageChops.multiply(
        cb.point(lambda v: 255 if SKIN_CB[0] <= v <= SKIN_CB[1] else 0),
        cr.point(lambda v: 255 if SKIN_CR[0] <= v <= SKIN_CR[1] else 0),
    )
    return ImageChops.add(ImageChops.add(edges, saturation, scale=2), skin, scale=1.5)


def _best_start(profile: list[float], window: float) -> float:
    """Where a window of ``window`` (fractional) entries has the largest sum; the centre on a tie."""
    span = max(1, min(len(profile), round(window)))
    if span >= len(profile):
        return 0.0
    sums = list(accumulate(profile, initial=0.0))
    totals = [sums[i + span] - sums[i] for i in range(len(profile) - span + 1)]
    best = max(totals)
    candidates = [i for i, total in enumerate(totals) if total >= best - 1e-9]
    middle = (len(profile) - span) / 2
    return float(min(candidates, key=lambda i: abs(i - middle)))
