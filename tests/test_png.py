"""Big 8-bit PNGs decoded and resized by libvips in one pass (the ``fast`` extra): Pillow's Lanczos from
the whole image within rounding, thumbnails as Pillow alone makes them, and every PNG libvips could
read differently left to Pillow."""

from __future__ import annotations

import io
import math
import struct
import zlib

import pytest
from PIL import Image, ImageChops, ImageStat, PngImagePlugin

from s3thumbs import png, resizing
from s3thumbs.errors import BadImage
from s3thumbs.imaging import RenderSpec, render
from s3thumbs.keys import Size
from tests.support import images
from tests.support.rendering import assert_upright, decoded

PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}
BOXES = (Size(1024, 1024), Size(512, 512), Size(128, 128))


def photo(size: tuple[int, int], mode: str) -> Image.Image:
    """Noise over gradients and edges, in ``mode``; alpha from transparent to opaque where it has one."""
    noise = Image.effect_noise(size, 60)
    rgb = Image.merge("RGB", (Image.linear_gradient("L").resize(size), noise, images.pattern(*size, "L")))
    if mode in PREMULTIPLIED:
        alpha = Image.radial_gradient("L").resize(size)
        return Image.merge(mode, (*rgb.convert(mode[:-1]).split(), alpha))
    return rgb.convert(mode)


