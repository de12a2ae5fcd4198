"""The key scheme, pure: sizes, where each thumbnail lives, and what is never a source."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import NamedTuple

# Keys are taken as images by their extension, or by the content type the event carries.
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".gif",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".avif",
        ".heic",
        ".heif",
        ".hif",
    }
)

_SIZE = re.compile(r"([0-9]+)[xX]([0-9]+)")
# The bucket names S3 itself accepts, and botocore checks before any request: the legacy us-east-1 rule
# (upper case, underscores, up to 255 characters), looser than today's, since MinIO, Ceph and old AWS
# buckets carry such names. Anything else makes every request, presigning included, fail.
BUCKET_NAME = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")
# S3 keys are 1 to 1,024 bytes of UTF-8.
MAX_KEY_BYTES = 1024


class Size(NamedTuple):
    """A box, in pixels: the thumbnail fits ``inside`` it (aspect kept), or a ``cover`` one fills it
    exactly, cropped. Its folder is ``WxH`` either way."""

    width: int
    height: int
    fit: str = "inside"

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def spec(self) -> str:
        """As written in S3THUMBS_SIZES: ``WxH``, or ``WxH:cover``."""
        return f"{self}:cover" if self.fit == "cover" else str(self)


def parse_sizes(text: str) -> tuple[Size, ...]:
    """Parse ``"128x128:cover, 512x512"``: WxH boxes, optionally ``:cover`` or ``:inside`` (the default),
    spaces ignored, duplicates dropped, order kept; the same WxH with two fits is an error."""
    sizes: list[Size] = []
    for part in "".join(text.split()).split(","):
        box, _, fit = part.partition(":")
        match = _SIZE.fullmatch(box)
        if not match or fit not in ("", "inside", "cover"):
            raise ValueError(f"{part!r} is not WxH or WxH:cover (e.g. 128x128:cover)")
        size = Size(int(match[1]), int(match[2]), fit or "inside")
        if size.width < 1 or size.height < 1:
            raise ValueError(f"{part!r} must have a positive width and height")
        if any(other[:2] == size[:2] and other.fit != size.fit for other in sizes):
            raise ValueError(f"{box} is given both inside and cover: one folder cannot hold both")
        if size not in sizes:
            sizes.append(size)
    return tuple(sizes)


def normalize_prefix(prefix: str) -> str:
    """Return the prefix with exactly one trailing slash (a bare folder name is fine)."""
    prefix = prefix.strip().lstrip("/")
    if not prefix:
        raise ValueError("must not be empty")
    return prefix if prefix.endswith("/") else prefix + "/"


def name_problem(bucket: str, key: str) -> str | None:
    """Why S3 could never hold ``bucket``/``key``, or None when it could."""
    if not BUCKET_NAME.fullmatch(bucket):
        return "not a bucket name S3 accepts"
    if not key:
        return "an empty key"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"a key over {MAX_KEY_BYTES} bytes"
    return None


def is_image_key(key: str, content_type: str | None = None) -> bool:
    """True when the key names something that looks like an image."""
    if content_type and content_type.lower().startswith("image/"):
        return True
    return posixpath.splitext(key)[1].lower() in IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Layout:
    """Where thumbnails go: ``{prefix}{W}x{H}/{key}`` in the source bucket, or, in an output bucket
    that serves many source buckets, ``{prefix}{W}x{H}/{bucket}/{key}``."""

    prefix: str = "thumbnails/"
    bucket: str | None = None

    def output_bucket(self, source_bucket: str) -> str:
        """The bucket a source's thumbnails are written to."""
        return self.bucket or source_bucket

    def size_folder(self, source_bucket: str, size: Size) -> str:
        """The folder (key prefix) that holds one size's thumbnails of the sources of ``source_bucket``."""
        return f"{self.prefix}{size}/{source_bucket}/" if self.bucket else f"{self.prefix}{size}/"

    def thumbnail_key(self, source_bucket: str, key: str, size: Size) -> str:
        """The key of one size's thumbnail of ``source_bucket/key``, whatever the output format."""
        return self.size_folder(source_bucket, size) + key

    def manifest_folder(self, source_bucket: str) -> str:
        """The folder (key prefix) of the manifests of the sources of ``source_bucket``."""
        return f"{self.prefix}manifest/{source_bucket}/" if self.bucket else f"{self.prefix}manifest/"

    def manifest_key(self, source_bucket: str, key: str) -> str:
        """The key of the manifest of ``source_bucket/key``: written last, so its presence with the
        source's current eTag means every thumbnail is there."""
        return f"{self.manifest_folder(source_bucket)}{key}.json"

    def is_thumbnail_of(self, candidate: str, source_bucket: str, key: str) -> bool:
        """True when ``candidate`` is where this layout puts one size's thumbnail of ``source_bucket/key``."""
        if not candidate.startswith(self.prefix):
            return False
        folder, _, rest = candidate[len(self.prefix) :].partition("/")
        source = f"{source_bucket}/{key}" if self.bucket else key
        return _SIZE.fullmatch(folder) is not None and rest == source

    def is_output(self, bucket: str, key: str) -> bool:
        """True for objects s3thumbs writes itself: they must never become sources."""
        return key.startswith(self.prefix) or (self.bucket is not None and bucket == self.bucket)
