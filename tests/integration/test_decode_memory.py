"""No image takes a worker process past S3THUMBS_MAX_DECODE_MIB above its baseline.

Two halves. Each image is rendered in a fresh process whose own high-water mark (``VmHWM``) is
compared with the estimate the worker checks before decoding: the estimate must never be short.
Then a real worker, with a budget of its own, is given the hostile inputs of the security review
(and a few that pass); the resident set of its whole process tree is sampled throughout, and no
process may grow past the budget.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable

import pillow_heif
import pytest
from PIL import Image

from s3thumbs.events import ObjectEvent
from tests.support import hostile, images, phone
from tests.support.buckets import fresh_bucket, s3_client, upload
from tests.support.memory import MIB, GroupSampler
from tests.support.processes import s3thumbs_env, worker
from tests.support.publishing import Results, publish_events

# Rendered in a child that reports its estimate and its measured peak, above its baseline.
MEASURE = """
import io, json, sys
from pathlib import Path
from s3thumbs.imaging import RenderSpec, decode_memory, render
from s3thumbs.resizing import engine
from s3thumbs.keys import Size

def high_water():
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) * 1024

data = Path(sys.argv[1]).read_bytes()
spec = RenderSpec((Size(128, 128), Size(512, 512), Size(1024, 1024)), max_decode_bytes=1 << 40)
estimate = decode_memory(io.BytesIO(data), spec)
engine()  # a pool process loads its resizer (libvips) when it starts, before any image
before = high_water()
render(io.BytesIO(data), spec)
print(json.dumps({"estimate": estimate, "peak": high_water() - before}))
"""


def _encoded(mode: str, size: tuple[int, int], fmt: str, **options: object) -> Callable[[], bytes]:
    def make() -> bytes:
        im = Image.linear_gradient("L").resize(size)
        return images.encode(im if mode == "L" else im.convert(mode), fmt, **options)

    return make


def _interlaced_png(mode: str, size: tuple[int, int]) -> bytes:
    """An Adam7-interlaced PNG (Pillow writes none; libvips does)."""
    import pyvips

    im = Image.linear_gradient("L").resize(size).convert(mode)
    packed = pyvips.Image.new_from_memory(im.tobytes(), *size, len(mode), "uchar")
    return bytes(packed.pngsave_buffer(interlace=True, compression=1))


INPUTS: dict[str, Callable[[], bytes]] = {
    "tall 1x20M png": lambda: hostile.tall_png(20_000_000),
    "tall 16-bit png": lambda: hostile.tall_png(10_000_000, bit_depth=16),
    "32-bit tiff 6000x6000": lambda: hostile.deep_tiff("I", (6000, 6000)),
    "float tiff 6000x6000": lambda: hostile.deep_tiff("F", (6000, 6000)),
    "16-bit tiff 6000x6000": lambda: hostile.deep_tiff("I;16", (6000, 6000)),
    "baseline jpeg 6000x4000": _encoded("RGB", (6000, 4000), "JPEG"),
    "progressive jpeg 6000x4000": _encoded("RGB", (6000, 4000), "JPEG", progressive=True),
    "progressive 4:4:4 jpeg 6000x4000": _encoded("RGB", (6000, 4000), "JPEG", progressive=True, subsampling=0),
    "cmyk progressive jpeg 4000x3000": _encoded("CMYK", (4000, 3000), "JPEG", progressive=True),
    "rgba png 4000x3000": _encoded("RGBA", (4000, 3000), "PNG"),
    "palette png 4000x3000": _encoded("P", (4000, 3000), "PNG", transparency=0),
    "la png 4000x3000": _encoded("LA", (4000, 3000), "PNG"),
    "1-bit png 8000x8000": _encoded("1", (8000, 8000), "PNG"),
    "webp 4000x3000": _encoded("RGB", (4000, 3000), "WEBP"),
    "webp rgba 4000x3000": _encoded("RGBA", (4000, 3000), "WEBP"),
    "tiff one strip 4000x3000": _encoded(
        "RGB", (4000, 3000), "TIFF", compression="tiff_adobe_deflate", strip_size=1 << 30
    ),
    "gif 4000x3000": _encoded("P", (4000, 3000), "GIF"),
    "bmp 4000x3000": _encoded("RGB", (4000, 3000), "BMP"),
    "big profile png": lambda: hostile.with_profile(hostile.swapped_profile(1 << 19)),
    "heic 4032x3024": lambda: phone.heic(Image.linear_gradient("L").resize((4032, 3024)).convert("RGB")),
    "heic tiled 4032x3024": lambda: phone.heic(
        Image.linear_gradient("L").resize((4032, 3024)).convert("RGB"), tile=512
    ),
    "heic 4:4:4 rgba 4000x3000": lambda: phone.heic(
        Image.linear_gradient("L").resize((4000, 3000)).convert("RGBA"), chroma=444
    ),
    "heic 10-bit 3000x2000": lambda: _ten_bit_heic((3000, 2000)),
    "avif 4000x3000": _encoded("RGB", (4000, 3000), "AVIF", speed=10),
    "avif 4:4:4 4000x3000": _encoded("RGB", (4000, 3000), "AVIF", speed=10, subsampling="4:4:4"),
    "avif grey 4000x3000": _encoded("L", (4000, 3000), "AVIF", speed=10),
}


def _ten_bit_heic(size: tuple[int, int]) -> bytes:
    grey = Image.linear_gradient("L").resize(size).convert("I").point(lambda v: v * 257).convert("I;16")
    raw = grey.tobytes("raw", "I;16")
    data = b"".join(raw[i : i + 2] * 3 for i in range(0, len(raw), 2))  # the grey in R, G and B
    buffer = io.BytesIO()
    pillow_heif.from_bytes("RGB;16", size, data).save(buffer, quality=50)
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("name", INPUTS)
def test_a_renders_measured_peak_never_exceeds_its_estimate(name, tmp_path):
    path = tmp_path / "source"
    path.write_bytes(INPUTS[name]())

    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    print(f"{name}: peak {measured['peak'] / MIB:.1f} MiB, estimate {measured['estimate'] / MIB:.1f} MiB")
    assert measured["peak"] <= measured["estimate"]


BUDGET_MIB = 256
# What the security review sent, sized past this test's budget, and images that fit in it.
REFUSED = {
    "tall.png": lambda: hostile.tall_png(),  # 1×100,000,000: 1.1 GiB of rows
    "deep32.tif": lambda: hostile.deep_tiff("I", (10000, 10000)),  # 400 MB of 32-bit grey
    "coefficients.jpg": _encoded("RGB", (8000, 8000), "JPEG", progressive=True, subsampling=0),  # 384 MB kept
}
RENDERED = {
    "deep16.tif": lambda: hostile.deep_tiff("I;16", (8000, 8000)),  # 128 MB, resized while still 16-bit
    # Decoded and premultiplied by Pillow: 2 × 80 MB. Interlaced, so Pillow decodes it: libvips takes
    # other big PNGs, and never holds them whole.
    "cutout.png": lambda: _interlaced_png("RGBA", (5000, 4000)),
    "profile.png": lambda: hostile.with_profile(hostile.swapped_profile(1 << 19)),
}


@pytest.mark.slow
def test_no_input_takes_a_worker_process_past_its_budget(moto_server_url, redis_factory, tmp_path):
    server = redis_factory()
    s3 = s3_client(moto_server_url)
    bucket = fresh_bucket(s3, "budget")
    etags = {key: upload(s3, bucket, key, make()) for key, make in {**REFUSED, **RENDERED}.items()}
    upload(s3, bucket, "warm-up.jpg", images.jpeg(640, 480))
    env = s3thumbs_env(
        broker_url=server.url_for(0),
        result_backend=server.url_for(1),
        s3_endpoint_url=moto_server_url,
        max_decode_mib=str(BUDGET_MIB),
    )
    with worker(env, tmp_path / "worker.log") as service, Results(env["S3THUMBS_RESULT_BACKEND"]) as results:
        # One small task first, so that the pool process has loaded what every task needs.
        [warm_up] = publish_events(server.url_for(0), [ObjectEvent("created", bucket, "warm-up.jpg", "test")])
        assert results.wait_ready(warm_up, 60).state == "SUCCESS"
        growth: dict[str, int] = {}
        with GroupSampler(service.process.pid) as sampler:
            for key, etag in etags.items():
                sampler.mark()
                [task] = publish_events(server.url_for(0), [ObjectEvent("created", bucket, key, "test", etag=etag)])
                result = results.wait_ready(task, 120)
                growth[key] = max(sampler.growth().values())
                if key in REFUSED:
                    assert result.state == "FAILURE", (key, result.result)
                    assert f"S3THUMBS_MAX_DECODE_MIB={BUDGET_MIB}" in str(result.result), (key, result.result)
                else:
                    assert result.state == "SUCCESS" and result.result["status"] == "written", (key, result.result)

    print({key: f"{grown / MIB:.0f} MiB" for key, grown in growth.items()})
    assert all(grown <= BUDGET_MIB * MIB for grown in growth.values()), growth
    # The estimate is not a free pass: what it lets through does use most of the budget.
    assert growth["cutout.png"] > BUDGET_MIB * MIB / 2
