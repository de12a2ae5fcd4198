"""Test images as bytes, made with Pillow (or by hand where Pillow cannot write them).

Every picture that has a "pattern" shows four quadrants when displayed upright:
red top-left, green top-right, blue bottom-left, white bottom-right.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import cache

from PIL import ExifTags, Image, ImageCms, ImageDraw, ImageFilter, PngImagePlugin

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
QUADRANTS = {"top_left": RED, "top_right": GREEN, "bottom_left": BLUE, "bottom_right": WHITE}

# How a stored image must be turned to be displayed, per EXIF Orientation (EXIF 2.32, tag 274).
DISPLAY = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# The inverse: what a camera stores so that DISPLAY[o] shows the picture upright.
_STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" photoshop:City="Secretville"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
COMMENT = "Alice at home, 12 Secret Street"
CAMERA = "PhoneMaker SecretPhone 15"
IPTC_MARKER = b"Photoshop 3.0\x00"

# Print-like colours of single inks on paper, as sRGB: what the hand-made CMYK profile renders.
INKS = {"c": (0, 158, 224), "m": (226, 0, 122), "y": (255, 237, 0), "k": (35, 31, 32)}


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **options)
    return buffer.getvalue()


def pattern(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """The four coloured quadrants, upright, width×height."""
    im = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(im)
    half_w, half_h = width // 2, height // 2
    draw.rectangle((0, 0, half_w - 1, half_h - 1), fill=RED)
    draw.rectangle((half_w, 0, width - 1, half_h - 1), fill=GREEN)
    draw.rectangle((0, half_h, half_w - 1, height - 1), fill=BLUE)
    return im if mode == "RGB" else im.convert(mode)


def stored(im: Image.Image, orientation: int | None) -> Image.Image:
    """The pixels a camera writes for a picture displayed as ``im`` with this EXIF orientation."""
    turn = _STORE.get(orientation or 1)
    return im.transpose(turn) if turn is not None else im


def exif(orientation: int | None = None, gps: bool = False) -> Image.Exif:
    data = Image.Exif()
    if orientation is not None:
        data[ExifTags.Base.Orientation] = orientation
    if gps:
        data[ExifTags.Base.Make] = CAMERA.split()[0]
        data[ExifTags.Base.Model] = CAMERA
        data[ExifTags.Base.DateTime] = "2026:07:14 12:34:56"
        location = data.get_ifd(ExifTags.IFD.GPSInfo)
        location[ExifTags.GPS.GPSLatitudeRef] = "N"
        location[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 24.0)
        location[ExifTags.GPS.GPSLongitudeRef] = "E"
        location[ExifTags.GPS.GPSLongitude] = (2.0, 21.0, 3.0)
    return data


@cache
def jpeg(
    w: int,
    h: int,
    orientation: int | None = None,
    progressive: bool = False,
    mode: str = "RGB",
    exif_gps: bool = False,
    comment: str | None = None,
    icc: bytes | None = None,
    xmp: bytes | None = None,
    quality: int = 90,
) -> bytes:
    """A JPEG whose picture, displayed upright, is the w×h pattern.

    With an orientation the stored pixels are turned the way a camera stores them (so 5–8 are
    stored h×w) and EXIF Orientation says how to turn them back.
    """
    options: dict[str, object] = {"quality": quality, "progressive": progressive}
    if orientation is not None or exif_gps:
        options["exif"] = exif(orientation, exif_gps)
    if comment is not None:
        options["comment"] = comment
    if icc is not None:
        options["icc_profile"] = icc
    if xmp is not None:
        options["xmp"] = xmp
    return encode(stored(pattern(w, h, mode), orientation), "JPEG", **options)


def insert_jpeg_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """``data`` with one more APPn/COM segment right after SOI."""
    assert data[:2] == b"\xff\xd8"
    return data[:2] + bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload + data[2:]


@cache
def phone_jpeg() -> bytes:
    """A portrait phone photo: stored 400×300 landscape, EXIF Orientation 6, GPS, XMP, COM, IPTC."""
    data = jpeg(300, 400, orientation=6, exif_gps=True, comment=COMMENT, xmp=XMP)
    iptc = IPTC_MARKER + b"8BIM\x04\x04\x00\x00\x00\x00\x00\x0e\x1c\x02\x5a\x00\x0aSecretvill"
    return insert_jpeg_segment(data, 0xED, iptc)


@cache
def oriented(fmt: str, w: int, h: int, orientation: int) -> bytes:
    """A PNG, WebP or TIFF of the upright w×h pattern, stored turned, with EXIF Orientation."""
    im = stored(pattern(w, h), orientation)
    if fmt == "WEBP":
        return encode(im, fmt, exif=exif(orientation), lossless=True)
    return encode(im, fmt, exif=exif(orientation))


@cache
def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@cache
def with_icc(fmt: str) -> bytes:
    """The 64×32 pattern as JPEG, PNG or WebP with an embedded sRGB profile."""
    if fmt == "JPEG":
        return jpeg(64, 32, icc=srgb_profile())
    options: dict[str, object] = {"icc_profile": srgb_profile()}
    if fmt == "WEBP":
        options["lossless"] = True
    return encode(pattern(64, 32), fmt, **options)


def _srgb_to_lab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """sRGB (0–1) to CIELAB under D50, through the D50-adapted sRGB matrix."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    matrix = ((0.4360747, 0.3850649, 0.1430804), (0.2225045, 0.7168786, 0.0606169), (0.0139322, 0.0971045, 0.7141733))
    white = (0.9642, 1.0, 0.8249)
    x, y, z = (sum(m * c for m, c in zip(row, linear, strict=True)) / w for row, w in zip(matrix, white, strict=True))

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _ink_transmittance(ink: str) -> tuple[float, ...]:
    return tuple((c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4) for c in INKS[ink])


