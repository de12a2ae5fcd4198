"""Image-step benchmark: speed, quality and memory of ``s3thumbs.imaging.render``.

Compares our render against the tutorial's way, pyvips' best pipeline and sharp's two ways (both
optional), on generated, seeded, photo-like inputs. Prints Markdown tables. Run from the repository root:

    python bench/images.py [--quick] [--passes N] [--rounds N]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from base64 import b64decode
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import pillow_heif
from PIL import Image, ImageDraw, ImageFilter, ImageOps, features

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import cpus  # bench/machine.py, beside this script

from s3thumbs import encoding, formats, imaging, png, resizing
from s3thumbs.keys import Size

try:
    import pyvips
except (ImportError, OSError):  # not installed, or no libvips to load
    pyvips = None
else:
    pyvips.cache_set_max(0)  # every real upload is a new image
    pyvips.concurrency_set(1)  # one core per image, like the prefork worker

BOXES = (1024, 512, 128)
SIZES = tuple(Size(b, b) for b in BOXES)
QUALITY = 85
# What FORMAT=auto writes for each source kind: a HEIC becomes a JPEG.
SAVE_FORMAT = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "HEIF": "JPEG", "AVIF": "AVIF"}
# The AVIF encoder settings of encoding.encode, for every method alike.
AVIF_OPTIONS = {"quality": QUALITY - encoding.AVIF_QUALITY_OFFSET, "speed": encoding.AVIF_SPEED, "max_threads": 1}


@dataclass(frozen=True)
class Input:
    name: str
    kind: str  # JPEG, PNG, WEBP, HEIF or AVIF: the source format (SAVE_FORMAT: the output's)
    width: int
    height: int
    progressive: bool = False
    orientation: int = 1


@dataclass(frozen=True)
class Source:
    spec: Input
    path: Path
    data: bytes


Method = Callable[[Source], list[bytes] | None]  # None: the method cannot read this source


# --- inputs -----------------------------------------------------------------------------------


def _octave_noise(rng: np.random.Generator, size: tuple[int, int], octaves: int) -> np.ndarray:
    """Smooth multi-octave colour noise, float32 H×W×3 around 0."""
    width, height = size
    total = np.zeros((height, width, 3), np.float32)
    for k in range(1, octaves + 1):
        cells = 2**k + 1
        grid = rng.integers(0, 256, (cells, max(2, cells * width // height), 3), dtype=np.uint8)
        smooth = Image.fromarray(grid).resize(size, Image.Resampling.BICUBIC)
        total += (np.asarray(smooth, np.float32) - 128) * (0.5 / k)
    return total


def photo(width: int, height: int, seed: int) -> Image.Image:
    """Sky/ground gradients, multi-octave noise, hard-edged shapes and sensor noise, seeded."""
    rng = np.random.default_rng(seed)
    low = (max(16, width // 8), max(16, height // 8))
    y = np.linspace(0.0, 1.0, low[1], dtype=np.float32)[:, None, None]
    horizon = rng.uniform(0.35, 0.6)
    sky = np.array([70, 130, 210], np.float32) * (1 - y) + np.array([200, 215, 235], np.float32) * y
    ground = np.array([90, 110, 50], np.float32) * (1 - y) + np.array([60, 45, 30], np.float32) * y
    base = np.where(y < horizon, sky, ground) + _octave_noise(rng, low, 6)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)

    draw = ImageDraw.Draw(image)
    shapes = random.Random(seed)
    for _ in range(70):
        x0, y0 = shapes.randrange(width), shapes.randrange(height)
        w, h = (
            shapes.randrange(width // 40, width // 6),
            shapes.randrange(height // 40, height // 6),
        )
        colour = tuple(shapes.randrange(256) for _ in range(3))
        kind = shapes.choice(("ellipse", "rectangle", "polygon"))
        if kind == "ellipse":
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == "rectangle":
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour, outline=(0, 0, 0), width=3)
        else:
            points = [(x0 + shapes.randrange(w), y0 + shapes.randrange(h)) for _ in range(5)]
            draw.polygon(points, fill=colour)

    # Fine texture and sensor noise: luminance plus weaker chroma, stronger in the shadows.
    pixels = np.asarray(image, np.int16)
    luma = rng.integers(-10, 11, (height, width, 1), dtype=np.int16)
    chroma = rng.integers(-3, 4, (height, width, 3), dtype=np.int16)
    shadow = (pixels.mean(axis=2, keepdims=True) < 80).astype(np.int16) + 1
    pixels += (luma + chroma) * shadow
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def with_alpha(image: Image.Image, seed: int) -> Image.Image:
    """An RGBA cut-out: an opaque soft-edged blob on a transparent background."""
    rng = random.Random(seed)
    w, h = image.size
    mask = Image.new("L", (w // 8, h // 8), 0)
    ImageDraw.Draw(mask).ellipse(
        (w // 80, h // 80, w // 8 - w // 60, h // 8 - h // 50 - rng.randrange(5)),
        fill=255,
    )
    mask = mask.filter(ImageFilter.GaussianBlur(3)).resize(image.size, Image.Resampling.BICUBIC)
    rgba = image.convert("RGBA")
    rgba.putalpha(mask)
    return rgba


def inputs(quick: bool) -> list[Input]:
    if quick:
        return [
            Input("6MP JPEG", "JPEG", 3000, 2000),
            Input("6MP progr. JPEG", "JPEG", 3000, 2000, progressive=True),
            Input("3MP JPEG EXIF 6", "JPEG", 2000, 1500, orientation=6),
            Input("3MP PNG RGBA", "PNG", 2000, 1500),
            Input("1MP WebP", "WEBP", 1200, 800),
            Input("3MP HEIC tiles irot 6", "HEIF", 2016, 1512, orientation=6),
            Input("3MP AVIF", "AVIF", 2000, 1500),
        ]
    return [
        Input("12MP JPEG", "JPEG", 4000, 3000),
        Input("24MP JPEG", "JPEG", 6000, 4000),
        Input("50MP JPEG", "JPEG", 8660, 5774),
        Input("24MP progr. JPEG", "JPEG", 6000, 4000, progressive=True),
        Input("12MP JPEG EXIF 6", "JPEG", 4000, 3000, orientation=6),
        Input("12MP PNG RGBA", "PNG", 4000, 3000),
        Input("3MP WebP", "WEBP", 2000, 1500),
        Input("12MP HEIC tiles irot 6", "HEIF", 4032, 3024, orientation=6),
        Input("12MP AVIF", "AVIF", 4000, 3000),
        # Last, so that the inputs above keep their seeds. 2.66x above the box: DCT scale 1/2, then a 1.33x filter.
        Input("6MP JPEG", "JPEG", 2725, 2225),
    ]


def write_input(spec: Input, directory: Path, seed: int) -> Source:
    image = photo(spec.width, spec.height, seed)
    suffix = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic", "AVIF": "avif"}[spec.kind]
    path = directory / f"{spec.name.replace(' ', '_').replace('.', '')}.{suffix}"
    if spec.kind == "JPEG":
        exif = Image.Exif()
        if spec.orientation != 1:
            exif[0x0112] = spec.orientation
        image.save(path, "JPEG", quality=90, progressive=spec.progressive, exif=exif.tobytes())
    elif spec.kind == "PNG":
        with_alpha(image, seed).save(path, "PNG", compress_level=6)
    elif spec.kind == "HEIF":  # as an iPhone writes it: 512-pixel tiles, the turn in irot and in EXIF
        exif = Image.Exif()
        exif[0x0112] = spec.orientation
        image.save(path, "HEIF", quality=80, tile_size=512, exif=exif.tobytes())
    elif spec.kind == "AVIF":
        image.save(path, "AVIF", quality=75)
    else:
        image.save(path, "WEBP", quality=85)
    return Source(spec, path, path.read_bytes())


# --- methods ----------------------------------------------------------------------------------


def _save(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    kind = SAVE_FORMAT[kind]
    if kind in ("JPEG", "WEBP"):
        options.setdefault("quality", QUALITY)
    elif kind == "AVIF":
        options = {**AVIF_OPTIONS, **options}
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def tutorial(source: Source) -> list[bytes]:
    """The tutorial's way: reopen per size, ``thumbnail``, ``exif_transpose``, save."""
    outputs = []
    for box in BOXES:
        with Image.open(source.path) as image:
            image.thumbnail((box, box))
            shown = ImageOps.exif_transpose(image)
            outputs.append(_save(shown, source.spec.kind))
    return outputs


