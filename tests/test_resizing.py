"""Resizing on libvips (the ``fast`` extra) gives Pillow's sizes and, within rounding, Pillow's pixels;
without pyvips every resize is Pillow's and rendering works the same."""

from __future__ import annotations

import logging
import math
import subprocess
import sys

import pytest
from PIL import Image, ImageChops, ImageStat

from s3thumbs import resizing
from tests.support import images

BICUBIC, LANCZOS = Image.Resampling.BICUBIC, Image.Resampling.LANCZOS


def detailed(size: tuple[int, int], mode: str) -> Image.Image:
    """Gradients under noise and sharp edges: every frequency a photo has, in ``mode``."""
    noise = Image.effect_noise(size, 60)
    rgb = Image.merge("RGB", (Image.linear_gradient("L").resize(size), noise, images.pattern(*size, "L")))
    if mode in ("La", "RGBa"):
        alpha = Image.radial_gradient("L").resize(size)
        return Image.merge(mode[:-1] + "A", (*rgb.convert(mode[:-1]).split(), alpha)).convert(mode)
    return rgb.convert(mode)


def differences(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    """The largest per-channel mean absolute difference in levels of 255, and the PSNR in dB.

    On noise, Lanczos' lobes magnify the two libraries' rounding to a few tens of levels at a few
    pixels in a million; the PSNR says whether that matters (an encoded thumbnail is near 35 dB)."""
    assert (a.mode, a.size) == (b.mode, b.size)
    stat = ImageStat.Stat(ImageChops.difference(a, b))
    squared = sum(stat.sum2) / (a.width * a.height * len(stat.sum2))
    return max(stat.mean), 10 * math.log10(255**2 / squared) if squared else math.inf


def test_libvips_does_the_resizing_where_it_is_installed():
    # The test environment installs the fast extra: a missing or broken pyvips must fail here, not
    # silently make every worker slower.
    assert resizing.engine().startswith("libvips 8.")


def test_libvips_internals_stay_out_of_an_info_log(caplog):
    caplog.set_level(logging.INFO)

    resizing.resize(detailed((1500, 1125), "RGB"), (1024, 768), LANCZOS)

    assert [r.getMessage() for r in caplog.records if r.name.startswith("pyvips")] == []


@pytest.mark.parametrize("mode", ["RGB", "RGBa", "L", "La"])
@pytest.mark.parametrize("resample", [BICUBIC, LANCZOS], ids=["bicubic", "lanczos"])
@pytest.mark.parametrize(
    ("size", "target", "gap"),
    [
        ((1500, 1125), (1024, 768), None),  # a 4000 px JPEG shrunk 3/8 on load, into 1024
        ((1024, 768), (512, 384), 2.0),  # the cascade
        ((4000, 3000), (1000, 750), 1.0),  # a PNG's whole factor by box, nothing left to filter
        ((3000, 2000), (1024, 683), 1.0),  # box by 2, then the filter on a whole-pixel region
    ],
)
def test_a_resize_gives_pillows_size_and_pixels_within_rounding(mode, resample, size, target, gap):
    im = detailed(size, mode)

    out = resizing.resize(im, target, resample, reducing_gap=gap)

    mean, psnr = differences(out, im.resize(target, resample, reducing_gap=gap))
    assert mean < 0.5 and psnr > 50, (mean, psnr)


def test_libvips_filters_the_images_it_takes():
    im = detailed((1500, 1125), "RGB")

    out = resizing.resize(im, (1024, 768), BICUBIC)

    assert out.tobytes() != im.resize((1024, 768), BICUBIC).tobytes()  # not Pillow's own result


@pytest.mark.parametrize(
    ("size", "box", "target"),
    [
        ((1501, 1126), (0, 0, 1500, 1125), (1024, 768)),  # a whole-pixel region: libvips, cropped
        ((1501, 1126), (0, 0, 1500.375, 1125.75), (1024, 768)),  # a 4001×3002 JPEG at 3/8: Pillow
        ((1203, 901), (0, 0, 1203, 901), (300, 225)),  # box by 4 leaves 300.75 px: Pillow
    ],
)
def test_a_region_is_resized_exactly_where_pillow_would_put_it(size, box, target):
    im = detailed(size, "RGB")

    out = resizing.resize(im, target, LANCZOS, box=box, reducing_gap=1.0)

    mean, psnr = differences(out, im.resize(target, LANCZOS, box=box, reducing_gap=1.0))
    assert mean < 0.5 and psnr > 50, (mean, psnr)


@pytest.mark.parametrize("mode", ["I;16", "F", "RGBA", "LA", "P"])
def test_what_libvips_would_read_differently_stays_pillows(mode):
    im = detailed((1500, 1125), "RGB").convert(mode)
    resample = BICUBIC if mode != "P" else Image.Resampling.NEAREST

    out = resizing.resize(im, (1024, 768), resample)

    assert out.tobytes() == im.resize((1024, 768), resample).tobytes()


def test_a_resize_whose_copy_would_outgrow_pillows_own_stays_pillows():
    # 2000×1500 premultiplied into 1024: a 12 MB packed copy against Pillow's 6 MB intermediate and
    # 3 MB output, so libvips would raise the peak.
    im = detailed((2000, 1500), "RGBa")

    out = resizing.resize(im, (1024, 768), LANCZOS, reducing_gap=1.0)

    assert out.tobytes() == im.resize((1024, 768), LANCZOS, reducing_gap=1.0).tobytes()


def test_a_small_premultiplied_image_is_filtered_by_libvips_though_its_copy_is_bigger():
    # The cascade's 1024×768 premultiplied image into 512: a 3 MB packed copy against Pillow's 2.4 MB
    # of buffers, small beside any decode.
    im = detailed((1024, 768), "RGBa")

    out = resizing.resize(im, (512, 384), LANCZOS, reducing_gap=2.0)

    assert out.tobytes() != im.resize((512, 384), LANCZOS, reducing_gap=2.0).tobytes()


WITHOUT_PYVIPS = """
import importlib.abc, io, sys

class Broken(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "pyvips":
            raise {error}("libvips.so.42: cannot open shared object file")
        return None

sys.meta_path.insert(0, Broken())
from PIL import Image
from s3thumbs import resizing
from s3thumbs.imaging import RenderSpec, render
from s3thumbs.keys import Size

buffer = io.BytesIO()
Image.effect_noise((3000, 2000), 60).convert("RGB").save(buffer, "JPEG")
done = render(io.BytesIO(buffer.getvalue()), RenderSpec((Size(1024, 1024), Size(256, 256))))
print(resizing.engine(), [(t.width, t.height) for t in done.thumbnails])
"""


@pytest.mark.parametrize("error", ["ImportError", "OSError"])
def test_without_pyvips_every_resize_is_pillows(error):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYVIPS.format(error=error)], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Pillow [(1024, 683), (256, 171)]"


def test_a_resize_keeps_the_source_intact():
    im = detailed((1500, 1125), "RGBa")
    before = im.tobytes()

    resizing.resize(im, (1024, 768), LANCZOS)

    assert im.tobytes() == before
