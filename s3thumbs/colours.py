"""Colour: every mode brought to L, LA, RGB or RGBA, and each embedded profile kept or applied.

Deep images (16-bit and 32-bit grey, float) are resized in their own mode and brought to 8 bits
only once small: converting them at full size would cost two or three whole copies. CMYK is
converted to sRGB through its profile. A profile is embedded in thumbnails only up to
``MAX_EMBEDDED_PROFILE``: a bigger one (a 16 MB "profile" would otherwise ride along with every
128×96 thumbnail) is applied to the pixels, which then are sRGB and carry none.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image, ImageCms

if TYPE_CHECKING:
    from s3thumbs.nclx import Conversion

MAX_EMBEDDED_PROFILE = 64 * 1024
DEEP_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
# Deep modes whose resize cannot start with a box reduction (Pillow's reduce() refuses them).
NO_REDUCE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
# Pillow premultiplies alpha inside every resize of an RGBA image; doing it once saves two
# full-size conversions per resize.
PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def normalized_mode(mode: str, transparency: bool) -> str | None:
    """The mode a full-size copy is converted to before resizing, or None when no copy is made."""
    if mode in DEEP_MODES or mode in ("L", "LA", "RGB", "RGBA"):
        return ("LA" if mode == "L" else "RGBA") if transparency and mode in ("L", "RGB") else None
    if mode == "1":
        return "L"
    if mode in ("P", "PA"):
        return "RGBA" if transparency or mode == "PA" else "RGB"
    if mode == "La":
        return "LA"
    if mode == "RGBa":
        return "RGBA"
    return "RGB"  # CMYK, YCbCr, LAB, HSV…


def output_mode(mode: str) -> str:
    """The 8-bit mode an image of ``mode`` (already normalized) is encoded in."""
    return "L" if mode in DEEP_MODES else mode


def normalize(im: Image.Image) -> Image.Image:
    """``im`` in L, LA, RGB, RGBA or a deep mode, as ``normalized_mode`` says (``im`` itself if no copy is needed)."""
    mode = im.mode
    transparency = "transparency" in im.info or (mode == "P" and im.has_transparency_data)
    target = normalized_mode(mode, transparency)
    if target is None:
        return im
    if mode == "CMYK":
        return _cmyk_to_srgb(im, im.info.get("icc_profile") or None)
    return im.convert(target)


def to_8bit(im: Image.Image) -> Image.Image:
    """A deep image (already small) as 8-bit grey; other images unchanged."""
    if im.mode == "F":
        return im.point(lambda value: value * 255).convert("L")
    if im.mode in DEEP_MODES:
        return im.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    return im


def _cmyk_to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    if icc:
        try:
            converted = ImageCms.profileToProfile(
                im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB, outputMode="RGB"
            )
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken embedded profile: fall back to the plain conversion below
    return im.convert("RGB")


@dataclass
class Profile:
    """What to do with a source's colour profile: embed it (small), or apply it to the pixels (large)."""

    icc: bytes | None
    # A HEIF's colours described by CICP codes (wide gamut, HDR) rather than an ICC profile.
    nclx: Conversion | None = None
    _transforms: dict[str, ImageCms.ImageCmsTransform | None] = field(default_factory=dict)

    @classmethod
    def of(cls, im: Image.Image) -> Profile:
        """The profile of a decoded image; those of CMYK and other colour spaces are used up by the
        conversion to sRGB."""
        kept = im.mode in DEEP_MODES or im.mode in ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa")
        icc = im.info.get("icc_profile") or None if kept else None
        if icc or "nclx_profile" not in im.info:
            return cls(icc)
        from s3thumbs import nclx  # only HEIF carries nclx profiles: loaded when one does

        return cls(icc, nclx.conversion(im.info))

    @property
    def embedded(self) -> bytes | None:
        """The profile to embed in thumbnails, if it is small enough."""
        return self.icc if self.icc is not None and len(self.icc) <= MAX_EMBEDDED_PROFILE else None

    def apply(self, im: Image.Image) -> Image.Image:
        """A thumbnail's pixels in sRGB when its profile is too big to embed; unchanged otherwise.

        A profile that cannot be read, or does not fit the image's colours, is dropped. Colours
        described by nclx codes are converted here too.
        """
        if self.nclx is not None:
            return self.nclx.apply(im)
        if self.icc is None or self.embedded is not None:
            return im
        alpha = im.getchannel("A") if im.mode in ("LA", "RGBA") else None
        colour = im.convert(im.mode[:-1]) if alpha is not None else im
        transform = self._transform(colour.mode)
        if transform is None:
            return im
        converted = ImageCms.applyTransform(colour, transform)
        if converted is None:
            return im
        if alpha is not None:
            converted.putalpha(alpha)
        return converted

    def _transform(self, mode: str) -> ImageCms.ImageCmsTransform | None:
        if mode not in self._transforms:
            try:
                source = ImageCms.ImageCmsProfile(io.BytesIO(self.icc or b""))
                self._transforms[mode] = ImageCms.buildTransform(source, _SRGB, mode, "RGB")
            except (ImageCms.PyCMSError, OSError, ValueError):
                self._transforms[mode] = None
        return self._transforms[mode]
