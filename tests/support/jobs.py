"""A thumbnailer ``Job`` from plain values: sizes, format, quality, limits and where thumbnails go."""

from __future__ import annotations

from collections.abc import Iterable

from s3thumbs.imaging import RenderSpec
from s3thumbs.keys import Layout, Size
from s3thumbs.thumbnailer import Job

Box = tuple[int, int]
SIZES: tuple[Box, ...] = ((128, 128), (512, 512), (1024, 1024))


def make_job(
    sizes: Iterable[Box] = SIZES,
    fmt: str = "auto",
    quality: int = 85,
    max_pixels: int = 100_000_000,
    prefix: str = "thumbnails/",
    out_bucket: str | None = None,
    max_bytes: int = 10_000_000,
    buckets: frozenset[str] | None = None,
    cache_control: str | None = None,
    keep_copyright: bool = False,
) -> Job:
    spec = RenderSpec(tuple(Size(*s) for s in sizes), fmt, quality, max_pixels, keep_copyright=keep_copyright)
    return Job(spec, Layout(prefix, out_bucket), max_bytes, buckets, cache_control)
