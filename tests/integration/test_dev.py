"""``s3thumbs dev`` as a user runs it: a subprocess, an upload through what it printed, Ctrl-C."""

from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import boto3
import httpx
from PIL import Image

from tests.support import images
from tests.support.buckets import object_exists
from tests.support.processes import group_alive, run_s3thumbs, s3thumbs_env, wait_for


def read_lines(stream, into: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        into.put(line.rstrip("\n"))


@contextmanager
def dev(
    tmp_path, env: dict[str, str], *args: str
) -> Iterator[tuple[subprocess.Popen, Callable[[str], dict[str, str]]]]:
    """``s3thumbs dev`` in its own process group; yields it and ``printed(until)``, which reads its
    ``name: value`` lines until one named ``until`` has come, and returns them all."""
    with (tmp_path / "dev.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "s3thumbs", "dev", *args],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    seen: dict[str, str] = {}

    def printed(until: str) -> dict[str, str]:
        while until not in seen:
            name, _, value = lines.get(timeout=60).partition(": ")
            seen[name] = value
        return seen

    try:
        yield process, printed
    finally:
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
        process.stdout.close()


def s3_of(printed: dict[str, str]):
    """A client of dev's embedded S3, with the endpoint and credentials it printed."""
    return boto3.client(
        "s3",
        endpoint_url=printed["S3 endpoint"],
        region_name="us-east-1",
        aws_access_key_id=printed["access key"],
        aws_secret_access_key=printed["secret key"],
    )


def test_dev_runs_the_whole_pipeline_and_ctrl_c_leaves_nothing(tmp_path):
    env = s3thumbs_env()
    env.pop("AWS_ACCESS_KEY_ID")
    env.pop("AWS_SECRET_ACCESS_KEY")
    with dev(tmp_path, env) as (process, read):
        printed = read("upload")
        assert printed["bucket"] == "uploads"
        assert printed["upload"].endswith(
            "aws --endpoint-url " + printed["S3 endpoint"] + " s3 cp photo.jpg s3://uploads/photo.jpg"
        )
        s3 = s3_of(printed)
        s3.put_object(Bucket="uploads", Key="holiday/beach day.jpg", Body=images.jpeg(1600, 1200))
        for size, dims in {"128x128": (128, 96), "512x512": (512, 384), "1024x1024": (1024, 768)}.items():
            key = f"thumbnails/{size}/holiday/beach day.jpg"
            wait_for(lambda key=key: object_exists(s3, "uploads", key), 30, key)
            body = s3.get_object(Bucket="uploads", Key=key)["Body"].read()
            assert Image.open(io.BytesIO(body)).size == dims

        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
        wait_for(lambda: not group_alive(process.pid), 5, "every process of the group to exit")


def test_dev_demo_uploads_every_kind_and_the_gallery_shows_each_outcome(tmp_path):
    from s3thumbs.demo import DEMO_IMAGES

    with dev(tmp_path, s3thumbs_env(), "--demo") as (process, read):
        printed = read("demo")
        assert printed["demo"].startswith("uploaded")
        gallery = printed["gallery"]

        def outcomes() -> dict[str, str]:
            items = httpx.get(gallery + "gallery.json", timeout=5).json()["items"]
            return {item["key"]: item["status"] for item in items}

        wait_for(
            lambda: set(outcomes().values()) <= {"written", "failed"} and len(outcomes()) == len(DEMO_IMAGES),
            60,
            "every demo image to be done or failed",
        )
        statuses = outcomes()
        assert statuses.pop("demo/not really an image.jpg") == "failed"
        assert set(statuses) == set(DEMO_IMAGES) - {"demo/not really an image.jpg"}
        assert set(statuses.values()) == {"written"}
        assert "<script>" in httpx.get(gallery, timeout=5).text
        # The phone formats as the gallery shows them: upright (sky above the hills), portrait, in colour.
        s3 = s3_of(printed)
        for key, content_type in (("demo/iPhone portrait.heic", "image/jpeg"), ("demo/portrait.avif", "image/avif")):
            thumbnail = s3.get_object(Bucket="uploads", Key=f"thumbnails/1024x1024/{key}")
            assert thumbnail["ContentType"] == content_type
            picture = Image.open(io.BytesIO(thumbnail["Body"].read())).convert("RGB")
            assert picture.size == (682, 1024)
            sky, hills = picture.getpixel((341, 40)), picture.getpixel((341, 1000))
            assert sky[2] > 200 and sky[2] > sky[1] > sky[0], f"{key}: {sky} is not the sky"
            assert hills[1] > 100 and hills[1] > hills[0] + 40 and hills[1] > hills[2] + 40, f"{key}: {hills}"

        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_dev_on_a_public_address_refuses_to_start_without_a_token():
    # Like `s3thumbs receiver`: anyone who reaches 0.0.0.0 could publish tasks and read the gallery.
    result = run_s3thumbs(s3thumbs_env(), "dev", "--host", "0.0.0.0", timeout=60)

    assert result.returncode != 0
    assert "S3THUMBS_AUTH_TOKEN" in result.stderr
    assert "S3 endpoint" not in result.stdout
