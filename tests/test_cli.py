from __future__ import annotations

import base64
import io
import json

import pytest
from click.testing import CliRunner
from PIL import Image

from s3thumbs import __version__
from s3thumbs.cli.main import main
from s3thumbs.imaging import RenderSpec
from s3thumbs.keys import Size


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "orange").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def runner(monkeypatch):
    for name in ("S3THUMBS_BROKER_URL", "S3THUMBS_RESULT_BACKEND", "S3THUMBS_S3_ENDPOINT_URL",
                 "S3THUMBS_SIZES", "S3THUMBS_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_version_and_help_on_every_command(runner):
    assert __version__ in runner.invoke(main, ["--version"]).output
    for command in ("receiver", "worker", "thumbnail", "backfill", "dev"):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_thumbnail_renders_one_object_and_prints_the_keys(runner, s3):
    s3.put_object(Bucket="photos", Key="trip/day one+1.jpg", Body=jpeg(2000, 1000))
    result = runner.invoke(main, ["thumbnail", "photos", "trip/day one+1.jpg"],
                           env={"S3THUMBS_SIZES": "100x100,400x400"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "s3://photos/thumbnails/100x100/trip/day one+1.jpg  100x50  " + size_of(s3, "100x100/trip/day one+1.jpg"),
        "s3://photos/thumbnails/400x400/trip/day one+1.jpg  400x200  " + size_of(s3, "400x400/trip/day one+1.jpg"),
    ]
    again = runner.invoke(main, ["thumbnail", "photos", "trip/day one+1.jpg"],
                          env={"S3THUMBS_SIZES": "100x100,400x400"})
    assert again.exit_code == 0
    assert all(line.endswith("(current)") for line in again.output.splitlines())


def size_of(s3, key: str) -> str:
    return f"{s3.head_object(Bucket='photos', Key='thumbnails/' + key)['ContentLength']} bytes"


def test_thumbnail_of_a_bad_image_exits_non_zero_with_the_reason(runner, s3):
    s3.put_object(Bucket="photos", Key="broken.jpg", Body=jpeg(500, 500)[:300])
    result = runner.invoke(main, ["thumbnail", "photos", "broken.jpg"])
    assert result.exit_code == 1
    assert "s3://photos/broken.jpg: cannot decode image" in result.output
    assert "Contents" not in s3.list_objects_v2(Bucket="photos", Prefix="thumbnails/")


def test_thumbnail_of_a_missing_object_says_so(runner, s3):
    result = runner.invoke(main, ["thumbnail", "photos", "nope.jpg"])
    assert result.exit_code == 1
    assert "gone" in result.output


def test_backfill_enqueues_only_images_lacking_thumbnails(runner, s3, redis_server):
    redis = redis_server.client(4)
    redis.flushdb()
    env = {"S3THUMBS_BROKER_URL": redis_server.url_for(4), "S3THUMBS_SIZES": "64x64"}
    for name in ("a.jpg", "b.jpg", "c.png", "d.jpg", "readme.txt"):
        s3.put_object(Bucket="photos", Key=f"in/{name}", Body=b"x")
    etag = s3.head_object(Bucket="photos", Key="in/a.jpg")["ETag"].strip('"')
    s3.put_object(Bucket="photos", Key="thumbnails/64x64/in/a.jpg", Body=b"t",
                  Metadata={"s3thumbs-source-etag": etag,
                            "s3thumbs-settings": RenderSpec((Size(64, 64),)).fingerprint})
    s3.put_object(Bucket="photos", Key="other/e.jpg", Body=b"x")

    dry = runner.invoke(main, ["backfill", "photos", "--prefix", "in/", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "4 images: 1 current, 3 missing, 0 stale, 0 failed for good; would enqueue 3" in dry.output
    assert redis.llen("s3thumbs") == 0

    result = runner.invoke(main, ["backfill", "photos", "--prefix", "in/"], env=env)
    assert result.exit_code == 0, result.output
    assert "enqueued 3" in result.output
    messages = [json.loads(raw) for raw in redis.lrange("s3thumbs", 0, -1)]
    tasks = sorted((m["headers"]["task"], tuple(json.loads(base64.b64decode(m["body"]))[0])) for m in messages)
    assert tasks == [("s3thumbs.thumbnail", ("photos", f"in/{name}")) for name in ("b.jpg", "c.png", "d.jpg")]


def test_receiver_refuses_an_open_public_address(runner):
    result = runner.invoke(main, ["receiver", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "S3THUMBS_AUTH_TOKEN" in result.output
