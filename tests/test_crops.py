"""Cover boxes: filled exactly, never upscaled, cropped at the centre or where the picture draws the eye."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from s3thumbs.config import Settings
from s3thumbs.errors import ConfigError
from s3thumbs.imaging import RenderSpec, render
from s3thumbs.keys import Size, parse_sizes
from tests.support import images
from tests.support.rendering import assert_upright, near, pixel


def covered(data: bytes, sizes: str, crop: str = "centre") -> list[Image.Image]:
    rendering = render(io.BytesIO(data), RenderSpec(parse_sizes(sizes), format="png", crop=crop))
    return [Image.open(io.BytesIO(t.body)).convert("RGB") for t in rendering.thumbnails]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (lambda: images.jpeg(800, 400), [(128, 128), (300, 100), (400, 400)]),
        (lambda: images.jpeg(400, 800, orientation=6), [(128, 128), (300, 100), (400, 400)]),
        # Smaller than a box: the largest region of the box's shape it holds, at its own scale.
        (lambda: images.jpeg(90, 60), [(60, 60), (90, 30), (60, 60)]),
    ],
    ids=["landscape", "portrait turned by exif 6", "small"],
)
def test_a_cover_box_is_filled_exactly_never_upscaled(source, expected):
    assert [im.size for im in covered(source(), "128x128:cover,300x100:cover,400x400:cover")] == expected


def test_cover_and_inside_boxes_live_together_and_stay_upright():
    inside, cover = covered(images.jpeg(800, 400, orientation=8), "256x256,64x64:cover")

    assert (inside.size, cover.size) == ((256, 128), (64, 64))
    assert_upright(inside)


def bands(order: tuple[str, str, str]) -> bytes:
    """Three vertical bands, left to right."""
    picture = Image.new("RGB", (900, 300))
    for i, colour in enumerate(order):
        picture.paste(colour, (300 * i, 0, 300 * (i + 1), 300))
    return images.encode(picture, "PNG")


def test_the_centre_crop_keeps_the_middle():
    [square] = covered(bands(("red", "lime", "blue")), "90x90:cover")

    assert near(pixel(square, (45, 45)), (0, 255, 0), 10)
    assert near(pixel(square, (2, 45)), (0, 255, 0), 10) and near(pixel(square, (87, 45)), (0, 255, 0), 10)


@pytest.mark.parametrize("subject", ["flower", "face"])
@pytest.mark.parametrize("at", [0.15, 0.82])
def test_attention_keeps_what_draws_the_eye_where_the_centre_crop_loses_it(subject, at):
    data = images.encode(images.salient_scene(subject, at), "JPEG", quality=92)
    [by_attention] = covered(data, "200x200:cover", crop="attention")
    [at_centre] = covered(data, "200x200:cover")

    def shows_subject(square: Image.Image) -> bool:
        r, g, b = pixel(square, (100, 100))
        return r > 180 and r - b > 60

    assert shows_subject(by_attention)
    assert not shows_subject(at_centre)


def test_the_sizes_grammar_takes_cover_and_refuses_one_folder_with_two_fits():
    assert parse_sizes("128x128:cover, 512x512 , 64x32:inside") == (
        Size(128, 128, "cover"), Size(512, 512), Size(64, 32),
    )  # fmt: skip
    with pytest.raises(ValueError, match="both inside and cover"):
        parse_sizes("128x128:cover,128x128")
    with pytest.raises(ValueError, match="WxH:cover"):
        parse_sizes("128x128:fill")
    with pytest.raises(ConfigError, match="S3THUMBS_CROP"):
        Settings.from_env({"S3THUMBS_CROP": "faces"})


def test_cover_boxes_and_the_crop_mode_change_the_settings_hash_inside_boxes_do_not():
    inside = RenderSpec((Size(128, 128),))

    assert RenderSpec((Size(128, 128),), crop="attention").fingerprint == inside.fingerprint
    assert RenderSpec((Size(128, 128, "cover"),)).fingerprint != inside.fingerprint
    assert (
        RenderSpec((Size(128, 128, "cover"),), crop="attention").fingerprint
        != RenderSpec((Size(128, 128, "cover"),)).fingerprint
    )
