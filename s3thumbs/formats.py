"""The decoders untrusted bytes may reach, and the reason given when a known format cannot be read here.

AVIF comes from Pillow's own plugin (libavif with dav1d); HEIC/HEIF from the optional ``heif`` extra
(pillow-heif: libheif with libde265). The HEIF decoder is registered once per process, on first
use, with embedded thumbnails, depth maps and auxiliary images (gain maps) switched off: only the
primary image is ever decoded, never a thumbnail that could show another picture than the image.
libheif applies a HEIF's rotation and mirroring (``irot``/``imir``) while decoding and pillow-heif
then reports EXIF orientation 1; Pillow's AVIF plugin instead reports them as the EXIF orientation
(replacing whatever the EXIF block says), which is applied like a JPEG's. Either way, once.
"""

from __future__ import annotations

import functools
import logging
from typing import IO

from PIL import Image, features

# Tried in this order; every other decoder Pillow has (EPS, FITS, PSD…) is refused.
# Phone JPEGs with extra frames open as MPO through the JPEG decoder.
ALLOWED = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "HEIF")
# Decoders that turn the image upright themselves: their size is already the displayed one.
ORIENTED_BY_DECODER = frozenset({"TIFF", "HEIF"})
HEIF_EXTRA = "pip install 's3thumbs[heif]'"
# libheif before 1.18 cannot open photos from iOS 18 (metadata and depth maps on a 'tmap' item).
HEIF_MINIMUM_LIBHEIF = (1, 18)
# ISOBMFF brands (ftyp) of AV1 and HEVC still images.
AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})

log = logging.getLogger(__name__)


def register() -> tuple[str, ...]:
    """Register every decoder in ``ALLOWED`` that this installation has, and return their names."""
    Image.init()  # registers the WebP, TIFF and AVIF decoders; a no-op once done
    _register_heif()
    return tuple(name for name in ALLOWED if name in Image.OPEN)


@functools.cache
def _register_heif() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    # One decoding thread: a worker already runs a process per core; more threads cost 8 % more CPU.
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False, decode_threads=1)
    version = pillow_heif.libheif_version()
    if tuple(int(part) for part in version.split(".")[:2]) < HEIF_MINIMUM_LIBHEIF:
        log.warning("libheif %s is older than 1.18 and cannot read photos from iOS 18", version)
    return True


def container(head: bytes) -> str | None:
    """The kind of ISOBMFF image ``head`` (a file's first bytes) starts, AVIF or HEIF, or None."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    box_end = min(int.from_bytes(head[:4], "big"), len(head))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, box_end - 3, 4)}
    if brands & AVIF_BRANDS:
        return "AVIF"
    if brands & HEIF_BRANDS:
        return "HEIF"
    return None


def unreadable_reason(source: IO[bytes]) -> str:
    """Why Pillow found no decoder for ``source``."""
    source.seek(0)
    kind = container(source.read(64))
    if kind == "HEIF" and not _register_heif():
        return f"a HEIC/HEIF image, and the heif extra is not installed ({HEIF_EXTRA})"
    if kind == "AVIF" and not features.check("avif"):
        return "an AVIF image, and this Pillow was built without AVIF support"
    if kind is not None and (problem := cut_short(source, source.seek(0, 2))):
        return f"a {kind} image, {problem}"
    if kind == "HEIF":  # Pillow keeps the reason to itself; libheif's says which limit or box
        import pillow_heif

        source.seek(0)
        try:
            pillow_heif.open_heif(source)
        except (RuntimeError, ValueError, OSError, SyntaxError, EOFError) as e:
            return f"a HEIF image libheif refuses: {str(e).strip()}"
    if kind is not None:
        return f"a damaged or truncated {kind} image: its header cannot be read"
    return f"not an image in a supported format ({', '.join(ALLOWED)})"


def cut_short(source: IO[bytes], file_size: int) -> str | None:
    """Why an ISOBMFF file (HEIF, AVIF) is incomplete, or None. libheif fills the tiles of a grid
    image whose data is missing and reports no error, so a partial upload would otherwise come out
    as a picture with green squares."""
    position, offset = source.tell(), 0
    try:
        while offset + 8 <= file_size:
            source.seek(offset)
            header = source.read(16)
            size, kind = int.from_bytes(header[:4], "big"), repr(header[4:8].decode("latin-1"))
            if size == 1:  # a 64-bit size follows the type
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:  # the last box, to the end of the file
                return None
            if size < 8:
                return f"a damaged {kind} box at byte {offset}"
            if offset + size > file_size:
                return f"truncated: its {kind} box needs {offset + size:,} bytes, the file has {file_size:,}"
            offset += size
        return None
    finally:
        source.seek(position)