def _linear_to_srgb(value: float) -> float:
    return value * 12.92 if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055


@cache
def cmyk_profile() -> bytes:
    """A small ICC v2 output profile, CMYK → Lab through a 2-point lut16 (``mft2``).

    Each ink filters light like the colour in INKS (overprints multiply), so a pure-cyan pixel
    renders as INKS["c"], unlike Pillow's naive conversion, which gives (0, 255, 255).
    """
    grid = []
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    light = [1.0, 1.0, 1.0]
                    for ink, on in zip("cmyk", (c, m, y, k), strict=True):
                        if on:
                            light = [a * b for a, b in zip(light, _ink_transmittance(ink), strict=True)]
                    r, g, b = (_linear_to_srgb(v) for v in light)
                    lab = _srgb_to_lab((r, g, b))
                    grid.append(
                        (round(lab[0] / 100 * 0xFF00), round((lab[1] + 128) * 256), round((lab[2] + 128) * 256))
                    )
    identity = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x10000)
    lut = (
        b"mft2"
        + bytes(4)
        + bytes((4, 3, 2, 0))
        + struct.pack(">9i", *identity)
        + struct.pack(">HH", 2, 2)
        + struct.pack(">8H", *(0, 0xFFFF) * 4)
        + b"".join(struct.pack(">3H", *(min(max(v, 0), 0xFFFF) for v in entry)) for entry in grid)
        + struct.pack(">6H", *(0, 0xFFFF) * 3)
    )
    name = b"s3thumbs test CMYK\x00"
    desc = (
        b"desc" + bytes(4) + struct.pack(">I", len(name)) + name + bytes(4) + bytes(4) + bytes(2) + bytes(1) + bytes(67)
    )
    wtpt = b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in (0.9642, 1.0, 0.8249)))
    text = b"text" + bytes(4) + b"public domain\x00"
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", text), (b"A2B0", lut)]
    offset = 128 + 4 + 12 * len(tags)
    table, blobs = b"", b""
    for signature, blob in tags:
        blob += bytes(-len(blob) % 4)
        table += signature + struct.pack(">II", offset + len(blobs), len(blob))
        blobs += blob
    size = offset + len(blobs)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + struct.pack(">I", 0x02100000)
        + b"prtrCMYKLab "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + bytes(24)
        + struct.pack(">I", 0)
        + struct.pack(">3i", *(round(v * 65536) for v in (0.9642, 1.0, 0.8249)))
        + bytes(4)
    )
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + blobs


CMYK_QUADRANTS = {
    "top_left": (255, 0, 0, 0),
    "top_right": (0, 255, 0, 0),
    "bottom_left": (0, 0, 255, 0),
    "bottom_right": (0, 0, 0, 255),
}

# What each quadrant of those CMYK images looks like in RGB: without a profile Pillow's naive
# conversion (pure inks), with one the printed inks (INKS), by whether the source embeds a profile.
CMYK_AS_RGB = {
    False: {
        "top_left": (0, 255, 255),
        "top_right": (255, 0, 255),
        "bottom_left": (255, 255, 0),
        "bottom_right": (0, 0, 0),
    },
    True: {"top_left": INKS["c"], "top_right": INKS["m"], "bottom_left": INKS["y"], "bottom_right": INKS["k"]},
}


