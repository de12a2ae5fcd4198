"""The shortcuts ``render`` takes, each against an exact reference.

The reference decodes in full, turns by EXIF, and resizes with Lanczos from the full image: what
the shortcuts (DCT shrink on load, orientation after the shrink, premultiplied alpha, cascade)
must still look like.
"""

from __future__ import annotations

import io
import math
from functools import cache

import pytest
from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageOps, ImageStat

from s3thumbs.imaging import fit
from s3thumbs.keys import Size
from tests.support import images
from tests.support.rendering import assert_upright, near, quadrant_colours, render_all, render_one

# Not a multiple of 8 (nor of 4): every DCT scale ends in part of a pixel.
WIDTH, HEIGHT = 2054, 1542
# Box -> the DCT scale the decoder uses for a WIDTH×HEIGHT source (each leaving the filter its margin).
DRAFT_SCALES = {(900, 900): "1/2", (768, 768): "3/8", (390, 390): "1/4", (256, 256): "1/8"}


def waves(width: int, height: int, period: float) -> Image.Image:
    """Red varies across, green down (sine waves of ``period`` pixels), blue holds the quadrants."""
    across = bytes(int(128 + 100 * math.sin(2 * math.pi * x / period)) for x in range(width))
    down = bytes(int(128 + 100 * math.sin(2 * math.pi * y / period)) for y in range(height))
    red = Image.frombytes("L", (width, 1), across).resize((width, height), Image.Resampling.NEAREST)
    green = Image.frombytes("L", (1, height), down).resize((width, height), Image.Resampling.NEAREST)
    return Image.merge("RGB", (red, green, images.pattern(width, height).convert("L")))


@cache
def wave_jpeg(box: tuple[int, int], orientation: int, progressive: bool = False) -> bytes:
    """Waves about 8 output pixels long at this box: a shift of a quarter pixel shows."""
    picture = waves(WIDTH, HEIGHT, period=8 * WIDTH / box[0])
    return images.encode(
        images.stored(picture, orientation), "JPEG", quality=95, progressive=progressive, exif=images.exif(orientation)
    )


