from __future__ import annotations

import pytest

from s3thumbs.keys import Layout, Size, is_image_key, normalize_prefix, parse_sizes


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("128x128", [(128, 128)]),
        ("128x128,512x512,1024x1024", [(128, 128), (512, 512), (1024, 1024)]),
        (" 128x128 , 512 x 512 ", [(128, 128), (512, 512)]),
        ("64X32", [(64, 32)]),
        ("1x1", [(1, 1)]),
        ("300x200,100x100,300x200", [(300, 200), (100, 100)]),
        ("512x512,128x128", [(512, 512), (128, 128)]),
        ("128x128,128X128, 128x128", [(128, 128)]),
        ("200x100,100x200", [(200, 100), (100, 200)]),
        ("0128x064", [(128, 64)]),
    ],
)
def test_parse_sizes_keeps_order_and_drops_duplicates(given, expected):
    assert parse_sizes(given) == tuple(Size(w, h) for w, h in expected)


@pytest.mark.parametrize(
    "given",
    [
        "",
        " ",
        ",",
        "0x10",
        "10x0",
        "0x0",
        "10x",
        "x10",
        "abc",
        "-1x5",
        "5x-1",
        "10",
        "10x10x10",
        "10*10",
        "10 by 10",
        "1.5x2",
        "128x128,",
        ",128x128",
        "128x128,,512x512",
        "128x128;512x512",
        "+5x5",
        "0x5,5x5",
    ],
)
def test_parse_sizes_refuses_malformed_boxes(given):
    with pytest.raises(ValueError):
        parse_sizes(given)


def test_size_prints_as_wxh():
    assert str(Size(512, 256)) == "512x256"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("thumbnails/", "thumbnails/"),
        ("thumbnails", "thumbnails/"),
        ("thumbs/small", "thumbs/small/"),
        (" thumbs ", "thumbs/"),
        ("/thumbs/", "thumbs/"),
    ],
)
def test_normalize_prefix_ends_with_one_slash(given, expected):
    assert normalize_prefix(given) == expected


@pytest.mark.parametrize("given", ["", " ", "/", "//"])
def test_normalize_prefix_refuses_an_empty_prefix(given):
    with pytest.raises(ValueError):
        normalize_prefix(given)


@pytest.mark.parametrize(
    ("key", "content_type", "expected"),
    [
        ("a.jpg", None, True),
        ("a.jpeg", None, True),
        ("a.JPG", None, True),
        ("a.JpEg", None, True),
        ("a.png", None, True),
        ("a.PNG", None, True),
        ("a.gif", None, True),
        ("a.webp", None, True),
        ("a.tif", None, True),
        ("a.tiff", None, True),
        ("a.bmp", None, True),
        ("dir/sub/my photo+1\u00e9.jpg", None, True),
        ("archive.tar.jpg", None, True),
        ("a.txt", None, False),
        ("IMG_0001.HEIC", None, True),
        ("camera/A001.HIF", None, True),
        ("photo.heif", None, True),
        ("photo.avif", None, True),
        ("a.jpg.txt", None, False),
        ("notes.pdf", None, False),
        ("README", None, False),
        ("photo", None, False),
        ("dir.jpg/photo", None, False),
        ("jpg", None, False),
        ("a.jpg", "application/octet-stream", True),
        ("a.jpg", "binary/octet-stream", True),
        ("photo", "image/jpeg", True),
        ("photo", "IMAGE/PNG", True),
        ("a.txt", "image/png", True),
        ("upload.bin", "image/webp", True),
        ("photo", "application/octet-stream", False),
        ("a.txt", "text/plain", False),
        ("photo", "", False),
        ("photo", "imagey/png", False),
    ],
)
def test_is_image_key_by_extension_or_image_content_type(key, content_type, expected):
    assert is_image_key(key, content_type) is expected