def s3thumbs(source: Source) -> list[bytes]:
    """What the worker does: ``render`` on a file object of the downloaded bytes."""
    spec = imaging.RenderSpec(SIZES, quality=QUALITY)
    return [t.body for t in imaging.render(io.BytesIO(source.data), spec).thumbnails]


def pyvips_cascade(source: Source) -> list[bytes] | None:
    """libvips' best pipeline: shrink-on-load to the largest box, then a cascade. None for HEIC:
    the pyvips-binary wheel's libheif has no HEVC decoder."""
    assert pyvips is not None
    kind = source.spec.kind
    if kind == "HEIF":
        return None
    largest = pyvips.Image.thumbnail_buffer(source.data, BOXES[0], height=BOXES[0], size="down").copy_memory()
    images = [largest] + [largest.thumbnail_image(b, height=b, size="down") for b in BOXES[1:]]
    if kind == "JPEG":
        return [im.jpegsave_buffer(Q=QUALITY, keep="none") for im in images]
    if kind == "PNG":
        return [im.pngsave_buffer(keep="none") for im in images]
    if kind == "AVIF":  # libvips' effort is 9 - aom's speed
        effort = 9 - encoding.AVIF_SPEED
        quality = int(AVIF_OPTIONS["quality"])
        return [im.heifsave_buffer(compression="av1", Q=quality, effort=effort, keep="none") for im in images]
    return [im.webpsave_buffer(Q=QUALITY, keep="none") for im in images]


