"""One source file in, one encoded thumbnail per box out: Pillow, with libvips' resize (``resizing``).

The source is decoded once. Before that, its header must pass the pixel limit, a JPEG its scan
limit (``jpeg``), and the memory its decode and conversions will need its budget (``budget``).
JPEGs are shrunk while decoding (``draft``) to the smallest DCT scale that still covers the largest
real target by the margin that scale needs, the EXIF orientation is applied after that shrink (on
the small image), and smaller sizes are made from larger ones (a cascade). Images with alpha are
resized premultiplied, converted once each way; deep ones are resized before they are brought to 8
bits (``colours``). With pyvips installed, a big 8-bit PNG is decoded, premultiplied and resized
to its largest thumbnail by libvips in one streaming pass (``png``), never whole at full size.
``bench/images.py`` measures the choices below against libvips, sharp and an exact Lanczos
reference. No boto3, no Celery, no configuration reading, no change to Pillow's globals.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from PIL import ExifTags, Image, UnidentifiedImageError

from s3thumbs import budget, colours, copyright, crops, formats, jpeg, png
from s3thumbs.encoding import Thumbnail, encode, output_format
from s3thumbs.errors import BadImage
from s3thumbs.keys import Size
from s3thumbs.placeholder import thumbhash_of
from s3thumbs.resizing import resize

# What the decoders raise on hostile or broken input; all of it means "bad image".
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    RuntimeError,  # libheif's errors, its security limits among them
    Image.DecompressionBombError,
)
# A version of the rendering rules: bump it when output pixels change, so thumbnails re-render.
RENDER_VERSION = "6"
# After the DCT shrink about a 2x resize at most is left, where bicubic is within 0.5 dB PSNR of
# Lanczos after encoding and a third faster. Below NEAR_FACTOR (a 50 MP photo shrunk 8x on load lands 6 %
# above its box) Lanczos costs almost nothing more, and bicubic's softness alone lost 0.55 dB.
RESAMPLE = Image.Resampling.BICUBIC
NEAR_RESAMPLE = Image.Resampling.LANCZOS
NEAR_FACTOR = 1.25
# From the decoded image, box ``reduce()`` does whole factors first: a big PNG or WebP has no shrink
# on load, and a full-size filter costs more than the decode. It leaves the filter at least this
# factor: a box doing a whole 2x or 3x alone lost 0.89 and 0.75 dB. Between thumbnails the filter
# does all the work: a 2x box there costs up to 1 dB for a few milliseconds saved.
DECODED_REDUCING_GAP = 1.3
CASCADE_REDUCING_GAP = 2.0
# What filters after the decoded image's box: Lanczos makes up for the box's softness (a 12 MP AVIF's 1024 lost
# 0.52 dB with bicubic, 0.32 with Lanczos; a HEIC's 0.37 and 0.23), for 3 % more time on a 12 MP PNG.
AFTER_BOX_RESAMPLE = Image.Resampling.LANCZOS

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class RenderSpec:
    """What to render: the boxes, the output format rule and the encoder quality."""

    sizes: tuple[Size, ...]
    format: str = "auto"
    quality: int = 85
    max_pixels: int = 100_000_000
    max_decode_bytes: int = 768 * budget.MIB
    keep_copyright: bool = False
    crop: str = "centre"  # where a cover box crops: centre or attention

    @property
    def fingerprint(self) -> str:
        """A short hash of everything that changes the output: sizes, format, quality, metadata kept."""
        boxes = ",".join(size.spec for size in self.sizes)  # a cover box says so; crop mode only then
        crop = f"|crop={self.crop}" if any(size.fit == "cover" for size in self.sizes) else ""
        text = f"v{RENDER_VERSION}|{boxes}|{self.format}|{self.quality}{crop}"
        if self.keep_copyright:  # only then, so that thumbnails made before the setting existed stay current
            text += "|copyright"
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Rendering:
    """One source rendered: its thumbnails in the order of the spec's sizes, its size as displayed
    and its ThumbHash placeholder."""

    thumbnails: list[Thumbnail]
    size: tuple[int, int]
    thumbhash: str


def fit(width: int, height: int, box: Size) -> tuple[int, int]:
    """The size of a width×height image fitted inside box: aspect kept, never upscaled."""
    scale = min(box.width / width, box.height / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render(source: IO[bytes], spec: RenderSpec) -> Rendering:
    """Decode ``source`` once and make one thumbnail per box, in the order of ``spec.sizes``."""
    with _opened(source) as (im, file_size):
        header = _read_header(im, spec, source, file_size)
        needed = header.plan.peak_bytes()
        if needed > spec.max_decode_bytes:
            width, height = header.size
            raise BadImage(
                f"a {width}x{height} {im.mode} {im.format} needs about {needed / budget.MIB:,.0f} MiB to decode and "
                f"convert, over S3THUMBS_MAX_DECODE_MIB={spec.max_decode_bytes // budget.MIB}"
            )
        resized = png.resized_on_load(im, source, file_size, header.stored_largest)
        return _render_checked(im, spec, header, resized)


def decode_memory(source: IO[bytes], spec: RenderSpec) -> int:
    """The bytes rendering ``source`` would need at its peak, estimated from its header alone."""
    with _opened(source) as (im, file_size):
        return _read_header(im, spec, source, file_size).plan.peak_bytes()


@contextmanager
def _opened(source: IO[bytes]) -> Iterator[tuple[Image.Image, int]]:
    """The image in ``source``, opened lazily (nothing decoded), and the file's size; BadImage for
    whatever the decoders raise on bad input."""
    if _is_empty(source):
        raise BadImage("empty file")
    file_size = source.seek(0, 2)
    source.seek(0)
    allowed = formats.register()
    try:
        with warnings.catch_warnings():
            # We check the pixel count ourselves, against the configured limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=allowed) as im:
                yield im, file_size
    except UnidentifiedImageError as e:
        raise BadImage(formats.unreadable_reason(source)) from e
    except Image.DecompressionBombError as e:
        raise BadImage(f"decompression bomb: {e}") from e
    except DECODE_ERRORS as e:
        raise BadImage(f"cannot decode image: {e}") from e


def _is_empty(source: IO[bytes]) -> bool:
    position = source.tell()
    empty = not source.read(1)
    source.seek(position)
    return empty


@dataclass(frozen=True)
class _Header:
    """What the header says the render will do."""

    size: tuple[int, int]
    orientation: int
    targets: dict[Size, tuple[int, int]]
    stored_largest: tuple[int, int]
    # The region of the decoded image that holds the source: a DCT shrink rounds the size up, so
    # a side that is not a multiple of the scale ends in part of a pixel. Resizing the whole
    # image would shift the picture by up to half a pixel.
    region: tuple[float, float, float, float] | None
    plan: budget.DecodePlan


def _read_header(im: Image.Image, spec: RenderSpec, source: IO[bytes], file_size: int) -> _Header:
    """Check the pixel count and a JPEG's scans, shrink a JPEG on load, and plan the decode."""
    width, height = im.size
    if width * height > spec.max_pixels:
        raise BadImage(f"image is {width}x{height} = {width * height:,} pixels, over the limit of {spec.max_pixels:,}")
    if im.format in ("HEIF", "AVIF") and (problem := formats.cut_short(source, file_size)):
        raise BadImage(f"a {im.format} image, {problem}")
    is_jpeg = im.format in ("JPEG", "MPO")
    progressive = is_jpeg and bool(im.info.get("progressive"))
    if progressive and jpeg.too_many_scans(source):
        raise BadImage(f"a JPEG of more than {jpeg.MAX_SCANS} scans: an abnormal number, made to waste decoding time")
    # The decoder keeps every coefficient of a progressive JPEG, or of a sequential one in several scans.
    whole_image = progressive or (is_jpeg and jpeg.has_multiple_scans(source, len(getattr(im, "layer", []))))
    orientation = _orientation(im, loaded=False)
    targets, stored_largest = _targets((width, height), orientation, spec.sizes)
    region = None
    if is_jpeg:
        region = jpeg.draft(im, stored_largest)
    plan = budget.plan(im, (width, height), whole_image, stored_largest, region, file_size, DECODED_REDUCING_GAP)
    return _Header((width, height), orientation, targets, stored_largest, region, plan)


