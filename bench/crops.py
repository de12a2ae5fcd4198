"""Cover-crop benchmark: s3thumbs' attention crop against libvips' (pyvips), and what the app extras cost.

On generated scenes with one thing that draws the eye (a saturated flower, or a soft skin-toned
face) placed off centre, both crop a 1200×400 picture to a 200×200 cover box; a crop "keeps" the
subject when the subject's centre lies inside it. Also timed, per image: the attention crop itself,
the centre crop, and the ThumbHash of a 128-pixel thumbnail. Prints Markdown. Run from the
repository root:

    python bench/crops.py [--rounds N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import cpus  # bench/machine.py, beside this script

from s3thumbs import crops
from s3thumbs.keys import Size
from s3thumbs.placeholder import thumbhash_of
from tests.support.images import salient_scene

try:
    import pyvips
except (ImportError, OSError):  # not installed, or no libvips to load
    pyvips = None

BOX = Size(200, 200, "cover")
SIZE = (1200, 400)
POSITIONS = (0.1, 0.25, 0.4, 0.6, 0.75, 0.9)


def ours(picture: Image.Image, mode: str) -> int:
    """The left edge of s3thumbs' crop, in the scaled picture's pixels (it covers the box at 200 high)."""
    scaled = picture.resize(crops.cover_size(*picture.size, BOX), Image.Resampling.BICUBIC)
    return _left(scaled, crops.crop(scaled, BOX, mode))


def _left(scaled: Image.Image, cropped: Image.Image) -> int:
    """Where ``cropped`` was taken from ``scaled``: the offset whose pixels match."""
    strip = cropped.crop((0, 100, cropped.width, 101)).tobytes()
    for left in range(scaled.width - cropped.width + 1):
        if scaled.crop((left, 100, left + cropped.width, 101)).tobytes() == strip:
            return left
    raise AssertionError("crop not found in the picture")


def libvips(picture: Image.Image) -> int:
    """The left edge of libvips' attention crop of the same scaled picture."""
    assert pyvips is not None
    scaled = picture.resize(crops.cover_size(*picture.size, BOX), Image.Resampling.BICUBIC)
    image = pyvips.Image.new_from_memory(scaled.tobytes(), scaled.width, scaled.height, 3, "uchar")
    cropped = image.smartcrop(BOX.width, BOX.height, interesting="attention")
    as_pillow = Image.frombytes("RGB", (cropped.width, cropped.height), cropped.write_to_memory())
    return _left(scaled, as_pillow)


def median_ms(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per measurement (default 20)")
    args = parser.parse_args()
    vips = "n/a" if pyvips is None else f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    print(f"Machine: {cpus()}; Pillow {Image.__version__}; {vips}\n")
    print(f"## Where the subject ends up: {SIZE[0]}×{SIZE[1]} scenes, a {BOX.width}×{BOX.height} cover crop\n")
    print("| subject | at | subject's centre (px) | centre crop keeps it | s3thumbs attention | libvips attention |")
    print("|---|---:|---:|---|---|---|")
    kept = {"centre": 0, "ours": 0, "libvips": 0}
    scenes = [(subject, at) for subject in ("flower", "face") for at in POSITIONS]
    for subject, at in scenes:
        picture = salient_scene(subject, at, SIZE)
        centre = at * crops.cover_size(*SIZE, BOX)[0]
        lefts = {"centre": ours(picture, "centre"), "ours": ours(picture, "attention")}
        if pyvips is not None:
            lefts["libvips"] = libvips(picture)
        inside = {name: left <= centre < left + BOX.width for name, left in lefts.items()}
        for name, hit in inside.items():
            kept[name] += hit
        cells = [f"{'yes' if inside[n] else 'no'} (left {lefts[n]})" if n in lefts else "n/a" for n in kept]
        print(f"| {subject} | {at:.2f} | {centre:.0f} | " + " | ".join(cells) + " |")
    print(f"\nKept: centre {kept['centre']}/{len(scenes)}, s3thumbs attention {kept['ours']}/{len(scenes)}, "
          f"libvips attention {kept['libvips'] if pyvips else 'n/a'}/{len(scenes)}.\n")  # fmt: skip

    picture = salient_scene("flower", 0.2, SIZE)
    scaled = picture.resize(crops.cover_size(*SIZE, BOX), Image.Resampling.BICUBIC)
    small = picture.resize((128, 43), Image.Resampling.BICUBIC)
    print(f"## Cost per image (median of {args.rounds})\n")
    print("| step | ms |")
    print("|---|---:|")
    print(f"| attention crop of the {scaled.width}×{scaled.height} cover-scaled picture | "
          f"{median_ms(lambda: crops.crop(scaled, BOX, 'attention'), args.rounds):.2f} |")  # fmt: skip
    print(f"| centre crop of the same | {median_ms(lambda: crops.crop(scaled, BOX, 'centre'), args.rounds):.2f} |")
    if pyvips is not None:
        image = pyvips.Image.new_from_memory(scaled.tobytes(), scaled.width, scaled.height, 3, "uchar")
        ms = median_ms(lambda: image.smartcrop(200, 200, interesting="attention").write_to_memory(), args.rounds)
        print(f"| libvips attention crop of the same | {ms:.2f} |")
    print(f"| ThumbHash of a 128×43 thumbnail | {median_ms(lambda: thumbhash_of(small), args.rounds):.2f} |")
    square = Image.open(io.BytesIO(_png(picture.resize((128, 128)))))
    ms = median_ms(lambda: thumbhash_of(square), args.rounds)
    print(f"| ThumbHash of a 128×128 thumbnail (scaled to 100×100) | {ms:.2f} |")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


if __name__ == "__main__":
    main()