@cache
def cmyk_jpeg(with_profile: bool = False) -> bytes:
    """A 64×64 CMYK JPEG: cyan, magenta, yellow and black quadrants (as in CMYK_QUADRANTS)."""
    im = Image.new("CMYK", (64, 64))
    draw = ImageDraw.Draw(im)
    for (x, y), ink in zip(((0, 0), (32, 0), (0, 32), (32, 32)), CMYK_QUADRANTS.values(), strict=True):
        draw.rectangle((x, y, x + 31, y + 31), fill=ink)
    options: dict[str, object] = {"quality": 95}
    if with_profile:
        options["icc_profile"] = cmyk_profile()
    return encode(im, "JPEG", **options)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes | None, extra: bytes = b"") -> bytes:
    """A PNG assembled chunk by chunk; no IDAT at all when ``idat`` is None."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = _chunk(b"IHDR", header) + extra
    if idat is not None:
        body += _chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b"")


def png_chunk_types(data: bytes) -> list[bytes]:
    kinds, position = [], 8
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        kinds.append(data[position + 4 : position + 8])
        position += 12 + length
    return kinds


@cache
def header_only_png(width: int, height: int) -> bytes:
    """A PNG that declares width×height and has no pixel data at all."""
    return raw_png(width, height, 1, 0, None)


@cache
def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A real, valid 1-bit black PNG of width×height that deflates to a few dozen KB."""
    row = bytes(1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return raw_png(width, height, 1, 0, idat)


GRADIENT_WIDTH = 256


@cache
def png16_gray(fmt: str = "PNG") -> bytes:
    """A 256×16 16-bit grayscale (``I;16``) left-to-right ramp from 0 to 65535."""
    im = Image.new("I;16", (GRADIENT_WIDTH, 16))
    for x in range(GRADIENT_WIDTH):
        for y in range(16):
            im.putpixel((x, y), x * 257)
    return encode(im, fmt)


@cache
def png16_rgb(alpha: bool = False) -> bytes:
    """A 256×16 PNG with 16 bits per channel: red ramps up, green ramps down, blue is half.

    With alpha, the bottom half is fully transparent.
    """
    rows = []
    for y in range(16):
        pixels = []
        for x in range(GRADIENT_WIDTH):
            channels = [x * 257, (255 - x) * 257, 0x8080]
            if alpha:
                channels.append(0 if y >= 8 else 0xFFFF)
            pixels.append(struct.pack(f">{len(channels)}H", *channels))
        rows.append(b"\x00" + b"".join(pixels))
    return raw_png(GRADIENT_WIDTH, 16, 16, 6 if alpha else 2, zlib.compress(b"".join(rows)))


@cache
def palette_png(transparency: bool = False) -> bytes:
    """A 32×32 palette PNG: left half red, right half blue (transparent, when asked)."""
    im = Image.new("P", (32, 32), 0)
    im.putpalette([*RED, *BLUE])
    ImageDraw.Draw(im).rectangle((16, 0, 31, 31), fill=1)
    return encode(im, "PNG", transparency=1) if transparency else encode(im, "PNG")


def alpha_picture(mode: str = "RGBA") -> Image.Image:
    """32×32: opaque red left half, fully transparent (black) right half, a half-alpha band."""
    im = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 15, 31), fill=(255, 0, 0, 255))
    draw.rectangle((0, 28, 15, 31), fill=(255, 0, 0, 128))
    return im if mode == "RGBA" else im.convert(mode)


@cache
def rgba_png() -> bytes:
    return encode(alpha_picture(), "PNG")


@cache
def la_png() -> bytes:
    """32×32 LA: opaque white-ish (200) left half, transparent right half."""
    im = Image.new("LA", (32, 32), (0, 0))
    ImageDraw.Draw(im).rectangle((0, 0, 15, 31), fill=(200, 255))
    return encode(im, "PNG")


@cache
def rgb_png_with_colour_key() -> bytes:
    """32×32 RGB PNG whose blue right half is made transparent by a tRNS colour key."""
    im = Image.new("RGB", (32, 32), BLUE)
    ImageDraw.Draw(im).rectangle((0, 0, 15, 31), fill=RED)
    return encode(im, "PNG", transparency=BLUE)