def _render_checked(im: Image.Image, spec: RenderSpec, header: _Header, resized: Image.Image | None) -> Rendering:
    """Render ``im``, or from ``resized``: its largest thumbnail already made while decoding (``png``)."""
    orientation, targets, stored_largest = header.orientation, header.targets, header.stored_largest
    if resized is None:
        im.load()
        if (found := _orientation(im, loaded=True)) != orientation:  # a PNG's eXIf may follow its pixels
            orientation = found
            targets, stored_largest = _targets(header.size, orientation, spec.sizes)
    profile = colours.Profile.of(im)
    # Pillow decodes a PNG to look for EXIF after its pixels; one resized on load has none there.
    has_exif = resized is None or "exif" in im.info
    exif = copyright.kept_exif(im) if spec.keep_copyright and has_exif else None
    xmp = copyright.kept_xmp(im) if spec.keep_copyright else None
    base = colours.normalize(im) if resized is None else resized
    mode = colours.output_mode(im.mode if resized is not None else base.mode)
    fmt = output_format(im.format, mode in colours.PREMULTIPLIED, spec.format)
    if resized is None and mode in colours.PREMULTIPLIED and base.size != stored_largest:
        base = base.convert(colours.PREMULTIPLIED[mode])  # an unresized image keeps its exact pixels

    made: list[Image.Image] = []
    thumbnails: dict[Size, Thumbnail] = {}
    for box, target in sorted(targets.items(), key=lambda item: -item[1][0] * item[1][1]):
        image = _scaled(base, header.region, made, target, orientation)
        made.append(image)  # uncropped: smaller boxes may be made from it
        if box.fit == "cover":
            image = crops.crop(image, box, spec.crop)
        finished = profile.apply(image.convert(mode) if image.mode != mode else image)
        thumbnails[box] = encode(finished, box, fmt, spec.quality, profile.embedded, exif, xmp)
    shown = (header.size[1], header.size[0]) if orientation in (5, 6, 7, 8) else header.size
    placeholder = thumbhash_of(finished)  # the smallest thumbnail, as displayed
    return Rendering([thumbnails[box] for box in spec.sizes], shown, placeholder)