def reference(data: bytes, box: tuple[int, int]) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        upright = ImageOps.exif_transpose(im).convert("RGB")
    return upright.resize(fit(*upright.size, Size(*box)), Image.Resampling.LANCZOS)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """The largest per-channel mean absolute difference, in levels of 255."""
    assert a.size == b.size
    return max(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("box", list(DRAFT_SCALES), ids=list(DRAFT_SCALES.values()))
def test_a_jpeg_shrunk_while_decoding_matches_the_exact_reference(box, orientation):
    data = wave_jpeg(box, orientation)

    _, out = render_one(data, box, "png")

    expected = reference(data, box)
    assert out.size == expected.size
    # Bicubic against Lanczos on these waves differs by ~3 levels; a picture shifted by the
    # partial last pixel of the shrunk image differs by ~12.
    assert mean_difference(out, expected) < 6


@pytest.mark.parametrize(
    ("fmt", "size"),
    [
        ("WEBP", (2048, 1536)),  # a box reduce could do a whole 2x, or 3x, alone
        ("WEBP", (3072, 2304)),
        ("PNG", (2048, 1536)),
        ("PNG", (3072, 2304)),
        ("JPEG", (2054, 1542)),  # 1/2 on load would leave 1027 px for the 1024 box
        ("JPEG", (2100, 1575)),
        ("JPEG", (4320, 3240)),  # 1/4 would leave 1080 px
        ("JPEG", (4600, 3450)),  # and here 1150
    ],
)
def test_a_shortcut_never_does_the_whole_factor_alone(fmt, size):
    # A box reduce or a DCT shrink that leaves (nearly) nothing to the filter softens and aliases:
    # these measured 38-45 dB against the exact reference (0.5-0.9 dB lost after encoding), 50+ now.
    data = images.encode(waves(*size, period=8 * size[0] / 1024), fmt, quality=95)

    _, out = render_one(data, (1024, 1024), "png")

    difference = ImageStat.Stat(ImageChops.difference(out.convert("RGB"), reference(data, (1024, 1024))))
    assert 10 * math.log10(255**2 / (sum(difference.sum2) / (3 * out.width * out.height))) > 48


@pytest.mark.parametrize("orientation", [1, 6, 7])
def test_a_progressive_jpeg_shrunk_while_decoding_matches_the_exact_reference(orientation):
    box = (256, 256)
    data = wave_jpeg(box, orientation, progressive=True)

    _, out = render_one(data, box, "png")

    assert mean_difference(out, reference(data, box)) < 6
    assert_upright(out.convert("RGB").getchannel("B").convert("RGB"), tolerance=255)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_size_of_a_large_oriented_jpeg_is_upright(orientation):
    data = images.jpeg(2048, 1536, orientation=orientation)

    thumbs = render_all(data, ((1024, 1024), (512, 512), (100, 100), (7, 7)))

    for thumb, size in zip(thumbs, [(1024, 768), (512, 384), (100, 75), (7, 5)], strict=True):
        out = Image.open(io.BytesIO(thumb.body))
        assert out.size == size
        if size[0] >= 100:
            assert_upright(out)


@cache
def large_cmyk_jpeg(with_profile: bool) -> bytes:
    """A 1030×774 CMYK JPEG of four single-ink quadrants (as in ``images.cmyk_jpeg``)."""
    im = Image.new("CMYK", (1030, 774))
    draw = ImageDraw.Draw(im)
    for (x, y), ink in zip(((0, 0), (515, 0), (0, 387), (515, 387)), images.CMYK_QUADRANTS.values(), strict=True):
        draw.rectangle((x, y, x + 514, y + 386), fill=ink)
    options: dict[str, object] = {"quality": 95}
    if with_profile:
        options["icc_profile"] = images.cmyk_profile()
    return images.encode(im, "JPEG", **options)


@pytest.mark.parametrize(("with_profile", "expected"), images.CMYK_AS_RGB.items())
@pytest.mark.parametrize("box", [(512, 512), (128, 128)], ids=["1/2", "1/8"])
def test_a_cmyk_jpeg_shrunk_while_decoding_keeps_its_colours(with_profile, expected, box):
    thumb, out = render_one(large_cmyk_jpeg(with_profile), box)

    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", fit(1030, 774, Size(*box)))
    colours = quadrant_colours(out)
    assert all(near(colours[name], rgb, 30) for name, rgb in expected.items()), colours


def test_a_large_jpeg_keeps_its_icc_profile_when_shrunk_while_decoding():
    data = images.jpeg(2054, 1542, icc=images.srgb_profile())

    for thumb in render_all(data, ((1024, 1024), (128, 128))):
        out = Image.open(io.BytesIO(thumb.body))
        assert out.info.get("icc_profile") == images.srgb_profile()
        assert ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"])).profile.xcolor_space.strip() == "RGB"


def hidden_colour_cutout(width: int, height: int) -> Image.Image:
    """Opaque blue on the right; on the left, fully transparent pixels that hide pure red."""
    im = Image.new("RGBA", (width, height), (255, 0, 0, 0))
    ImageDraw.Draw(im).rectangle((width // 2, 0, width - 1, height - 1), fill=(0, 0, 255, 255))
    return im


@pytest.mark.parametrize("fmt", ["png", "webp"])
@pytest.mark.parametrize("box", [(300, 300), (101, 101)])
def test_colour_hidden_under_transparency_never_bleeds_into_an_edge(fmt, box):
    source = images.encode(hidden_colour_cutout(1200, 900), "PNG")

    thumbs = render_all(source, (box, (40, 40)), fmt)

    for thumb in thumbs:
        out = Image.open(io.BytesIO(thumb.body)).convert("RGBA")
        pixels = list(out.get_flattened_data())
        assert any(a == 255 for *_, a in pixels), "the opaque half is gone"
        assert max(r for r, _, _, a in pixels if a > 8) <= 12, "red from under the transparency leaked into the edge"
        if fmt == "png":  # lossy WebP subsamples chroma, which greys an edge whatever was hidden
            assert min(b for _, _, b, a in pixels if a > 128) >= 230


@pytest.mark.parametrize("source_format", ["PNG", "WEBP"])
def test_an_alpha_image_matches_the_exact_reference(source_format):
    picture = waves(1203, 901, period=8 * 1203 / 300)
    picture.putalpha(images.pattern(1203, 901).convert("L").point(lambda v: 64 + v // 2))
    data = (
        images.encode(picture, source_format, lossless=True)
        if source_format == "WEBP"
        else images.encode(picture, source_format)
    )

    _, out = render_one(data, (300, 300), "png")

    expected = picture.resize(out.size, Image.Resampling.LANCZOS)
    assert out.mode == "RGBA"
    assert mean_difference(out.convert("RGBa"), expected.convert("RGBa")) < 6
    assert max(ImageStat.Stat(ImageChops.difference(out.getchannel("A"), expected.getchannel("A"))).mean) < 2


def tiny_sources() -> list[tuple[str, bytes]]:
    translucent = Image.new("RGBA", (3, 2))
    translucent.putdata(
        [(255, 0, 0, 1), (0, 255, 0, 77), (0, 0, 255, 128), (10, 20, 30, 200), (200, 100, 50, 255), (1, 2, 3, 0)]
    )
    grey_alpha = translucent.convert("LA")
    return [
        ("jpeg 1x1", images.solid("JPEG", 1, 1)),
        ("jpeg 3x1", images.solid("JPEG", 3, 1)),
        (
            "jpeg 2x1 stored, orientation 6",
            images.encode(Image.new("RGB", (2, 1), images.RED), "JPEG", exif=images.exif(6)),
        ),
        ("png rgba 3x2", images.encode(translucent, "PNG")),
        ("png la 3x2", images.encode(grey_alpha, "PNG")),
        ("webp rgba 3x2", images.encode(translucent, "WEBP", lossless=True)),
        ("gif 2x2", images.solid("GIF", 2, 2)),
    ]


@pytest.mark.parametrize(("name", "data"), tiny_sources(), ids=[name for name, _ in tiny_sources()])
def test_a_tiny_image_comes_out_at_its_own_size_for_every_box(name, data):
    with Image.open(io.BytesIO(data)) as im:
        upright = ImageOps.exif_transpose(im)
        size = upright.size

    thumbs = render_all(data, ((1024, 1024), (128, 128), (1, 1)))

    outs = [Image.open(io.BytesIO(t.body)) for t in thumbs]
    assert [o.size for o in outs[:2]] == [size, size]
    assert outs[2].size == (1, 1)


@pytest.mark.parametrize("source_format", ["PNG", "WEBP"])
def test_an_alpha_image_that_needs_no_resize_keeps_its_exact_pixels(source_format):
    # Premultiplying alpha and back would round the colour of nearly transparent pixels.
    picture = Image.new("RGBA", (40, 30))
    picture.putdata([(x * 6, y * 8, (x * y) % 256, (x + y * 40) % 256) for y in range(30) for x in range(40)])
    data = (
        images.encode(picture, source_format, lossless=True)
        if source_format == "WEBP"
        else images.encode(picture, source_format)
    )

    _, out = render_one(data, (1024, 1024), "png")

    with Image.open(io.BytesIO(data)) as original:
        assert list(out.convert("RGBA").get_flattened_data()) == list(original.convert("RGBA").get_flattened_data())
