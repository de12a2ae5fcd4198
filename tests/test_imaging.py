from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable

import pytest
from PIL import Image, ImageCms

from s3thumbs.errors import BadImage
from s3thumbs.imaging import RenderSpec, fit
from s3thumbs.keys import Size
from tests.support import images
from tests.support.rendering import (
    CONTENT_TYPES,
    Box,
    assert_upright,
    decoded,
    near,
    pixel,
    quadrant_colours,
    render_all,
    render_one,
)


def level(im: Image.Image, xy: tuple[int, int]) -> int:
    value = im.getpixel(xy)
    assert isinstance(value, int), f"{im.mode} image is not single-band"
    return value


def stored_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(("box", "expected"), [((128, 128), (128, 64)), ((1024, 1024), (400, 200))])
def test_jpeg_exif_orientation_is_applied(orientation, box, expected):
    source = images.jpeg(400, 200, orientation=orientation)
    assert stored_size(source) == ((200, 400) if orientation >= 5 else (400, 200))

    _, out = render_one(source, box)

    assert out.size == expected
    assert_upright(out)
    assert out.getexif() == {}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize(("box", "expected"), [((40, 40), (40, 20)), ((1024, 1024), (80, 40))])
def test_exif_orientation_is_applied_to_other_formats(fmt, orientation, box, expected):
    _, out = render_one(images.oriented(fmt, 80, 40, orientation), box)

    assert out.size == expected
    assert_upright(out)


def test_every_size_of_an_oriented_photo_is_upright():
    thumbs = render_all(images.jpeg(1600, 1200, orientation=8, progressive=True))

    assert [(t.width, t.height) for t in thumbs] == [(128, 96), (512, 384), (1024, 768)]
    for thumb in thumbs:
        assert_upright(decoded(thumb))


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_an_invalid_orientation_is_ignored(orientation):
    _, out = render_one(images.jpeg(80, 40, orientation=orientation))

    assert out.size == (80, 40)
    assert_upright(out)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize(
    "payload",
    [
        b"Exif\x00\x00" + b"\xde\xad\xbe\xef" * 10,
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03\x00\x00\x00\x01",
        b"Exif\x00\x00MM\x00*\xff\xff\xff\xff",
    ],
)
def test_a_photo_with_corrupt_exif_still_renders(payload):
    source = images.insert_jpeg_segment(images.jpeg(80, 40), 0xE1, payload)

    _, out = render_one(source)

    assert out.size == (80, 40)
    assert_upright(out)


@pytest.mark.parametrize("fmt", ["auto", "jpeg", "png", "webp"])
def test_phone_photo_comes_out_upright_and_without_personal_metadata(fmt):
    source = images.phone_jpeg()
    assert stored_size(source) == (400, 300)

    thumbs = render_all(source, fmt=fmt)

    assert [(t.width, t.height) for t in thumbs] == [(96, 128), (300, 400), (300, 400)]
    for thumb in thumbs:
        out = decoded(thumb)
        assert_upright(out)
        assert out.getexif() == {}
        assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"} & out.info.keys()
        for secret in (
            b"Exif\x00\x00",
            b"EXIF",
            b"http://ns.adobe.com/xap",
            images.COMMENT.encode(),
            images.IPTC_MARKER,
            images.CAMERA.encode(),
            b"Secretvill",
        ):
            assert secret not in thumb.body


@pytest.mark.parametrize("source", [images.png_with_metadata, images.webp_with_metadata])
@pytest.mark.parametrize("fmt", ["auto", "png", "webp", "jpeg"])
def test_metadata_of_png_and_webp_sources_is_not_copied(source, fmt):
    thumb, out = render_one(source(), fmt=fmt)

    assert out.getexif() == {}
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "Comment", "Author"} & out.info.keys()
    for secret in (b"Exif", b"EXIF", b"XMP ", b"xmpmeta", images.COMMENT.encode(), images.CAMERA.encode()):
        assert secret not in thumb.body
    if out.format == "PNG":
        assert not {b"eXIf", b"tEXt", b"zTXt", b"iTXt"} & set(images.png_chunk_types(thumb.body))


