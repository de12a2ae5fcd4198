"""Images made to hurt a worker: refused from their header, or rendered within bounds.

The memory each needs is checked against its estimate in ``integration/test_decode_memory.py``;
here, what a user sees: which images are refused, why, and what comes out of the others.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from s3thumbs import jpeg
from s3thumbs.budget import MIB
from s3thumbs.colours import MAX_EMBEDDED_PROFILE
from s3thumbs.errors import BadImage
from s3thumbs.imaging import RenderSpec, decode_memory
from s3thumbs.keys import Size
from tests.support import hostile, images
from tests.support.rendering import render_all, render_one


def test_a_jpeg_with_an_abnormal_number_of_scans_is_refused_before_decoding():
    bomb = hostile.scan_bomb(jpeg.MAX_SCANS + 1)

    with pytest.raises(BadImage, match=f"more than {jpeg.MAX_SCANS} scans"):
        render_all(bomb)


def test_a_jpeg_at_the_scan_limit_renders():
    _, out = render_one(hostile.scan_bomb(jpeg.MAX_SCANS, (400, 300)))

    assert out.size == (400, 300)


def test_scans_of_an_embedded_thumbnail_are_not_the_images_own():
    # An APP1 segment may carry a whole JPEG (an EXIF thumbnail): its markers are data, not scans.
    inner = hostile.scan_bomb(3 * jpeg.MAX_SCANS, (40, 30))
    data = images.insert_jpeg_segment(images.jpeg(400, 300, progressive=True), 0xE1, b"Exif\x00\x00" + inner)

    assert jpeg.count_scans(io.BytesIO(data)) == 10
    _, out = render_one(data)
    assert out.size == (400, 300)


def test_counting_scans_leaves_the_file_where_it_was():
    source = io.BytesIO(images.jpeg(64, 48, progressive=True))
    source.seek(123)

    assert jpeg.count_scans(source) == 10
    assert source.tell() == 123


@pytest.mark.parametrize(
    ("data", "budget_mib"),
    [
        (hostile.tall_png(2_000_000), 16),  # 1×2,000,000: a row pointer per pixel, 24 MB to decode
        (hostile.deep_tiff("I", (2000, 2000)), 16),  # 32-bit grey: 16 MB to decode, then resize buffers
        (hostile.deep_tiff("F", (2000, 2000)), 16),
        (images.jpeg(2000, 2000, progressive=True), 16),  # 16 MB decoded, and every coefficient kept: 12 MB
    ],
    ids=["tall png", "32-bit tiff", "float tiff", "progressive jpeg"],
)
def test_an_image_over_the_decode_budget_is_refused_naming_the_variable(data, budget_mib):
    with pytest.raises(BadImage, match=f"over S3THUMBS_MAX_DECODE_MIB={budget_mib}"):
        render_all(data, max_decode_bytes=budget_mib * MIB)
    # The same image within a budget that holds it renders.
    assert render_all(data, max_decode_bytes=4 * budget_mib * MIB)


def test_the_tall_png_of_the_review_is_refused_by_the_default_budget():
    with pytest.raises(BadImage, match=r"needs about [\d,]+ MiB .* over S3THUMBS_MAX_DECODE_MIB=768"):
        render_all(hostile.tall_png())


@pytest.mark.parametrize("mode", ["I", "F", "I;16"])
def test_a_deep_grey_image_is_resized_then_brought_to_8_bits(mode):
    ramp = Image.linear_gradient("L").resize((256, 1024))  # black at the top, white at the bottom
    deep = ramp.convert("F").point(lambda v: v / 255) if mode == "F" else ramp.convert("I").point(lambda v: v * 257)
    data = images.encode(deep.convert(mode), "TIFF")

    _, out = render_one(data, (256, 256))

    assert (out.mode, out.size) == ("L", (64, 256))
    expected = ramp.resize((64, 256))
    column = [(out.getpixel((32, y)), expected.getpixel((32, y))) for y in range(256)]
    assert all(abs(value - wanted) <= 3 for value, wanted in column), column


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_profile_over_64_kib_is_applied_to_the_pixels_and_not_embedded(fmt):
    big = hostile.swapped_profile(padding=MAX_EMBEDDED_PROFILE)
    assert len(big) > MAX_EMBEDDED_PROFILE

    for thumb in render_all(hostile.with_profile(big, fmt)):
        with Image.open(io.BytesIO(thumb.body)) as out:
            assert "icc_profile" not in out.info
        # Red in a space whose red and blue primaries are swapped is blue in sRGB.
        red, green, blue = hostile.pixel_of(thumb.body)
        assert blue > 200 and red < 60 and green < 60, (red, green, blue)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_profile_up_to_64_kib_is_embedded_and_the_pixels_left_alone(fmt):
    small = hostile.swapped_profile(padding=1000)

    for thumb in render_all(hostile.with_profile(small, fmt)):
        with Image.open(io.BytesIO(thumb.body)) as out:
            assert out.info["icc_profile"] == small
        red, green, blue = hostile.pixel_of(thumb.body)
        assert red > 200 and blue < 60, (red, green, blue)


def test_a_big_profile_that_does_not_fit_the_image_is_dropped():
    cmyk_profile = images.cmyk_profile() + bytes(MAX_EMBEDDED_PROFILE)  # padded past the cap, and not RGB

    for thumb in render_all(hostile.with_profile(cmyk_profile, "PNG", colour=(10, 200, 30))):
        with Image.open(io.BytesIO(thumb.body)) as out:
            assert "icc_profile" not in out.info
        assert hostile.pixel_of(thumb.body) == (10, 200, 30)


def test_the_default_budget_lets_the_heaviest_rgb_jpeg_max_pixels_admits_through():
    # A 100 MP progressive JPEG with full chroma keeps 2 bytes per sample of coefficients: the most an
    # RGB JPEG within S3THUMBS_MAX_PIXELS needs. Its header is enough for the estimate.
    small = images.encode(Image.new("RGB", (64, 64), "orange"), "JPEG", progressive=True, subsampling=0)
    [(_, start, _)] = [segment for segment in hostile.jpeg_segments(small) if segment[0] == 0xC2]
    data = small[: start + 5] + (10000).to_bytes(2, "big") * 2 + small[start + 9 :]
    spec = RenderSpec((Size(128, 128), Size(512, 512), Size(1024, 1024)))

    needed = decode_memory(io.BytesIO(data), spec)

    assert 570 * MIB < needed <= RenderSpec.max_decode_bytes


def _markers(*segments: tuple[int, bytes]) -> bytes:
    """A JPEG's marker structure alone: SOI, then each (marker, payload) with its length."""
    return b"\xff\xd8" + b"".join(
        bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload for marker, payload in segments
    )


@pytest.mark.parametrize(("components_in_first_scan", "expected"), [(3, False), (1, True)])
def test_a_sequential_jpeg_whose_first_scan_leaves_components_has_multiple_scans(components_in_first_scan, expected):
    frame = bytes([8, 0, 16, 0, 16, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1])  # 16×16, three components
    scan = bytes([components_in_first_scan]) + bytes(2 * components_in_first_scan) + bytes([0, 63, 0])
    data = _markers((0xE1, b"Exif\x00\x00" + bytes(100)), (0xC0, frame), (0xDA, scan))

    assert jpeg.has_multiple_scans(io.BytesIO(data), 3) is expected


def test_the_quick_scan_bound_never_misses_a_marker_across_chunks(monkeypatch):
    monkeypatch.setattr(jpeg, "CHUNK", 7)  # markers land on every chunk boundary
    bomb = hostile.scan_bomb(jpeg.MAX_SCANS + 1, (64, 48))

    assert jpeg.too_many_scans(io.BytesIO(bomb))
    assert not jpeg.too_many_scans(io.BytesIO(hostile.scan_bomb(jpeg.MAX_SCANS, (64, 48))))