def png_bytes(im: Image.Image, **options: object) -> bytes:
    return images.encode(im, "PNG", compress_level=1, **options)


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk) of each chunk of a PNG, in file order."""
    found, position = [], 8
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        found.append((data[position + 4 : position + 8], data[position : position + 12 + length]))
        position += 12 + length
    return found


def moved_after_pixels(data: bytes, kind: bytes) -> bytes:
    """The PNG with its ``kind`` chunk moved from before the pixel data to just before IEND."""
    parts = chunks(data)
    moved = [whole for k, whole in parts if k == kind]
    assert moved, f"no {kind!r} chunk to move"
    kept = [whole for k, whole in parts if k not in (kind, b"IEND")]
    return data[:8] + b"".join(kept + moved + [whole for k, whole in parts if k == b"IEND"])


def interlaced_png(im: Image.Image) -> bytes:
    """``im`` as an Adam7-interlaced PNG (Pillow writes none: libvips does)."""
    import pyvips

    packed = pyvips.Image.new_from_memory(im.tobytes(), im.width, im.height, len(im.getbands()), "uchar")
    return bytes(packed.pngsave_buffer(interlace=True, compression=1))


def resized(data: bytes, size: tuple[int, int]) -> Image.Image | None:
    source = io.BytesIO(data)
    with Image.open(source) as im:
        return png.resized_on_load(im, source, len(data), size)


def premultiplied_psnr(a: bytes, b: bytes) -> float:
    """PSNR of two thumbnails compared premultiplied: the colour of a nearly transparent pixel hardly shows."""
    first, second = (Image.open(io.BytesIO(data)) for data in (a, b))
    mode = PREMULTIPLIED.get(first.mode, first.mode)
    stat = ImageStat.Stat(ImageChops.difference(first.convert(mode), second.convert(mode)))
    squared = sum(stat.sum2) / (first.width * first.height * len(stat.sum2))
    return 10 * math.log10(255**2 / squared) if squared else math.inf


def render_without_libvips(data: bytes, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    with monkeypatch.context() as patched:
        patched.setattr(resizing, "libvips", lambda: None)
        return [t.body for t in render(io.BytesIO(data), RenderSpec(BOXES)).thumbnails]


def psnr(a: Image.Image, b: Image.Image) -> float:
    stat = ImageStat.Stat(ImageChops.difference(a, b))
    squared = sum(stat.sum2) / (a.width * a.height * len(stat.sum2))
    return 10 * math.log10(255**2 / squared) if squared else math.inf


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize(
    ("size", "target"),
    [
        ((1601, 1199), (410, 307)),  # 3.9x, sides not multiples of anything
        ((3002, 2000), (770, 513)),
        ((1000, 3005), (256, 770)),
        ((2000, 1500), (1540, 1155)),  # 1.3x: Pillow alone would filter without a box
        ((3200, 2400), (256, 192)),  # 12.5x: a box by 6 first, then the filter
    ],
)
def test_a_big_png_is_resized_on_load_as_pillows_lanczos(mode, size, target):
    im = photo(size, mode)

    out = resized(png_bytes(im), target)

    assert out is not None
    premultiplied = im.convert(PREMULTIPLIED.get(mode, mode))
    expected = premultiplied.resize(target, Image.Resampling.LANCZOS, reducing_gap=png.REDUCING_GAP)
    assert (out.mode, out.size) == (expected.mode, expected.size)
    assert psnr(out, expected) > 50
    assert max(ImageStat.Stat(ImageChops.difference(out, expected)).mean) < 0.5


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "LA"])
def test_a_big_png_renders_as_pillow_alone_renders_it(mode, monkeypatch):
    im = photo((3200, 2400), mode)
    data = png_bytes(im)
    assert resized(data, (1024, 768)) is not None  # the libvips path

    fast = [t.body for t in render(io.BytesIO(data), RenderSpec(BOXES)).thumbnails]
    alone = render_without_libvips(data, monkeypatch)

    assert [Image.open(io.BytesIO(t)).size for t in fast] == [Image.open(io.BytesIO(t)).size for t in alone]
    exact = im.convert(PREMULTIPLIED.get(mode, mode)).resize((1024, 768), Image.Resampling.LANCZOS)
    exact_png = images.encode(exact.convert(mode), "PNG")
    # Pillow alone box-reduces by 3 before its filter; libvips filters the whole image, as the reference.
    assert premultiplied_psnr(fast[0], exact_png) > 50
    assert premultiplied_psnr(fast[0], exact_png) > premultiplied_psnr(alone[0], exact_png)


XMP_TURNED = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
)


def turned(where: str) -> bytes:
    """A 1600×1200 picture stored on its side, orientation 6 written ``where``."""
    picture = images.stored(images.pattern(1200, 1600), 6)
    if where == "eXIf chunk":
        return png_bytes(picture, exif=images.exif(6))
    if where == "eXIf chunk after the pixels":
        return moved_after_pixels(png_bytes(picture, exif=images.exif(6)), b"eXIf")
    info = PngImagePlugin.PngInfo()
    if where == "ImageMagick's text chunk":
        exif = images.exif(6).tobytes()
        info.add_text("Raw profile type exif", f"\nexif\n{len(exif):8d}\n{exif.hex()}\n")
    else:
        info.add_itxt(
            "XML:com.adobe.xmp",
            XMP_TURNED,
        )
    return png_bytes(picture, pnginfo=info)


@pytest.mark.parametrize(
    ("where", "on_libvips"),
    [
        ("eXIf chunk", True),
        ("eXIf chunk after the pixels", False),  # Pillow finds it only by decoding
        ("ImageMagick's text chunk", False),  # Pillow reads these itself, libvips would not
        ("XMP", False),
    ],
)
def test_an_orientation_turns_the_picture_wherever_pillow_finds_it(where, on_libvips):
    data = turned(where)
    assert (resized(data, (512, 384)) is not None) == on_libvips

    [thumbnail] = render(io.BytesIO(data), RenderSpec((Size(512, 512),))).thumbnails

    assert (thumbnail.width, thumbnail.height) == (384, 512)
    assert_upright(decoded(thumbnail))


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def text_chunk() -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "written after the pixels")
    return info


def big_png(mode: str = "RGB", **options: object) -> bytes:
    return png_bytes(photo((1600, 1200), mode), **options)


def animated_png() -> bytes:
    frames = [photo((1600, 1200), "RGB"), images.pattern(1600, 1200)]
    return images.encode(frames[0], "PNG", save_all=True, append_images=frames[1:], compress_level=1)


def with_frame_control(data: bytes) -> bytes:
    """The PNG with an APNG frame-control chunk before its pixels: Pillow reads them as a smaller frame."""
    control = struct.pack(">IIIIIHHBB", 0, 800, 600, 100, 100, 1, 10, 0, 0)
    parts = chunks(data)
    return data[:8] + parts[0][1] + chunk(b"fcTL", control) + b"".join(whole for _, whole in parts[1:])


def four_bit_grey(width: int = 1600, height: int = 1200) -> bytes:
    row = b"\x00" + bytes(range(256)) * (width // 2 // 256) + bytes(width // 2 % 256)
    return images.raw_png(width, height, 4, 0, zlib.compress(row * height, 1))


def in_empty_chunks(data: bytes, count: int) -> bytes:
    """The PNG with ``count`` empty IDAT chunks after its pixel data (valid, and pointless)."""
    parts = chunks(data)
    return data[:8] + b"".join(whole for _, whole in parts[:-1]) + chunk(b"IDAT", b"") * count + parts[-1][1]


def with_crc_broken(data: bytes, kind: bytes) -> bytes:
    parts = chunks(data)
    return data[:8] + b"".join(whole[:-4] + bytes(4) if k == kind else whole for k, whole in parts)


def sixteen_bit_rgba(width: int = 1600, height: int = 1200) -> bytes:
    row = b"\x00" + bytes(range(256)) * (width * 8 // 256)
    return images.raw_png(width, height, 16, 6, zlib.compress(row * height, 1))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(sixteen_bit_rgba(), id="16-bit RGBA (Pillow's mode says RGBA)"),
        pytest.param(big_png(transparency=(0, 0, 0)), id="RGB with a tRNS colour"),
        pytest.param(png_bytes(photo((1600, 1200), "RGB").convert("P")), id="palette"),
        pytest.param(moved_after_pixels(big_png(pnginfo=text_chunk()), b"tEXt"), id="text after pixels"),
        pytest.param(big_png()[:-12], id="no IEND"),
        pytest.param(png_bytes(photo((600, 450), "RGBA")), id="too small to gain"),
        pytest.param(four_bit_grey(), id="4 bits a sample"),
        pytest.param(interlaced_png(photo((1600, 1200), "RGB")), id="interlaced (libvips holds it whole)"),
        pytest.param(animated_png(), id="animated"),
        pytest.param(with_frame_control(big_png()), id="a frame's region without an animation"),
    ],
)
def test_what_libvips_could_read_differently_is_left_to_pillow(data):
    assert resized(data, (512, 384)) is None


def test_a_png_twenty_times_wider_than_tall_is_left_to_pillow():
    assert resized(png_bytes(photo((4000, 200), "RGB")), (1024, 51)) is None
    assert resized(png_bytes(photo((4000, 400), "RGB")), (1024, 102)) is not None  # ten times


def test_a_reduction_under_a_quarter_is_pillows():
    data = big_png()

    assert resized(data, (1200, 900)) is not None
    assert resized(data, (1400, 1050)) is None


def test_a_file_over_the_size_libvips_may_inflate_is_left_to_pillow(monkeypatch):
    data = big_png()
    assert resized(data, (512, 384)) is not None

    monkeypatch.setattr(png, "MAX_FILE_BYTES", len(data) - 1)

    assert resized(data, (512, 384)) is None


def test_a_file_in_more_chunks_than_a_writer_makes_is_left_to_pillow(monkeypatch):
    data = in_empty_chunks(big_png("L"), 200)  # valid: libvips reads it
    assert resized(data, (512, 384)) is not None

    monkeypatch.setattr(png, "MAX_CHUNKS", 100)

    assert resized(data, (512, 384)) is None


def test_a_file_larger_than_its_pixels_is_not_read_into_memory():
    pixels = photo((1000, 1000), "L")  # 1 MB of pixels, behind 2 MB of a private chunk
    data = png_bytes(pixels)
    padded = data[:33] + chunk(b"prVt", bytes(2 << 20)) + data[33:]

    assert resized(padded, (256, 256)) is None


def with_pixels_garbled(data: bytes) -> bytes:
    """The PNG with the middle of its deflated pixels overwritten (the chunk's CRC made right again)."""
    parts = []
    for kind, whole in chunks(data):
        if kind == b"IDAT":
            body = bytearray(whole[8:-4])
            body[len(body) // 2 : len(body) // 2 + 64] = bytes(range(64))
            whole = chunk(kind, bytes(body))
        parts.append(whole)
    return data[:8] + b"".join(parts)


def with_pixels_cut_short(data: bytes) -> bytes:
    """The PNG with its pixel data halved, every chunk whole: the file ends as it should."""
    deflated = b"".join(whole[8:-4] for kind, whole in chunks(data) if kind == b"IDAT")
    head = b"".join(whole for kind, whole in chunks(data) if kind not in (b"IDAT", b"IEND"))
    return data[:8] + head + chunk(b"IDAT", deflated[: len(deflated) // 2]) + chunk(b"IEND", b"")


def outcome(data: bytes, monkeypatch: pytest.MonkeyPatch | None = None) -> list[bytes] | str:
    try:
        if monkeypatch is not None:
            return render_without_libvips(data, monkeypatch)
        return [t.body for t in render(io.BytesIO(data), RenderSpec(BOXES)).thumbnails]
    except BadImage as e:
        return str(e)


@pytest.mark.parametrize(
    ("data", "renders"),
    [
        pytest.param(with_crc_broken(big_png("RGBA"), b"IDAT"), True, id="pixels with a wrong CRC"),
        pytest.param(with_pixels_garbled(big_png("RGBA")), False, id="pixels that do not inflate"),
        pytest.param(with_pixels_cut_short(big_png("RGBA")), False, id="pixels cut short"),
    ],
)
def test_a_png_libvips_refuses_is_pillows_to_judge(data, renders, monkeypatch):
    assert resized(data, (1024, 768)) is None

    fast, alone = outcome(data), outcome(data, monkeypatch)

    assert isinstance(fast, list) == isinstance(alone, list) == renders, (fast, alone)
    if isinstance(fast, list) and isinstance(alone, list):
        assert all(premultiplied_psnr(a, b) > 50 for a, b in zip(fast, alone, strict=True))
    else:
        assert fast == alone


class NoWholeReads(io.BufferedReader):
    """A file on disk that fails any read of the whole rest of it into memory."""

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None and size >= 0, "the whole file read into memory"
        return super().read(size)


@pytest.mark.parametrize(
    ("data", "libvips_resizes"),
    [
        pytest.param(big_png("RGBA"), True, id="resized"),
        pytest.param(with_pixels_garbled(big_png("RGBA")), False, id="refused after reading"),
    ],
)
def test_a_png_on_disk_is_read_in_place_with_the_outcome_of_one_in_memory(tmp_path, data, libvips_resizes):
    assert (resized(data, (1024, 768)) is not None) == libvips_resizes
    (tmp_path / "big.png").write_bytes(data)

    with NoWholeReads(io.FileIO(tmp_path / "big.png")) as on_disk:
        try:
            from_disk: list[bytes] | str = [t.body for t in render(on_disk, RenderSpec(BOXES)).thumbnails]
        except BadImage as e:
            from_disk = str(e)

    assert from_disk == outcome(data)