@pytest.mark.parametrize("source_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize(
    ("fmt", "box"),
    [("auto", (1024, 1024)), ("auto", (32, 32)), ("jpeg", (32, 32)), ("png", (32, 32)), ("webp", (32, 32))],
)
def test_the_icc_profile_of_an_rgb_source_is_kept(source_format, fmt, box):
    _, out = render_one(images.with_icc(source_format), box, fmt)

    assert out.info.get("icc_profile") == images.srgb_profile()


def test_no_profile_is_invented_for_a_source_without_one():
    _, out = render_one(images.jpeg(64, 32))

    assert not out.info.get("icc_profile")


@pytest.mark.parametrize(("with_profile", "expected"), images.CMYK_AS_RGB.items())
@pytest.mark.parametrize("box", [(1024, 1024), (32, 32)])
def test_cmyk_comes_out_as_rgb_with_its_colours(with_profile, expected, box):
    _, out = render_one(images.cmyk_jpeg(with_profile), box)

    assert (out.format, out.mode) == ("JPEG", "RGB")
    colours = quadrant_colours(out)
    assert all(near(colours[name], rgb, 30) for name, rgb in expected.items()), colours
    icc = out.info.get("icc_profile")
    if icc:
        assert ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip() == "RGB"


@pytest.mark.parametrize(("fmt", "expected_format", "tolerance"), [("PNG", "PNG", 1), ("TIFF", "JPEG", 8)])
def test_16_bit_grayscale_keeps_its_gradient(fmt, expected_format, tolerance):
    _, out = render_one(images.png16_gray(fmt))

    assert (out.format, out.mode, out.size) == (expected_format, "L", (images.GRADIENT_WIDTH, 16))
    row = [level(out, (x, 8)) for x in range(images.GRADIENT_WIDTH)]
    assert min(row) <= 5 and max(row) >= 250
    assert all(abs(value - x) <= tolerance for x, value in enumerate(row)), row


def test_16_bit_grayscale_gradient_survives_downscaling():
    _, out = render_one(images.png16_gray(), (64, 64))

    row = [level(out, (x, 2)) for x in range(out.width)]
    assert out.mode == "L"
    assert row[0] <= 10 and row[-1] >= 245
    assert row == sorted(row)


@pytest.mark.parametrize("alpha", [False, True])
def test_16_bit_rgb_comes_out_as_8_bit_with_its_colours(alpha):
    _, out = render_one(images.png16_rgb(alpha))

    assert (out.format, out.mode) == ("PNG", "RGBA" if alpha else "RGB")
    for x in range(0, images.GRADIENT_WIDTH, 15):
        assert near(pixel(out, (x, 2))[:3], (x, 255 - x, 128), 1)
    if alpha:
        assert pixel(out, (10, 2))[3] == 255
        assert pixel(out, (10, 12))[3] == 0


def test_palette_png_without_transparency_becomes_rgb():
    _, out = render_one(images.palette_png())

    assert (out.format, out.mode) == ("PNG", "RGB")
    assert pixel(out, (4, 4)) == images.RED
    assert pixel(out, (28, 4)) == images.BLUE


