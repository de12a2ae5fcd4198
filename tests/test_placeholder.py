"""ThumbHash placeholders: s3thumbs' encoder against the reference encoder and decoder (JavaScript)."""

from __future__ import annotations

import base64
import io
import random

import pytest
from PIL import Image, ImageChops, ImageDraw

from s3thumbs.imaging import RenderSpec, render
from s3thumbs.keys import Size
from s3thumbs.placeholder import data_url, thumbhash_of
from tests.support import images, thumbhash_reference


def noisy(width: int, height: int, alpha: bool, seed: int) -> Image.Image:
    """A picture with no symmetry: every DCT coefficient clearly away from a rounding boundary."""
    rng = random.Random(seed)
    red, blue = (Image.frombytes("L", (width, height), rng.randbytes(width * height)) for _ in range(2))
    green = Image.linear_gradient("L").resize((width, height))
    picture = Image.merge("RGBA", (red, green, blue, Image.new("L", (width, height), 255)))
    if alpha:
        picture.putalpha(Image.radial_gradient("L").resize((width, height)))
    return picture


def test_the_reference_encoder_writes_the_same_bytes():
    pictures = [
        noisy(100, 75, alpha=False, seed=1),
        noisy(60, 100, alpha=False, seed=2),
        noisy(100, 100, alpha=True, seed=3),
        noisy(7, 3, alpha=True, seed=4),
        noisy(1, 1, alpha=False, seed=5),
    ]

    assert [thumbhash_of(p) for p in pictures] == thumbhash_reference.encode(pictures)


def test_the_gallerys_decoder_draws_what_the_reference_decoder_draws():
    pictures = [noisy(100, 75, False, 1), noisy(60, 100, False, 2), noisy(100, 100, True, 3), noisy(7, 3, True, 4)]
    hashes = [thumbhash_of(p) for p in pictures]

    for ours, reference in zip(hashes, thumbhash_reference.decode(hashes), strict=True):
        url = data_url(ours)
        assert url is not None and url.startswith("data:image/png;base64,")
        drawn = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert drawn.size == reference.image.size
        assert ImageChops.difference(drawn.convert("RGBA"), reference.image).getbbox() is None  # pixel for pixel


@pytest.mark.parametrize("broken", ["", "AAAA", "not base64!", "3/cNpKiAeobA"])
def test_a_hash_that_cannot_be_read_gives_no_placeholder(broken):
    assert data_url(broken) is None


def cutout() -> bytes:
    picture = images.pattern(300, 200, "RGBA")
    mask = Image.new("L", picture.size, 0)
    ImageDraw.Draw(mask).rectangle((150, 0, 299, 199), fill=255)  # the right half only
    picture.putalpha(mask)
    return images.encode(picture, "PNG")


SOURCES = {
    "landscape jpeg": lambda: images.jpeg(800, 400),
    "portrait by exif 6": lambda: images.jpeg(300, 600, orientation=6),
    "square grey": lambda: images.encode(Image.linear_gradient("L").resize((256, 256)), "PNG"),
    "half transparent png": cutout,
}


@pytest.fixture(scope="module")
def placeholders() -> dict[str, tuple[Image.Image, str]]:
    """Per source: its smallest thumbnail as displayed, and its ThumbHash."""
    made = {}
    for name, make in SOURCES.items():
        rendering = render(io.BytesIO(make()), RenderSpec((Size(512, 512), Size(64, 64)), format="png"))
        made[name] = (Image.open(io.BytesIO(rendering.thumbnails[1].body)).convert("RGBA"), rendering.thumbhash)
    return made


@pytest.mark.parametrize("name", SOURCES)
def test_the_reference_decoder_shows_the_picture_as_displayed(placeholders, name):
    # (On pictures this symmetric some DCT terms sit exactly on a rounding boundary, where the order
    # of a floating-point sum decides between two neighbouring values: bytes are compared above.)
    smallest, ours = placeholders[name]
    [placeholder] = thumbhash_reference.decode([ours])

    assert placeholder.ratio == pytest.approx(smallest.width / smallest.height, rel=0.15)
    average = [round(v * 255) for v in placeholder.average]
    assert all(abs(a - e) <= 6 for a, e in zip(average[:3], weighted_average(smallest)[:3], strict=True)), average
    assert placeholder.average[3] == pytest.approx(weighted_average(smallest)[3] / 255, abs=0.05)


def test_transparency_survives_in_the_placeholder(placeholders):
    [placeholder] = thumbhash_reference.decode([placeholders["half transparent png"][1]])
    alpha = placeholder.image.getchannel("A")

    w, h = alpha.size
    assert alpha.getpixel((w // 8, h // 2)) < 64  # the transparent left half
    assert alpha.getpixel((7 * w // 8, h // 2)) > 192


def weighted_average(image: Image.Image) -> list[float]:
    """The mean colour weighted by alpha, as ThumbHash's average is, and the mean alpha."""
    data = image.convert("RGBA").tobytes()
    alphas = data[3::4]
    weight = sum(alphas) or 1
    colour = [sum(v * a for v, a in zip(data[c::4], alphas, strict=True)) / weight for c in range(3)]
    return [*colour, sum(alphas) / len(alphas)]
