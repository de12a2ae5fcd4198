"""The command line, in-process: help, version, and one-shot thumbnails on moto's mock S3."""

from __future__ import annotations

from s3thumbs import __version__
from s3thumbs.cli.main import main
from tests.support import images


def test_version_and_help_on_every_command(cli_runner):
    assert __version__ in cli_runner.invoke(main, ["--version"]).output
    for command in ("receiver", "worker", "thumbnail", "backfill", "dev"):
        result = cli_runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_thumbnail_renders_one_object_and_prints_the_keys(cli_runner, mocked_s3):
    mocked_s3.put_object(Bucket="photos", Key="trip/day one+1.jpg", Body=images.jpeg(2000, 1000))
    result = cli_runner.invoke(
        main, ["thumbnail", "photos", "trip/day one+1.jpg"], env={"S3THUMBS_SIZES": "100x100,400x400"}
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "s3://photos/thumbnails/100x100/trip/day one+1.jpg  100x50  "
        + size_of(mocked_s3, "100x100/trip/day one+1.jpg"),
        "s3://photos/thumbnails/400x400/trip/day one+1.jpg  400x200  "
        + size_of(mocked_s3, "400x400/trip/day one+1.jpg"),
    ]
    again = cli_runner.invoke(
        main, ["thumbnail", "photos", "trip/day one+1.jpg"], env={"S3THUMBS_SIZES": "100x100,400x400"}
    )
    assert again.exit_code == 0
    assert all(line.endswith("(current)") for line in again.output.splitlines())


def size_of(s3, key: str) -> str:
    return f"{s3.head_object(Bucket='photos', Key='thumbnails/' + key)['ContentLength']} bytes"


def test_thumbnail_of_a_bad_image_exits_non_zero_with_the_reason(cli_runner, mocked_s3):
    mocked_s3.put_object(Bucket="photos", Key="broken.jpg", Body=images.jpeg(500, 500)[:300])
    result = cli_runner.invoke(main, ["thumbnail", "photos", "broken.jpg"])
    assert result.exit_code == 1
    assert "s3://photos/broken.jpg: cannot decode image" in result.output
    assert "Contents" not in mocked_s3.list_objects_v2(Bucket="photos", Prefix="thumbnails/")


def test_thumbnail_of_a_missing_object_says_so(cli_runner, mocked_s3):
    result = cli_runner.invoke(main, ["thumbnail", "photos", "nope.jpg"])
    assert result.exit_code == 1
    assert "gone" in result.output


def test_receiver_refuses_an_open_public_address(cli_runner):
    result = cli_runner.invoke(main, ["receiver", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "S3THUMBS_AUTH_TOKEN" in result.output
