"""Phone and camera formats: HEIC/HEIF (the heif extra) and AVIF in, AVIF out."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pillow_heif
import pytest
from PIL import Image

from s3thumbs import formats
from s3thumbs.errors import BadImage
from tests.support import images, phone
from tests.support.rendering import assert_upright, decoded, near, pixel, render_all, render_one

formats.register()  # the tests open HEIC thumbnails and sources themselves

TRANSFORMS = (b"irot", b"imir")


def exif_orientation_stored(data: bytes) -> int:
    """The orientation the file's EXIF block itself says (pillow-heif's plugin resets it to 1)."""
    raw = pillow_heif.open_heif(io.BytesIO(data)).info["exif"]
    exif = Image.Exif()
    exif.load(raw)
    return int(exif.get(0x0112, 1))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(("box", "expected"), [((40, 40), (40, 20)), ((1024, 1024), (80, 40))])
def test_a_heic_is_turned_and_mirrored_exactly_once(orientation, box, expected):
    source = phone.oriented_heic(80, 40, orientation)
    # Like an iPhone's: the turn is in the container and again in the EXIF block.
    assert exif_orientation_stored(source) == orientation
    assert (orientation == 1) != any(box_type in source for box_type in TRANSFORMS)

    thumb, out = render_one(source, box)

    assert out.size == expected
    assert thumb.content_type == "image/jpeg"
    assert_upright(out)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_an_avif_is_turned_and_mirrored_exactly_once(orientation):
    source = phone.oriented_avif(80, 40, orientation)
    assert (orientation == 1) != any(box_type in source for box_type in TRANSFORMS)

    thumb, out = render_one(source, (40, 40))

    assert out.size == (40, 20)
    assert thumb.content_type == "image/avif"
    assert_upright(out)


def test_an_iphone_style_tiled_portrait_comes_out_upright_at_every_size():
    source = phone.heic(images.pattern(1200, 1600), orientation=6, tile=512)
    assert pillow_heif.open_heif(io.BytesIO(source)).info["tiling"]["tile_width"] == 512

    thumbs = render_all(source)

    assert [(t.width, t.height) for t in thumbs] == [(96, 128), (384, 512), (768, 1024)]
    for thumb in thumbs:
        assert_upright(decoded(thumb))


@pytest.mark.parametrize(("maker", "auto_type"), [(phone.heic, "image/png"), (phone.avif, "image/avif")])
def test_transparency_is_kept_or_flattened_onto_white(maker, auto_type):
    picture = images.pattern(80, 40, "RGBA")
    picture.paste((0, 0, 0, 0), (0, 0, 40, 20))  # the red quadrant cut out
    source = maker(picture, quality=90)

    kept, kept_image = render_one(source)
    _, flat = render_one(source, fmt="jpeg")

    assert kept.content_type == auto_type
    assert kept_image.mode == "RGBA"
    assert pixel(kept_image, (10, 5))[3] == 0
    assert pixel(kept_image, (60, 30))[3] == 255
    assert near(pixel(flat, (10, 5)), images.WHITE, 8)


def test_the_primary_image_of_a_file_of_several_is_the_one_rendered():
    source = phone.several(["red", "lime", "blue"], primary=1)
    assert pillow_heif.open_heif(io.BytesIO(source)).primary_index == 1

    _, out = render_one(source)

    assert out.size == (80, 48)
    assert near(pixel(out, (40, 24)), (0, 255, 0), 12)


REFERENCE_WHITE, GREY_18, RED = (1.0, 1.0, 1.0), (0.18, 0.18, 0.18), (1.0, 0.0, 0.0)


@pytest.mark.parametrize("transfer", [16, 18], ids=["PQ", "HLG"])
def test_ten_bit_hdr_comes_out_as_srgb(transfer):
    patches = [REFERENCE_WHITE, GREY_18] + ([RED] if transfer == 16 else [])
    source = phone.hdr(patches, transfer)
    assert Image.open(io.BytesIO(source)).info["bit_depth"] == 10

    thumb, out = render_one(source, fmt="png")
    colours = [pixel(out.convert("RGB"), (16, 8 + 16 * row)) for row in range(len(patches))]

    # Reference white near the top of sRGB (a little room for highlights), 18 % grey where sRGB has
    # it (118), a BT.709 red in BT.2020 as sRGB's red. Left as they are, the code values would read
    # (148, 148, 148), (105, 105, 105) and (136, 83, 56).
    assert all(240 <= channel <= 250 for channel in colours[0]), colours
    assert near(colours[1], (118, 118, 118), 3), colours
    if transfer == 16:
        assert colours[2][0] >= 240 and max(colours[2][1:]) <= 6, colours
    assert thumb.body.find(b"iCCP") == -1  # sRGB pixels, nothing that would reinterpret them


def test_display_p3_colours_are_converted_without_tone_mapping():
    # Display P3 with the sRGB curve (nclx 12/13), as phones describe wide-gamut SDR photos.
    source = phone.p3([RED, (0.5, 0.5, 0.5)])

    _, out = render_one(source, fmt="png")

    assert near(pixel(out.convert("RGB"), (16, 8)), (255, 0, 0), 4)
    assert near(pixel(out.convert("RGB"), (16, 24)), (188, 188, 188), 4)


@pytest.mark.parametrize(
    "make",
    [lambda: phone.heic(images.pattern(1024, 768), tile=256), lambda: phone.avif(images.pattern(1024, 768))],
    ids=["tiled heic", "avif"],
)
def test_a_truncated_file_is_refused_not_filled_in(make):
    whole = make()

    for length in (len(whole) // 2, len(whole) - 1, 40):
        with pytest.raises(BadImage, match="truncated"):
            render_all(whole[:length])


@pytest.mark.parametrize("maker", [phone.heic, phone.avif], ids=["heic", "avif"])
@pytest.mark.parametrize("side", [20_000, 1_000_000])
def test_huge_declared_dimensions_are_refused_without_being_allocated(maker, side):
    source = phone.declaring(maker(images.pattern(64, 48)), side, side)

    started = time.perf_counter()
    with pytest.raises(BadImage, match="pixels|limit|size|damaged"):
        render_all(source)
    assert time.perf_counter() - started < 2


def test_of_many_images_only_the_primary_is_decoded():
    source = phone.several(["red"] * 12 + ["blue"] + ["red"] * 11, primary=12)

    started = time.perf_counter()
    _, out = render_one(source)

    assert time.perf_counter() - started < 2
    assert near(pixel(out, (20, 20)), (0, 0, 255), 12)


def test_a_file_of_too_many_images_meets_libheifs_limits_and_says_so():
    source = phone.several(["red"] * 40, primary=0)  # libheif's 100 properties in a box: about 25 images

    started = time.perf_counter()
    with pytest.raises(BadImage, match=r"^a HEIF image libheif refuses: .*Security limit exceeded"):
        render_all(source)
    assert time.perf_counter() - started < 2


def test_without_the_heif_extra_a_heic_fails_with_a_reason_naming_it(tmp_path):
    path = tmp_path / "photo.heic"
    path.write_bytes(phone.oriented_heic(80, 40, 1))
    script = (
        "import io, sys; sys.modules['pillow_heif'] = None\n"  # as if the extra were not installed
        "from s3thumbs.imaging import RenderSpec, render\n"
        "from s3thumbs.errors import BadImage\n"
        "from s3thumbs.keys import Size\n"
        "try:\n"
        "    render(open(sys.argv[1], 'rb'), RenderSpec((Size(64, 64),)))\n"
        "except BadImage as e:\n"
        "    print(e)\n"
    )

    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip() == "a HEIC/HEIF image, and the heif extra is not installed (pip install 's3thumbs[heif]')"
    )


@pytest.mark.parametrize("fmt", ["auto", "avif"])
def test_nothing_of_a_phone_photos_exif_rides_along(fmt):
    source = phone.heic(images.pattern(80, 40), exif=images.exif(1, gps=True).tobytes())
    assert images.CAMERA.encode() in source

    for thumb in render_all(source, fmt=fmt):
        assert images.CAMERA.encode() not in thumb.body
        assert decoded(thumb).getexif() == {}


@pytest.mark.parametrize("source_format", ["JPEG", "PNG"])
def test_avif_output_fits_every_box(source_format):
    source = images.encode(images.pattern(800, 600), source_format)

    thumbs = render_all(source, fmt="avif")

    assert [(t.width, t.height, t.content_type) for t in thumbs] == [
        (128, 96, "image/avif"),
        (512, 384, "image/avif"),
        (800, 600, "image/avif"),
    ]
    for thumb in thumbs:
        assert_upright(decoded(thumb))