def _targets(
    size: tuple[int, int], orientation: int, sizes: tuple[Size, ...]
) -> tuple[dict[Size, tuple[int, int]], tuple[int, int]]:
    """Each box's thumbnail size as shown, and the largest of them as the image is stored."""
    swapped = orientation in (5, 6, 7, 8)
    shown = (size[1], size[0]) if swapped else size
    # A cover box needs the picture scaled until it covers the box; it is cropped once made.
    targets = {box: crops.cover_size(*shown, box) if box.fit == "cover" else fit(*shown, box) for box in sizes}
    largest = (max(w for w, _ in targets.values()), max(h for _, h in targets.values()))
    return targets, (largest[1], largest[0]) if swapped else largest


def _orientation(im: Image.Image, loaded: bool) -> int:
    """The EXIF orientation, 1 for none. Pillow's TIFF decoder and libheif apply it themselves (and
    report the turned size). A PNG's eXIf chunk may come after its pixels, and Pillow decodes the whole image to
    find it: before ``loaded``, only one met in the header counts."""
    if im.format in formats.ORIENTED_BY_DECODER or (im.format == "PNG" and not loaded and "exif" not in im.info):
        return 1
    value = im.getexif().get(ExifTags.Base.Orientation, 1)
    return value if value in _TRANSPOSE else 1


def _scaled(
    base: Image.Image,
    region: tuple[float, float, float, float] | None,
    made: list[Image.Image],
    target: tuple[int, int],
    orientation: int,
) -> Image.Image:
    """Resize from the smallest image made so far that still covers target, else from base."""
    covering = [im for im in made if im.width >= target[0] and im.height >= target[1]]
    if covering:
        source = min(covering, key=lambda im: im.width * im.height)
        return source if source.size == target else resize(source, target, RESAMPLE, reducing_gap=CASCADE_REDUCING_GAP)
    swapped = orientation in (5, 6, 7, 8)
    stored = (target[1], target[0]) if swapped else target
    if base.size == stored and region in (None, (0, 0, *stored)):
        image = base
    else:
        factor = (region[2] if region else base.width) / stored[0]
        gap = None if base.mode in colours.NO_REDUCE_MODES else DECODED_REDUCING_GAP
        boxed = gap is not None and factor >= 2 * gap  # Pillow reduces by int(factor / gap) first
        resample = NEAR_RESAMPLE if factor < NEAR_FACTOR else AFTER_BOX_RESAMPLE if boxed else RESAMPLE
        image = resize(base, stored, resample, box=region, reducing_gap=gap)
    image = colours.to_8bit(image)  # a deep image, now small
    return image.transpose(_TRANSPOSE[orientation]) if orientation != 1 else image