@pytest.mark.parametrize("box", [(1024, 1024), (16, 16)])
@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: images.palette_png(transparency=True), id="palette tRNS"),
        pytest.param(images.rgb_png_with_colour_key, id="rgb colour key"),
    ],
)
def test_png_transparency_becomes_an_alpha_channel(source, box):
    _, out = render_one(source(), box)

    assert (out.format, out.mode) == ("PNG", "RGBA")
    w, h = out.size
    assert pixel(out, (w // 8, h // 2)) == (*images.RED, 255)
    assert pixel(out, (7 * w // 8, h // 2))[3] == 0


@pytest.mark.parametrize("box", [(1024, 1024), (16, 16)])
def test_rgba_png_keeps_its_alpha(box):
    _, out = render_one(images.rgba_png(), box)

    assert (out.format, out.mode) == ("PNG", "RGBA")
    w, h = out.size
    assert pixel(out, (w // 8, h // 4)) == (*images.RED, 255)
    assert pixel(out, (7 * w // 8, h // 2))[3] == 0
    assert 100 <= pixel(out, (w // 8, h - 1))[3] <= 160


def test_la_png_keeps_its_alpha():
    _, out = render_one(images.la_png())

    assert out.format == "PNG"
    assert "A" in out.getbands()
    la = out.convert("LA")
    assert pixel(la, (4, 4)) == (200, 255)
    assert pixel(la, (28, 4))[1] == 0


def test_1_bit_png_keeps_black_and_white():
    _, out = render_one(images.bilevel_png())

    assert out.format == "PNG"
    gray = out.convert("L")
    assert level(gray, (4, 4)) == 0
    assert level(gray, (28, 4)) == 255


def test_webp_with_alpha_stays_webp_with_alpha():
    _, out = render_one(images.webp_alpha(), (16, 16))

    assert (out.format, out.mode, out.size) == ("WEBP", "RGBA", (16, 16))
    assert near(pixel(out, (2, 4)), (*images.RED, 255), 30)
    assert pixel(out, (14, 8))[3] <= 5


@pytest.mark.parametrize(("fmt", "expected_format"), [("GIF", "PNG"), ("WEBP", "WEBP"), ("PNG", "PNG")])
def test_an_animation_becomes_its_first_frame(fmt, expected_format):
    source = images.animated(fmt)
    assert getattr(Image.open(io.BytesIO(source)), "n_frames", 1) == len(images.FRAME_COLOURS)

    _, out = render_one(source)

    assert out.format == expected_format
    assert getattr(out, "n_frames", 1) == 1
    assert not getattr(out, "is_animated", False)
    assert near(pixel(out.convert("RGB"), (16, 16)), images.FRAME_COLOURS[0], 10)


def test_gif_transparency_becomes_png_alpha():
    _, out = render_one(images.gif_with_transparency())

    assert (out.format, out.mode) == ("PNG", "RGBA")
    assert pixel(out, (4, 4)) == (*images.RED, 255)
    assert pixel(out, (28, 4))[3] == 0


AUTO_FORMATS = [
    ("baseline jpeg", lambda: images.jpeg(64, 32), "JPEG", "RGB"),
    ("grayscale jpeg", lambda: images.jpeg(64, 32, mode="L"), "JPEG", "L"),
    ("progressive jpeg", lambda: images.jpeg(64, 32, progressive=True), "JPEG", "RGB"),
    ("cmyk jpeg", images.cmyk_jpeg, "JPEG", "RGB"),
    ("mpo", images.mpo, "JPEG", "RGB"),
    ("rgb png", lambda: images.plain("PNG"), "PNG", "RGB"),
    ("rgba png", images.rgba_png, "PNG", "RGBA"),
    ("palette png", images.palette_png, "PNG", "RGB"),
    ("lossy webp", lambda: images.plain("WEBP"), "WEBP", "RGB"),
    ("webp with alpha", images.webp_alpha, "WEBP", "RGBA"),
    ("gif", lambda: images.plain("GIF"), "PNG", "RGB"),
    ("gif with transparency", images.gif_with_transparency, "PNG", "RGBA"),
    ("animated gif", lambda: images.animated("GIF"), "PNG", "RGB"),
    ("bmp", lambda: images.plain("BMP"), "JPEG", "RGB"),
    ("palette bmp", lambda: images.plain("BMP", mode="P"), "JPEG", "RGB"),
    ("1-bit bmp", lambda: images.plain("BMP", mode="1"), "JPEG", "L"),
    ("tiff", lambda: images.plain("TIFF"), "JPEG", "RGB"),
    ("lzw tiff", lambda: images.plain("TIFF", compression="tiff_lzw"), "JPEG", "RGB"),
    ("cmyk tiff", lambda: images.plain("TIFF", mode="CMYK"), "JPEG", "RGB"),
    ("16-bit tiff", lambda: images.png16_gray("TIFF"), "JPEG", "L"),
    ("tiff with alpha", images.tiff_alpha, "PNG", "RGBA"),
]


@pytest.mark.parametrize(
    ("source", "expected_format", "expected_mode"), [pytest.param(*row[1:], id=row[0]) for row in AUTO_FORMATS]
)
def test_auto_format_follows_the_source(source, expected_format, expected_mode):
    thumbs = render_all(source(), ((1024, 1024), (16, 16)))

    for thumb in thumbs:
        out = decoded(thumb)
        assert (out.format, out.mode) == (expected_format, expected_mode)
        assert thumb.content_type == CONTENT_TYPES[expected_format]


def test_mpo_renders_its_first_frame_only():
    _, out = render_one(images.mpo())

    assert getattr(out, "n_frames", 1) == 1
    assert_upright(out)


ALPHA_SOURCES = [
    ("rgba png", images.rgba_png, images.RED),
    ("la png", images.la_png, (200, 200, 200)),
    ("palette png with transparency", lambda: images.palette_png(transparency=True), images.RED),
    ("webp with alpha", images.webp_alpha, images.RED),
    ("gif with transparency", images.gif_with_transparency, images.RED),
    ("tiff with alpha", images.tiff_alpha, images.RED),
    ("16-bit rgba png", lambda: images.png16_rgb(alpha=True), None),
]


@pytest.mark.parametrize(("source", "opaque"), [pytest.param(*row[1:], id=row[0]) for row in ALPHA_SOURCES])
def test_forced_jpeg_flattens_alpha_onto_white(source, opaque):
    thumb, out = render_one(source(), fmt="jpeg")

    assert (out.format, thumb.content_type) == ("JPEG", "image/jpeg")
    assert out.mode in ("RGB", "L")
    rgb = out.convert("RGB")
    w, h = rgb.size
    transparent = (7 * w // 8, h // 2) if opaque else (w // 2, 7 * h // 8)
    assert near(pixel(rgb, transparent), images.WHITE, 8)
    if opaque:
        assert near(pixel(rgb, (w // 8, h // 4)), opaque, 30)


@pytest.mark.parametrize("fmt", ["png", "webp"])
@pytest.mark.parametrize(("source", "opaque"), [pytest.param(*row[1:], id=row[0]) for row in ALPHA_SOURCES])
def test_forced_png_and_webp_keep_alpha(source, opaque, fmt):
    thumb, out = render_one(source(), fmt=fmt)

    assert out.format == fmt.upper()
    assert thumb.content_type == f"image/{fmt}"
    rgba = out.convert("RGBA")
    w, h = rgba.size
    transparent = (7 * w // 8, h // 2) if opaque else (w // 2, 7 * h // 8)
    opaque_at = (w // 8, h // 4)
    assert "A" in out.getbands()
    assert pixel(rgba, transparent)[3] <= 5
    assert pixel(rgba, opaque_at)[3] >= 250
    if opaque:
        assert near(pixel(rgba, opaque_at)[:3], opaque, 30)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: images.jpeg(64, 32), id="jpeg"),
        pytest.param(lambda: images.plain("BMP"), id="bmp"),
        pytest.param(lambda: images.plain("GIF"), id="gif"),
        pytest.param(lambda: images.plain("WEBP"), id="webp"),
    ],
)
def test_a_forced_format_applies_to_every_source(source, fmt):
    thumbs = render_all(source(), fmt=fmt)

    for thumb in thumbs:
        out = decoded(thumb)
        assert out.format == fmt.upper()
        assert_upright(out)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(lambda: images.jpeg(20, 10), id="jpeg"),
        pytest.param(lambda: images.plain("PNG", 20, 10), id="png"),
        pytest.param(lambda: images.plain("WEBP", 20, 10), id="webp"),
        pytest.param(lambda: images.plain("GIF", 20, 10), id="gif"),
        pytest.param(lambda: images.jpeg(20, 10, orientation=6), id="rotated jpeg"),
    ],
)
def test_a_small_source_is_never_upscaled(source):
    sizes = ((128, 128), (512, 512), (1024, 1024), (20, 10), (20, 20), (4000, 10))

    thumbs = render_all(source(), sizes)

    assert [t.box[:2] for t in thumbs] == list(sizes)
    assert all(decoded(t).size == (20, 10) for t in thumbs)


@pytest.mark.parametrize(
    ("width", "height", "box", "expected"),
    [
        (4000, 3000, (128, 128), (128, 96)),
        (3000, 4000, (128, 128), (96, 128)),
        (6000, 4000, (1024, 1024), (1024, 683)),
        (6000, 4000, (512, 512), (512, 341)),
        (1000, 667, (100, 100), (100, 67)),
        (1001, 100, (100, 100), (100, 10)),
        (300, 105, (100, 100), (100, 35)),
        (10000, 1, (1024, 1024), (1024, 1)),
        (10000, 1, (128, 128), (128, 1)),
        (1, 10000, (128, 128), (1, 128)),
        (100000, 3, (100, 100), (100, 1)),
        (20, 10, (1024, 1024), (20, 10)),
        (20, 10, (20, 10), (20, 10)),
        (20, 10, (10, 10), (10, 5)),
        (1, 1, (1, 1), (1, 1)),
        (4000, 3000, (1024, 100), (133, 100)),
        (4000, 3000, (100, 1024), (100, 75)),
        (4000, 3000, (200, 150), (200, 150)),
    ],
)
def test_fit_keeps_the_aspect_rounds_and_never_upscales(width, height, box, expected):
    assert fit(width, height, Size(*box)) == expected


@pytest.mark.parametrize(
    ("width", "height", "box", "expected"),
    [
        (10000, 1, (1024, 1024), (1024, 1)),
        (10000, 1, (128, 128), (128, 1)),
        (1, 10000, (128, 128), (1, 128)),
        (1, 10000, (1024, 1024), (1, 1024)),
    ],
)
def test_extreme_strips_keep_at_least_one_pixel(width, height, box, expected):
    _, out = render_one(images.solid("PNG", width, height), box)

    assert out.size == expected
    assert pixel(out, (0, 0)) == images.RED


def test_non_square_and_overlapping_boxes_each_get_their_own_fit_in_order():
    sizes = ((200, 200), (1024, 100), (128, 128), (100, 1024), (200, 150), (16, 16))

    thumbs = render_all(images.jpeg(800, 600), sizes)

    assert [t.box for t in thumbs] == [Size(*s) for s in sizes]
    assert [(t.width, t.height) for t in thumbs] == [(200, 150), (133, 100), (128, 96), (100, 75), (200, 150), (16, 12)]
    for thumb in thumbs:
        assert_upright(decoded(thumb))


@pytest.mark.parametrize(
    "sizes",
    [
        ((128, 128), (512, 512), (1024, 1024)),
        ((1024, 1024), (128, 128), (512, 512)),
        ((64, 64), (64, 64)),
    ],
)
def test_output_order_follows_the_spec(sizes):
    thumbs = render_all(images.jpeg(1200, 900), sizes)

    assert [t.box for t in thumbs] == [Size(*s) for s in sizes]
    assert [(t.width, t.height) for t in thumbs] == [fit(1200, 900, Size(*s)) for s in sizes]


@pytest.mark.parametrize("progressive", [False, True])
def test_a_24_megapixel_jpeg_renders_every_size(progressive):
    thumbs = render_all(images.large_jpeg(progressive))

    assert [(t.width, t.height) for t in thumbs] == [(128, 85), (512, 341), (1024, 683)]
    for thumb in thumbs:
        assert thumb.content_type == "image/jpeg"
        out = decoded(thumb)
        assert (out.format, out.mode) == ("JPEG", "RGB")
        assert_upright(out)


def test_quality_changes_the_encoded_jpeg():
    low = render_all(images.jpeg(800, 600), ((512, 512),), quality=20)[0]
    high = render_all(images.jpeg(800, 600), ((512, 512),), quality=95)[0]

    assert len(low.body) < len(high.body)


BAD_INPUTS = [
    ("truncated jpeg", lambda: images.truncated(images.jpeg(400, 300)), "truncated"),
    ("truncated progressive jpeg", lambda: images.truncated(images.jpeg(400, 300, progressive=True)), "truncated"),
    ("truncated png", lambda: images.truncated(images.plain("PNG", 400, 300)), "truncated"),
    ("empty", lambda: images.EMPTY, "empty"),
    ("text", lambda: images.TEXT, "not an image"),
    ("html", lambda: images.HTML, "not an image"),
    ("png signature then garbage", lambda: b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, None),
    ("jpeg markers then garbage", lambda: b"\xff\xd8\xff\xe0" + b"\x13\x37" * 200, None),
    ("png without pixel data", lambda: images.header_only_png(64, 64), None),
    ("gif header only", lambda: b"GIF89a\x40\x00\x20\x00\x00\x00\x00", None),
]


@pytest.mark.parametrize(("source", "reason"), [pytest.param(*row[1:], id=row[0]) for row in BAD_INPUTS])
def test_bad_input_raises_bad_image_with_a_reason(source, reason):
    with pytest.raises(BadImage) as excinfo:
        render_all(source())

    message = str(excinfo.value)
    assert len(message) > 5
    if reason:
        assert reason in message.lower()


UNSUPPORTED = [
    ("ico", lambda: images.plain("ICO", 32, 32)),
    ("ppm", lambda: images.plain("PPM")),
    ("eps", lambda: images.EPS),
    ("svg", lambda: images.SVG),
    ("jpeg 2000", lambda: images.plain("JPEG2000")),
    ("tga", lambda: images.plain("TGA")),
    ("pcx", lambda: images.plain("PCX")),
    ("pdf", lambda: images.plain("PDF")),
]


@pytest.mark.parametrize("source", [pytest.param(row[1], id=row[0]) for row in UNSUPPORTED])
def test_unsupported_formats_are_refused(source):
    with pytest.raises(BadImage, match="not an image in a supported format"):
        render_all(source())


def names_pixel_count(message: str, count: int) -> bool:
    return re.search(rf"\b({count}|{count:,})\b", message) is not None


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [
        (5000, 5000, 1_000_000),
        (12000, 10000, 100_000_000),
        (20000, 20000, 100_000_000),
        (65535, 65535, 100_000_000),
    ],
)
def test_an_image_over_the_pixel_limit_is_refused_from_its_header(width, height, max_pixels):
    started = time.perf_counter()
    with pytest.raises(BadImage) as excinfo:
        render_all(images.header_only_png(width, height), max_pixels=max_pixels)

    assert time.perf_counter() - started < 1
    assert names_pixel_count(str(excinfo.value), width * height), str(excinfo.value)


@pytest.mark.parametrize(("width", "height"), [(20000, 20000), (12000, 10000)])
def test_a_decompression_bomb_is_refused_before_decoding(width, height):
    source = images.bomb_png(width, height)
    assert len(source) < 100_000

    started = time.perf_counter()
    with pytest.raises(BadImage) as excinfo:
        render_all(source)

    assert time.perf_counter() - started < 1
    assert names_pixel_count(str(excinfo.value), width * height), str(excinfo.value)


@pytest.mark.parametrize(("width", "height", "accepted"), [(100, 100, True), (100, 101, False)])
def test_the_pixel_limit_is_inclusive(width, height, accepted):
    source = images.solid("PNG", width, height)
    if accepted:
        assert render_one(source, max_pixels=10_000)[1].size == (width, height)
    else:
        with pytest.raises(BadImage, match="10,100"):
            render_one(source, max_pixels=10_000)


def make_spec(
    sizes: Iterable[Box] = ((128, 128), (512, 512)), fmt: str = "auto", quality: int = 85, max_pixels: int = 100_000_000
) -> RenderSpec:
    return RenderSpec(tuple(Size(*s) for s in sizes), fmt, quality, max_pixels)


def test_fingerprint_is_stable_for_the_same_settings():
    assert make_spec().fingerprint == make_spec().fingerprint
    assert make_spec().fingerprint == make_spec(max_pixels=5).fingerprint
    assert re.fullmatch(r"[0-9a-zA-Z_-]{6,32}", make_spec().fingerprint)


def test_fingerprint_is_the_same_in_every_worker_process():
    code = (
        "from s3thumbs.imaging import RenderSpec; from s3thumbs.keys import Size; "
        "print(RenderSpec((Size(128, 128), Size(512, 512)), 'auto', 85).fingerprint)"
    )
    printed = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }

    assert printed == {make_spec().fingerprint}


@pytest.mark.parametrize(
    "changed",
    [
        make_spec(sizes=((128, 128),)),
        make_spec(sizes=((128, 128), (512, 512), (1024, 1024))),
        make_spec(sizes=((128, 128), (512, 511))),
        make_spec(fmt="jpeg"),
        make_spec(fmt="webp"),
        make_spec(quality=84),
    ],
)
def test_fingerprint_changes_with_sizes_format_and_quality(changed):
    assert changed.fingerprint != make_spec().fingerprint