@cache
def bilevel_png() -> bytes:
    """32×32 1-bit: black left half, white right half."""
    im = Image.new("1", (32, 32), 0)
    ImageDraw.Draw(im).rectangle((16, 0, 31, 31), fill=1)
    return encode(im, "PNG")


FRAME_COLOURS = (RED, GREEN, BLUE)


@cache
def animated(fmt: str) -> bytes:
    """A 32×32 animated GIF, WebP or PNG (APNG): one plain frame per colour in FRAME_COLOURS."""
    frames = [Image.new("RGB", (32, 32), colour) for colour in FRAME_COLOURS]
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": 100, "loop": 0}
    if fmt == "WEBP":
        options["lossless"] = True
    return encode(frames[0], fmt, **options)


@cache
def gif_with_transparency() -> bytes:
    """32×32 GIF: red left half, transparent right half."""
    im = Image.new("P", (32, 32), 0)
    im.putpalette([*RED, *WHITE])
    ImageDraw.Draw(im).rectangle((16, 0, 31, 31), fill=1)
    return encode(im, "GIF", transparency=1)


@cache
def webp_alpha() -> bytes:
    return encode(alpha_picture(), "WEBP", quality=90)


@cache
def plain(fmt: str, w: int = 64, h: int = 32, mode: str = "RGB", **options: object) -> bytes:
    """The w×h pattern in any format Pillow writes (BMP, TIFF, GIF, ICO, PPM, …)."""
    return encode(pattern(w, h, mode), fmt, **options)


@cache
def tiff_alpha() -> bytes:
    return encode(alpha_picture(), "TIFF")


@cache
def mpo() -> bytes:
    """A two-frame MPO (what phones write for portrait and 3D shots) of the 64×32 pattern."""
    first = pattern(64, 32)
    return encode(first, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 32), BLUE)])


@cache
def large_jpeg(progressive: bool = False) -> bytes:
    """A 6000×4000 (24 MP) pattern JPEG."""
    return jpeg(6000, 4000, progressive=progressive, quality=80)


def truncated(data: bytes) -> bytes:
    """The first half of ``data``."""
    return data[: len(data) // 2]


EMPTY = b""
TEXT = b"Hello, this is a text file that somebody uploaded as photo.jpg\n" * 20
HTML = b"<!DOCTYPE html><html><body><img src='x.jpg'></body></html>\n"
EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 32\n%%EndComments\n"
    b"newpath 0 0 moveto 64 32 lineto stroke\nshowpage\n%%EOF\n"
)
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="32">'
    b'<rect width="64" height="32" fill="red"/></svg>'
)


@cache
def solid(fmt: str, w: int, h: int, colour: tuple[int, ...] = RED, mode: str = "RGB") -> bytes:
    """A w×h image of one colour (works for 1-pixel-wide strips, which ``pattern`` cannot draw)."""
    return encode(Image.new(mode, (w, h), colour), fmt)


@cache
def png_with_metadata() -> bytes:
    """The 64×32 pattern as PNG with EXIF (GPS), XMP and text comments."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add_text("Comment", COMMENT)
    info.add_text("Author", "Alice", zip=True)
    return encode(pattern(64, 32), "PNG", pnginfo=info, exif=exif(1, gps=True))


@cache
def webp_with_metadata() -> bytes:
    """The 64×32 pattern as WebP with EXIF (GPS) and XMP."""
    return encode(pattern(64, 32), "WEBP", lossless=True, exif=exif(1, gps=True), xmp=XMP)


def salient_scene(subject: str, at: float, size: tuple[int, int] = (1200, 400)) -> Image.Image:
    """A quiet blue-grey backdrop with one thing that draws the eye, centred at ``at`` (0..1) across:
    a ``flower`` (saturated colour, hard edges) or a ``face`` (a soft skin-toned oval)."""
    width, height = size
    backdrop = Image.linear_gradient("L").rotate(90).resize(size).convert("RGB")
    picture = Image.merge("RGB", [b.point(lambda v, k=k: 90 + v // 8 + k) for k, b in enumerate(backdrop.split())])
    draw = ImageDraw.Draw(picture)
    x, y, unit = int(width * at), height // 2, height / 400
    if subject == "flower":
        for r, colour in ((110 * unit, (220, 20, 60)), (60 * unit, (255, 200, 0))):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        return picture
    draw.ellipse((x - 90 * unit, y - 120 * unit, x + 90 * unit, y + 120 * unit), fill=(224, 172, 140))
    return picture.filter(ImageFilter.GaussianBlur(2))
