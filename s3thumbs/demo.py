"""``s3thumbs dev --demo``: one generated image of every kind s3thumbs handles, and one it refuses.

Made with Pillow (and pillow-heif) on the spot, nothing downloaded: a phone photo stored sideways
with EXIF orientation 6, an iPhone-style tiled HEIC and an AVIF, both turned by their container, a
progressive JPEG, a CMYK print file, a PNG cut-out with transparency, an animated
GIF, a WebP, a 16-bit TIFF scan, a BMP icon, an image smaller than every box, and a file that is
not an image at all, so the gallery shows a failure with its reason too.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageDraw

from s3thumbs.formats import HEIF_EXTRA

SIZE = (1600, 1066)


def _scene(size: tuple[int, int] = SIZE, hue: int = 0) -> Image.Image:
    """A sky-and-hills picture with a sun: smooth gradients and hard edges, recognisable upright."""
    width, height = size
    sky = Image.linear_gradient("L").resize((width, height))
    image = Image.merge(
        "RGB",
        (
            sky.point(lambda v: 40 + v // 3 + hue % 60),
            sky.point(lambda v: 90 + v // 3),
            sky.point(lambda v: 255 - v // 4),
        ),
    )
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.68, height * 0.08, width * 0.84, height * 0.32), fill=(255, 214, 64))
    draw.polygon(
        [
            (0, height),
            (0, height * 0.62),
            (width * 0.3, height * 0.45),
            (width * 0.62, height * 0.7),
            (width, height * 0.5),
            (width, height),
        ],
        fill=(46, 125, 50),
    )
    draw.rectangle((width * 0.08, height * 0.7, width * 0.22, height * 0.9), fill=(121, 85, 72))
    draw.polygon(
        [(width * 0.06, height * 0.7), (width * 0.15, height * 0.58), (width * 0.24, height * 0.7)], fill=(183, 28, 28)
    )
    return image


def _encode(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def _phone_photo() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned left, shown upright: the thumbnail must be portrait
    portrait = _scene((1066, 1600))
    return _encode(portrait.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif.tobytes())


def _iphone_photo() -> bytes:
    """A portrait HEIC as an iPhone writes it: a grid of 512-pixel tiles stored sideways, turned back
    by the container's ``irot`` and, again, by its EXIF orientation 6 (applied once, not twice)."""
    import pillow_heif  # the heif extra; without it the demo skips this one

    exif = Image.Exif()
    exif[0x0112] = 6
    stored = _scene((1066, 1600), hue=30).transpose(Image.Transpose.ROTATE_90)
    buffer = io.BytesIO()
    pillow_heif.from_pillow(stored).save(buffer, quality=80, tile_size=512, exif=exif.tobytes())
    return buffer.getvalue()


def _avif_photo() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8  # written as the container's irot: shown upright, the thumbnail is portrait
    portrait = _scene((1066, 1600), hue=50)
    return _encode(portrait.transpose(Image.Transpose.ROTATE_270), "AVIF", quality=70, exif=exif.tobytes())


def _cutout() -> bytes:
    image = _scene((1200, 900)).convert("RGBA")
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((100, 50, 1100, 850), fill=255)
    image.putalpha(mask)
    return _encode(image, "PNG")


def _animation() -> bytes:
    frames = [_scene((480, 320), hue=step * 20).quantize(64) for step in range(4)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)


def _scan() -> bytes:
    gradient = Image.linear_gradient("L").resize((1400, 1000)).rotate(90, expand=True)
    return _encode(gradient.convert("I").point(lambda v: v * 257).convert("I;16"), "TIFF")


DEMO_IMAGES: dict[str, Callable[[], bytes]] = {
    "demo/phone photo (EXIF 6).jpg": _phone_photo,
    "demo/landscape progressive.jpg": lambda: _encode(_scene(), "JPEG", quality=88, progressive=True),
    "demo/print CMYK.jpg": lambda: _encode(_scene().convert("CMYK"), "JPEG", quality=90),
    "demo/cut-out with alpha.png": _cutout,
    "demo/animated.gif": _animation,
    "demo/photo.webp": lambda: _encode(_scene((1200, 800)), "WEBP", quality=85),
    "demo/iPhone portrait.heic": _iphone_photo,
    "demo/portrait.avif": _avif_photo,
    "demo/scan 16-bit.tiff": _scan,
    "demo/icon.bmp": lambda: _encode(_scene((96, 64)), "BMP"),
    "demo/tiny.png": lambda: _encode(_scene((40, 30)), "PNG"),
    "demo/not really an image.jpg": lambda: b"This is text, not a JPEG: s3thumbs refuses it and says why.\n",
}


def upload_demo(s3: Any, bucket: str, show: Callable[[str], None]) -> None:
    """Upload every demo image to ``bucket``; each upload's notification starts its thumbnails."""
    uploaded = 0
    for key, make in DEMO_IMAGES.items():
        try:
            body = make()
        except ImportError:
            show(f"demo: skipped {key}: the heif extra is not installed ({HEIF_EXTRA})")
            continue
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        uploaded += 1
    show(f"demo: uploaded {uploaded} images to s3://{bucket}/demo/")