@pytest.mark.parametrize(
    ("layout", "key", "size", "expected"),
    [
        (Layout(), "a.jpg", Size(128, 128), "thumbnails/128x128/a.jpg"),
        (Layout(), "a.jpg", Size(512, 256), "thumbnails/512x256/a.jpg"),
        (Layout(), "my photo+1.jpg", Size(128, 128), "thumbnails/128x128/my photo+1.jpg"),
        (
            Layout(),
            "dir/sub/deep/\u00e9t\u00e9 \u5199\u771f.png",
            Size(64, 64),
            "thumbnails/64x64/dir/sub/deep/\u00e9t\u00e9 \u5199\u771f.png",
        ),
        (Layout(), "a%2Bb.jpg", Size(128, 128), "thumbnails/128x128/a%2Bb.jpg"),
        (Layout(), "scan.tiff", Size(128, 128), "thumbnails/128x128/scan.tiff"),
        (Layout(), "anim.gif", Size(128, 128), "thumbnails/128x128/anim.gif"),
        (Layout(), "no-extension", Size(128, 128), "thumbnails/128x128/no-extension"),
        (Layout("out/small/"), "a.jpg", Size(32, 32), "out/small/32x32/a.jpg"),
        # An output bucket serves many source buckets: its keys carry the source bucket.
        (Layout("thumbnails/", "thumbs-bucket"), "dir/a.jpg", Size(128, 128), "thumbnails/128x128/photos/dir/a.jpg"),
    ],
)
def test_thumbnail_key_keeps_the_source_key_unchanged(layout, key, size, expected):
    assert layout.thumbnail_key("photos", key, size) == expected


def test_in_an_output_bucket_the_same_key_of_two_buckets_never_shares_a_thumbnail():
    layout = Layout("thumbnails/", "thumbs-bucket")
    size = Size(128, 128)

    assert layout.thumbnail_key("a", "photo.jpg", size) != layout.thumbnail_key("b", "photo.jpg", size)
    assert layout.thumbnail_key("a", "photo.jpg", size).startswith(layout.size_folder("a", size))
    assert not layout.thumbnail_key("b", "photo.jpg", size).startswith(layout.size_folder("a", size))


@pytest.mark.parametrize(
    ("layout", "bucket", "key", "expected"),
    [
        (Layout(), "photos", "thumbnails/128x128/a.jpg", True),
        (Layout(), "photos", "thumbnails/anything", True),
        (Layout(), "photos", "thumbnails/", True),
        (Layout(), "photos", "a.jpg", False),
        (Layout(), "photos", "thumbnails.jpg", False),
        (Layout(), "photos", "thumbnailsx/a.jpg", False),
        (Layout(), "photos", "originals/thumbnails/a.jpg", False),
        (Layout(), "photos", "Thumbnails/128x128/a.jpg", False),
        (Layout("out/"), "photos", "out/128x128/a.jpg", True),
        (Layout("out/"), "photos", "thumbnails/128x128/a.jpg", False),
        (Layout("thumbnails/", "thumbs-bucket"), "thumbs-bucket", "a.jpg", True),
        (Layout("thumbnails/", "thumbs-bucket"), "thumbs-bucket", "thumbnails/128x128/a.jpg", True),
        (Layout("thumbnails/", "thumbs-bucket"), "photos", "a.jpg", False),
        (Layout("thumbnails/", "thumbs-bucket"), "photos", "thumbnails/128x128/a.jpg", True),
    ],
)
def test_is_output_for_the_output_prefix_and_output_bucket(layout, bucket, key, expected):
    assert layout.is_output(bucket, key) is expected


def test_every_thumbnail_key_is_an_output():
    layout = Layout()
    for size in parse_sizes("128x128,512x512"):
        assert layout.is_output("photos", layout.thumbnail_key("photos", "dir/a.jpg", size))


@pytest.mark.parametrize(
    ("layout", "source", "expected"),
    [
        (Layout(), "photos", "photos"),
        (Layout("thumbnails/", "thumbs-bucket"), "photos", "thumbs-bucket"),
    ],
)
def test_output_bucket_is_the_source_bucket_unless_set(layout, source, expected):
    assert layout.output_bucket(source) == expected