SHARP_DIR = Path(__file__).resolve().parent / "node"  # npm ci --prefix bench/node


class Sharp:
    """sharp (Node.js, libvips) in one process that stays running; it times each rendering itself,
    in-process like pyvips, so Node's start-up and the pipe do not count."""

    def __init__(self, process: subprocess.Popen[str], versions: dict[str, object]) -> None:
        self.process = process
        self.versions = versions

    @classmethod
    def start(cls) -> Sharp | None:
        """None when node or bench/node's sharp is missing."""
        node = shutil.which("node")
        if node is None or not (SHARP_DIR / "node_modules" / "sharp").is_dir():
            return None
        process = subprocess.Popen(
            [node, "sharp_render.mjs"], cwd=SHARP_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first:  # sharp failed to load (its stderr says why)
            process.wait()
            return None
        return cls(process, json.loads(first)["versions"])

    def render(self, method: str, source: Source) -> tuple[float, list[bytes]] | None:
        """(ms, outputs), or None when sharp's libvips cannot read the source (HEVC: not built in)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"method": method, "path": str(source.path), "kind": source.spec.kind}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if "error" in reply:
            if source.spec.kind == "HEIF" and "HEVC" in reply["error"]:
                return None
            raise RuntimeError(f"sharp {method} on {source.spec.name}: {reply['error']}")
        return reply["ms"], [b64decode(b) for b in reply["outputs"]]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


@dataclass
class SharpMethod:
    """One of sharp's ways as a method; ``own_ms`` is sharp's own timing of the last call."""

    sharp: Sharp
    way: str  # cascade or each
    own_ms: float | None = field(default=None)

    def __call__(self, source: Source) -> list[bytes] | None:
        done = self.sharp.render(self.way, source)
        self.own_ms = None if done is None else done[0]
        return None if done is None else done[1]


@dataclass(frozen=True)
class Variant:
    """``render`` itself with some of its knobs turned: shows what each choice costs or saves."""

    name: str
    knobs: dict[str, object]
    same_pixels: bool = False  # True: only the time changes, so the quality table leaves it out

    def __call__(self, source: Source) -> list[bytes]:
        saved = {name: getattr(imaging, name) for name in self.knobs}
        for name, value in self.knobs.items():
            setattr(imaging, name, value)
        try:
            return s3thumbs(source)
        finally:
            for name, value in saved.items():
                setattr(imaging, name, value)


class PillowAlone(Variant):
    """``render`` as installed without the ``fast`` extra: no libvips resize, no libvips PNG decode."""

    def __call__(self, source: Source) -> list[bytes]:
        with pillow_alone():
            return s3thumbs(source)


@contextmanager
def pillow_alone() -> Iterator[None]:
    """Within it, ``render`` finds no pyvips, as without the ``fast`` extra."""
    found = resizing.libvips
    resizing.libvips = lambda: None  # type: ignore[assignment]
    try:
        yield
    finally:
        resizing.libvips = found  # type: ignore[assignment]


VARIANTS = (
    PillowAlone("v:pillow-alone", {}),  # no pyvips: Pillow's decode and filters, no SIMD
    Variant("v:lanczos", {"RESAMPLE": Image.Resampling.LANCZOS}),  # the sharper kernel for every resize
    Variant("v:box-cascade", {"CASCADE_REDUCING_GAP": 1.0}),  # 1024 -> 512 by a 2x2 box
    Variant("v:no-box", {"DECODED_REDUCING_GAP": 2.0}),  # the filter does a big PNG's whole factor too
    Variant("v:bicubic-after-box", {"AFTER_BOX_RESAMPLE": Image.Resampling.BICUBIC}),  # the filter after a box reduce
    Variant("v:no-thumbhash", {"thumbhash_of": lambda image: ""}, same_pixels=True),  # sharp makes no placeholder
)


def decode_floor(source: Source) -> list[bytes]:
    """Only the decode ``render`` does (same DCT shrink): the part no resampler choice can save."""
    with Image.open(io.BytesIO(source.data)) as image:
        if image.format == "JPEG":
            swapped = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            shown = (image.height, image.width) if swapped else image.size
            largest = imaging.fit(*shown, SIZES[0])
            image.draft(None, (largest[1], largest[0]) if swapped else largest)
        image.load()
    return []


def methods(sharp: Sharp | None) -> dict[str, Method]:
    table: dict[str, Method] = {"tutorial": tutorial, "s3thumbs": s3thumbs, "decode": decode_floor}
    if pyvips is not None:
        table["pyvips-cascade"] = pyvips_cascade
    if sharp is not None:
        table["sharp-cascade"] = SharpMethod(sharp, "cascade")
        table["sharp-each"] = SharpMethod(sharp, "each")
    table.update({v.name: v for v in VARIANTS})
    return table


# --- timing -----------------------------------------------------------------------------------


def run_pass(
    sources: list[Source], table: dict[str, Method], rounds: int, rng: random.Random
) -> dict[str, dict[str, float]]:
    """One pass: a warm-up round, then ``rounds`` timed rounds in shuffled order; median ms per cell."""
    samples: dict[str, dict[str, list[float]]] = {s.spec.name: {m: [] for m in table} for s in sources}
    for round_ in range(rounds + 1):
        for source in sources:
            order = list(table)
            rng.shuffle(order)
            for name in order:
                start = time.perf_counter()
                done = table[name](source)
                elapsed = (time.perf_counter() - start) * 1000
                elapsed = getattr(table[name], "own_ms", None) or elapsed  # sharp times itself
                if round_ and done is not None:
                    samples[source.spec.name][name].append(elapsed)
    return {src: {m: statistics.median(v) for m, v in cells.items() if v} for src, cells in samples.items()}


def median_over(
    passes: list[dict[str, dict[str, float]]],
    value: Callable[[dict[str, float]], float | None],
    source: str,
) -> float | None:
    values = [v for p in passes if (v := value(p[source])) is not None]
    return statistics.median(values) if values else None


def cell(method: str) -> Callable[[dict[str, float]], float | None]:
    return lambda cells: cells.get(method)


def ratio(a: str, b: str) -> Callable[[dict[str, float]], float | None]:
    return lambda cells: cells[a] / cells[b] if a in cells and b in cells else None


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("pass" if ok else "FAIL")


def speed_tables(sources: list[Source], passes: list[dict[str, dict[str, float]]]) -> str:
    lines = [
        "| input | tutorial ms | s3thumbs ms | pyvips-cascade ms | s3thumbs/pyvips | tutorial/s3thumbs "
        "| goal vs pyvips | goal vs tutorial | decode alone ms (share of s3thumbs) |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for source in sources:
        name = source.spec.name
        ms = {m: median_over(passes, cell(m), name) for m in ("tutorial", "s3thumbs", "pyvips-cascade", "decode")}
        vs_vips = median_over(passes, ratio("s3thumbs", "pyvips-cascade"), name)
        vs_tut = median_over(passes, ratio("tutorial", "s3thumbs"), name)
        share = median_over(passes, ratio("decode", "s3thumbs"), name)
        jpeg = source.spec.kind == "JPEG"
        goal_vips = None if vs_vips is None else vs_vips <= (0.85 if jpeg else 1.0)
        goal_tut = (vs_tut is not None and vs_tut >= 4.0) if jpeg else None
        lines.append(
            f"| {name} | {fmt(ms['tutorial'], '.0f')} | {fmt(ms['s3thumbs'], '.0f')} "
            f"| {fmt(ms['pyvips-cascade'], '.0f')} "
            f"| {fmt(vs_vips, '.2f', '×')} | {fmt(vs_tut, '.2f', '×')} "
            f"| {mark(goal_vips)} (≤ {'0.85' if jpeg else '1.00'}×) | {mark(goal_tut)}{' (≥ 4×)' if jpeg else ''} "
            f"| {fmt(ms['decode'], '.0f')} ({fmt(None if share is None else share * 100, '.0f', ' %')}) |"
        )
    lines += ["", "`render` with one knob turned back (same passes):", ""]
    lines.append("| input | " + " | ".join(f"{v.name} ms (/s3thumbs, /pyvips)" for v in VARIANTS) + " |")
    lines.append("|---|" + "---:|" * len(VARIANTS))
    for source in sources:
        name = source.spec.name
        cells = [
            f"{fmt(median_over(passes, cell(v.name), name), '.0f')} "
            f"({fmt(median_over(passes, ratio(v.name, 's3thumbs'), name), '.2f', '×')}, "
            f"{fmt(median_over(passes, ratio(v.name, 'pyvips-cascade'), name), '.2f', '×')})"
            for v in VARIANTS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sharp_table(sources: list[Source], passes: list[dict[str, dict[str, float]]], table: dict[str, Method]) -> str:
    """Ours against sharp's best pipeline (the goal: no slower per core) and against sharp as
    Firebase's resize extension uses it; bytes of the three thumbnails, from one more call each."""
    lines = [
        "| input | s3thumbs ms | sharp-cascade ms | sharp-each ms | s3thumbs/sharp-cascade | goal (≤ 1.00×) "
        "| s3thumbs/sharp-each | Pillow alone (v:pillow-alone)/sharp-cascade | bytes s3thumbs/sharp-cascade |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for source in sources:
        name = source.spec.name
        ms = {m: median_over(passes, cell(m), name) for m in ("s3thumbs", "sharp-cascade", "sharp-each")}
        best = median_over(passes, ratio("s3thumbs", "sharp-cascade"), name)
        each = median_over(passes, ratio("s3thumbs", "sharp-each"), name)
        alone = median_over(passes, ratio("v:pillow-alone", "sharp-cascade"), name)
        theirs = table["sharp-cascade"](source)
        size = None if theirs is None else sum(map(len, s3thumbs(source))) / sum(map(len, theirs))
        goal = None if best is None else best <= 1.0
        lines.append(
            f"| {name} | {fmt(ms['s3thumbs'], '.0f')} | {fmt(ms['sharp-cascade'], '.0f')} "
            f"| {fmt(ms['sharp-each'], '.0f')} | {fmt(best, '.2f', '×')} | {mark(goal)} "
            f"| {fmt(each, '.2f', '×')} | {fmt(alone, '.2f', '×')} | {fmt(size, '.2f', '×')} |"
        )
    return "\n".join(lines)


# Pillow's C entry points (and pillow-heif's decoding load()), as cProfile names them, by the stage
# of the pipeline they belong to.
STAGES = {
    "decode": ("ImagingDecoder", "WebPAnimDecoder", "draft", "pillow_heif/heif.py", "AvifDecoder"),
    "convert (colour, alpha)": ("'convert' of", "'point' of", "profileToProfile", "'paste' of"),
    "resize": ("'resize' of", "'reduce' of", "'transpose' of"),
    "encode": ("ImagingEncoder", "WebPEncode", "AvifEncoder"),
}


def profile_table(sources: list[Source]) -> str:
    """Where ``render``'s time goes, by stage: cProfile's own time of Pillow's C calls. A resize on
    libvips (``resizing``: Pillow's copy out, libvips' filter, the copy back) is timed whole, unprofiled, and
    so is a PNG's decode and first resize on libvips (``png``), counted as decode."""
    import cProfile
    import pstats

    lines = [
        "| input | " + " | ".join(f"{stage} ms" for stage in STAGES) + " | the rest ms |",
        "|---|" + "---:|" * (len(STAGES) + 1),
    ]
    filtered, resized_on_load = resizing._filtered, png.resized_on_load
    for source in sources:
        s3thumbs(source)  # warm
        totals: list[dict[str, float]] = []
        for _ in range(3):
            profiler = cProfile.Profile()
            on_libvips: dict[str, list[float]] = {"resize": [], "decode": []}

            def unprofiled(call: Callable[..., Any], times: list[float], profiler: cProfile.Profile = profiler) -> Any:
                def timed(*args: Any) -> Any:
                    profiler.disable()
                    started = time.perf_counter()
                    try:
                        return call(*args)
                    finally:
                        times.append(time.perf_counter() - started)
                        profiler.enable()

                return timed

            resizing._filtered = unprofiled(filtered, on_libvips["resize"])
            png.resized_on_load = unprofiled(resized_on_load, on_libvips["decode"])
            try:
                profiler.runcall(s3thumbs, source)
            finally:
                resizing._filtered, png.resized_on_load = filtered, resized_on_load
            stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
            by_stage = dict.fromkeys([*STAGES, "rest"], 0.0)
            for stage, times in on_libvips.items():
                by_stage[stage] += sum(times) * 1000
            for (file, _, function), (_, _, own, _, _) in stats.items():
                where = f"{file} {function}"  # pillow-heif decodes in the C behind its Python load()
                stage = next((k for k, keys in STAGES.items() if any(key in where for key in keys)), "rest")
                by_stage[stage] += own * 1000
            totals.append(by_stage)
        median = {k: statistics.median(t[k] for t in totals) for k in totals[0]}
        lines.append(f"| {source.spec.name} | " + " | ".join(f"{median[k]:.0f}" for k in median) + " |")
    return "\n".join(lines)


# --- quality ----------------------------------------------------------------------------------


def references(source: Source) -> list[Image.Image]:
    """Exact references per box: full decode, EXIF transpose, LANCZOS, no draft, no reducing_gap."""
    with Image.open(source.path) as image:
        shown = ImageOps.exif_transpose(image)
        shown.load()
        return [shown.resize(imaging.fit(*shown.size, size), Image.Resampling.LANCZOS) for size in SIZES]


def _premultiplied(image: Image.Image) -> np.ndarray:
    """RGB(A) as floats with colour weighted by alpha: hidden colour under alpha 0 does not count."""
    if "A" not in image.mode:
        return np.asarray(image.convert("RGB"), np.float64)
    rgba = np.asarray(image.convert("RGBA"), np.float64)
    rgba[..., :3] *= rgba[..., 3:] / 255
    return rgba


def psnr(a: Image.Image, b: Image.Image) -> float:
    if a.size != b.size:
        b = b.resize(a.size, Image.Resampling.LANCZOS)  # libvips may round a side differently by 1 px
    diff = _premultiplied(a) - _premultiplied(b)
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def decoded(body: bytes) -> Image.Image:
    return Image.open(io.BytesIO(body))


def quality_table(sources: list[Source], table: dict[str, Method]) -> str:
    """Per box, how many dB below the encoded exact reference each method's encoded output lands."""
    compared = ["s3thumbs", "pyvips-cascade", "sharp-cascade", "sharp-each"]
    compared += [v.name for v in VARIANTS if not v.same_pixels]
    compared = [m for m in compared if m in table]
    sizes = "/".join(map(str, BOXES))
    lines = [
        f"| input | reference encoded dB ({sizes}) | "
        + " | ".join(f"{m}: loss dB ({sizes})" for m in compared)
        + " | goal: s3thumbs loss ≤ 0.5 dB |",
        "|---|---|" + "---|" * len(compared) + "---|",
    ]
    for source in sources:
        exact = references(source)
        encoded = [psnr(e, decoded(_save(e, source.spec.kind))) for e in exact]
        cells, worst = [], None
        for method in compared:
            outputs = table[method](source)
            if outputs is None:
                cells.append("n/a")
                continue
            losses = [
                ref - psnr(e, decoded(body)) if ref != float("inf") else None
                for e, ref, body in zip(exact, encoded, outputs, strict=True)
            ]
            if method == "s3thumbs" and all(v is not None for v in losses):
                worst = max(v for v in losses if v is not None)
            if all(v is None for v in losses):  # lossless output: the PSNR against the reference itself
                pairs = zip(exact, outputs, strict=True)
                cells.append("PSNR " + "/".join(f"{psnr(e, decoded(body)):.1f}" for e, body in pairs))
            else:
                cells.append("/".join(fmt(v, "+.2f") for v in losses))
        ok = (worst is not None and worst <= 0.5) if source.spec.kind == "JPEG" else None
        lines.append(
            f"| {source.spec.name} | {'/'.join(f'{v:.2f}' for v in encoded)} | "
            + " | ".join(cells)
            + f" | {mark(ok)} |"
        )
    return "\n".join(lines)


ENCODERS: dict[str, tuple[str, dict[str, object]]] = {
    "JPEG q85": ("JPEG", {"quality": QUALITY}),
    "WebP q85 method 2 (ours)": ("WEBP", {"quality": QUALITY, "method": encoding.WEBP_METHOD}),
    "WebP q85 method 4 (libwebp's default, sharp's effort 4)": ("WEBP", {"quality": QUALITY}),
    "AVIF q60 speed 9 (ours)": ("AVIF", AVIF_OPTIONS),
    "AVIF q60 speed 8": ("AVIF", {**AVIF_OPTIONS, "speed": 8}),
    "AVIF q60 speed 6 (Pillow's default speed)": ("AVIF", {**AVIF_OPTIONS, "speed": 6}),
    "AVIF q85 speed 9 (QUALITY as given)": ("AVIF", {**AVIF_OPTIONS, "quality": QUALITY}),
}


def encoder_table(source: Source, rounds: int) -> str:
    """Each encoder on the exact thumbnails of one source: ms and bytes per box, and PSNR."""
    exact = references(source)
    sizes = "/".join(map(str, BOXES))
    lines = [f"| encoder | ms ({sizes}) | bytes ({sizes}) | PSNR dB ({sizes}) |", "|---|---|---|---|"]
    for name, (kind, options) in ENCODERS.items():
        ms, lengths, quality = [], [], []
        for image in exact:
            times = []
            for _ in range(rounds + 1):
                buffer = io.BytesIO()
                start = time.perf_counter()
                image.save(buffer, kind, **options)
                times.append((time.perf_counter() - start) * 1000)
            ms.append(statistics.median(times[1:]))
            lengths.append(len(buffer.getvalue()))
            quality.append(psnr(image, decoded(buffer.getvalue())))
        lines.append(
            f"| {name} | {'/'.join(f'{v:.1f}' for v in ms)} | {'/'.join(f'{v:,}' for v in lengths)} "
            f"| {'/'.join(f'{v:.2f}' for v in quality)} |"
        )
    return "\n".join(lines)


# --- memory -----------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(path: str, pillow_only: bool, warm: bool) -> None:
    """In a fresh process: warm up on a tiny image (``warm``: on the source itself, as a pool process
    that has rendered like uploads before), reset VmHWM, render once, print KiB as JSON."""
    with pillow_alone() if pillow_only else nullcontext():
        _render_measured(path, warm)


def _render_measured(path: str, warm: bool) -> None:
    spec = imaging.RenderSpec(SIZES, quality=QUALITY)
    with Image.open(path) as image:
        tiny = Image.new(image.mode, (64, 48))
        kind = image.format or "JPEG"
    buffer = io.BytesIO()
    tiny.save(buffer, kind)
    imaging.render(io.BytesIO(buffer.getvalue()), spec)
    resizing.engine()  # loaded by a pool process when it starts, like the worker's (9 MiB for libvips)
    if warm:
        with open(path, "rb") as source:
            imaging.render(source, spec)
    baseline = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    with open(path, "rb") as source:  # a spooled file that spilled to disk, as in the worker
        imaging.render(source, spec)
    print(json.dumps({"baseline": baseline, "peak": _status_kib("VmHWM")}))


def memory_table(cases: list[tuple[Source, str, float]]) -> str:
    """Peaks of ``render`` as installed (resizing on libvips where pyvips is) and on Pillow alone, in
    a fresh process and in one that has rendered the same file once."""
    lines = [
        "| input | baseline RSS MiB | peak RSS MiB | peak above baseline MiB | goal "
        "| Pillow alone: above baseline MiB | after one render of it, ours / Pillow alone: above baseline MiB |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for source, goal_kind, limit in cases:
        base, peak = _measured_peak(source, pillow_only=False, warm=False)
        alone = _above_baseline(source, pillow_only=True, warm=False)
        warm = [_above_baseline(source, pillow_only, warm=True) for pillow_only in (False, True)]
        value = peak if goal_kind == "total" else peak - base
        goal = f"{mark(value < limit)} ({'total' if goal_kind == 'total' else 'above baseline'} < {limit:.0f} MiB)"
        lines.append(
            f"| {source.spec.name} | {base:.1f} | {peak:.1f} | {peak - base:.1f} | {goal} | {alone:.1f} "
            f"| {warm[0]:.1f} / {warm[1]:.1f} |"
        )
    return "\n".join(lines)


def _above_baseline(source: Source, pillow_only: bool, warm: bool) -> float:
    base, peak = _measured_peak(source, pillow_only, warm)
    return peak - base


def _measured_peak(source: Source, pillow_only: bool, warm: bool) -> tuple[float, float]:
    """Baseline and peak RSS, MiB, of a fresh process rendering ``source``."""
    flags = ["--pillow-only"] * pillow_only + ["--warm"] * warm
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(source.path), *flags],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kib = json.loads(out)
    return kib["baseline"] / 1024, kib["peak"] / 1024


# --- main -------------------------------------------------------------------------------------


def machine(sharp: Sharp | None) -> str:
    vips = (
        "n/a"
        if pyvips is None
        else f"pyvips {pyvips.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    )
    if sharp is not None:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        v = sharp.versions
        vips += f"; sharp {v['sharp']} (libvips {v['vips']}, mozjpeg {v.get('mozjpeg')}, Node.js {node})"
    return (
        f"{cpus()}; Pillow {PIL.__version__}, "
        f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}, libwebp {features.version_module('webp')}, "
        f"zlib {features.version_codec('zlib')} (Pillow built for zlib-ng {features.version_feature('zlib_ng')}), "
        f"libavif {features.version_module('avif')}; "
        f"pillow-heif {pillow_heif.__version__}, libheif {pillow_heif.libheif_version()}; "
        f"{vips}; numpy {np.__version__}; s3thumbs resizes with {resizing.engine()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller inputs, one short pass: a smoke run",
    )
    parser.add_argument("--passes", type=int, help="passes (default 3; 1 with --quick)")
    parser.add_argument("--rounds", type=int, help="timed rounds per pass (default 4; 2 with --quick)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--pillow-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="only the inputs whose name contains this text, e.g. HEIC")
    args = parser.parse_args()
    formats.register()  # HEIC through pillow-heif, for every method
    if args.memory_child:
        memory_child(args.memory_child, args.pillow_only, args.warm)
        return
    passes = args.passes or (1 if args.quick else 3)
    rounds = args.rounds or (2 if args.quick else 4)

    sharp = Sharp.start()
    print(f"Machine: {machine(sharp)}\n")
    if pyvips is None:
        print("pyvips is not installed: its columns are n/a (pip install 's3thumbs[bench]').\n")
    if sharp is None:
        print("sharp is not installed: its columns are n/a (node, then npm ci --prefix bench/node).\n")
    table = methods(sharp)
    try:
        run(args, table, passes, rounds)
    finally:
        if sharp is not None:
            sharp.close()


def run(args: argparse.Namespace, table: dict[str, Method], passes: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="s3thumbs-bench-") as tmp:
        started = time.perf_counter()
        chosen = [(i, spec) for i, spec in enumerate(inputs(args.quick)) if not args.only or args.only in spec.name]
        sources = [write_input(spec, Path(tmp), args.seed + i) for i, spec in chosen]
        print(
            f"Generated {len(sources)} inputs in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{s.spec.name} {len(s.data) / 2**20:.2f} MiB" for s in sources)
            + "\n"
        )

        rng = random.Random(args.seed)
        results = [run_pass(sources, table, rounds, rng) for _ in range(passes)]
        print(f"## Speed: median wall ms per original (3 sizes {'/'.join(map(str, BOXES))}, encode included)\n")
        print(
            f"{passes} passes × (1 warm-up + {rounds} timed rounds), method order shuffled per round; "
            "ratios taken within each pass, then the median over passes.\n"
        )
        print(speed_tables(sources, results) + "\n")
        if "sharp-cascade" in table:
            print("Against sharp (one Node.js process, `sharp.concurrency(1)`, `sharp.cache(false)`, timed in it):\n")
            print(sharp_table(sources, results, table) + "\n")

        print("## Where the time goes: `render` under cProfile, own time of Pillow's calls by stage (median of 3)\n")
        print(profile_table(sources) + "\n")

        print("## Quality: PSNR loss per box, after encoding, against the exact unencoded reference\n")
        print(
            "Loss = PSNR of the exact reference after the same encode − PSNR of the method's output; "
            "below 0 is closer to the exact image than the encoded reference.\n"
        )
        print(quality_table(sources, table) + "\n")

        photo = next((s for s in sources if s.spec.kind == "JPEG" and s.spec.orientation == 1), None)
        if photo is not None:  # not with an --only that chose none
            print(f"## Encoders: the exact thumbnails of {photo.spec.name}, encoded (median of {rounds})\n")
            print(encoder_table(photo, rounds) + "\n")

        print("## Memory: peak RSS of a fresh process rendering one original with `render`\n")
        by_name = {s.spec.name: s for s in sources}
        jpeg = by_name.get("50MP JPEG") or sources[0]
        cases = [(jpeg, "total", 250.0)]
        cases += [(s, "above", 150.0) for s in sources if s.spec.kind in ("PNG", "HEIF", "AVIF")]
        print(memory_table(cases))


if __name__ == "__main__":
    main()
