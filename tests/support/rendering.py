"""Rendering test images with s3thumbs.imaging, and looking at what came out."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from PIL import Image

from s3thumbs.encoding import Thumbnail
from s3thumbs.imaging import RenderSpec, render
from s3thumbs.keys import Size
from tests.support import images

Box = tuple[int, int]
DEFAULT_SIZES = (Size(128, 128), Size(512, 512), Size(1024, 1024))
BIG_BOX = Size(1024, 1024)
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "AVIF": "image/avif"}


def render_all(
    data: bytes,
    sizes: Iterable[Box] = DEFAULT_SIZES,
    fmt: str = "auto",
    quality: int = 85,
    max_pixels: int = 100_000_000,
    max_decode_bytes: int = RenderSpec.max_decode_bytes,
) -> list[Thumbnail]:
    spec = RenderSpec(tuple(Size(*s) for s in sizes), fmt, quality, max_pixels, max_decode_bytes)
    return render(io.BytesIO(data), spec).thumbnails


def render_one(data: bytes, box: Box = BIG_BOX, fmt: str = "auto", **options: int) -> tuple[Thumbnail, Image.Image]:
    [thumb] = render_all(data, (box,), fmt, **options)
    return thumb, decoded(thumb)


def decoded(thumb: Thumbnail) -> Image.Image:
    """The thumbnail's picture, checked against the size and content type it claims."""
    im = Image.open(io.BytesIO(thumb.body))
    im.load()
    assert im.size == (thumb.width, thumb.height)
    assert CONTENT_TYPES[str(im.format)] == thumb.content_type
    return im


def near(actual: Sequence[int], expected: Sequence[int], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def pixel(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = im.getpixel(xy)
    assert isinstance(value, tuple), f"{im.mode} image has no bands"
    return value


def quadrant_colours(im: Image.Image) -> dict[str, tuple[int, ...]]:
    """The colour at the middle of each quadrant, by the names of ``images.QUADRANTS``."""
    rgb = im.convert("RGB")
    w, h = rgb.size
    points = {
        "top_left": (w // 4, h // 4),
        "top_right": (3 * w // 4, h // 4),
        "bottom_left": (w // 4, 3 * h // 4),
        "bottom_right": (3 * w // 4, 3 * h // 4),
    }
    return {name: pixel(rgb, xy) for name, xy in points.items()}


def assert_upright(im: Image.Image, tolerance: int = 60) -> None:
    """The picture shows the test pattern's quadrants the right way up."""
    colours = quadrant_colours(im)
    wrong = {
        name: colours[name]
        for name, expected in images.QUADRANTS.items()
        if not near(colours[name], expected, tolerance)
    }
    assert not wrong, f"quadrants {colours} are not the upright pattern {images.QUADRANTS}"
