"""The manifest: written after every size, describing them; what makes a source "ready" or work left."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from s3thumbs.thumbnailer import delete_thumbnails, make_thumbnails
from tests.support import images
from tests.support.buckets import upload
from tests.support.jobs import make_job

BUCKET = "photos"


@pytest.fixture
def puts(mocked_s3) -> list[str]:
    """The keys written, in the order their PUTs were sent."""
    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["Key"])

    mocked_s3.meta.events.register("before-parameter-build.s3.PutObject", record)
    return sent


def manifest_of(s3: Any, key: str, bucket: str = BUCKET, prefix: str = "thumbnails/") -> tuple[dict[str, Any], Any]:
    got = s3.get_object(Bucket=bucket, Key=f"{prefix}manifest/{key}.json")
    return json.loads(got["Body"].read()), got


def test_the_manifest_comes_last_and_says_what_was_written(mocked_s3, mocked_storage, puts):
    key = "DCIM/IMG 0001 ü.JPG"
    etag = upload(mocked_s3, BUCKET, key, images.phone_jpeg())  # stored 400×300, shown 300×400
    job = make_job()
    puts.clear()

    outcome = make_thumbnails(mocked_storage, job, BUCKET, key)

    assert puts[-1] == f"thumbnails/manifest/{key}.json"
    assert sorted(puts[:-1]) == sorted(t.key for t in outcome.thumbnails)
    manifest, got = manifest_of(mocked_s3, key)
    assert got["ContentType"] == "application/json"
    assert got["Metadata"] == {"s3thumbs-source-etag": etag, "s3thumbs-settings": job.spec.fingerprint}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest.pop("rendered_at"))
    thumbhash = manifest.pop("thumbhash")
    assert manifest == {
        "bucket": BUCKET,
        "key": key,
        "source_etag": etag,
        "settings": job.spec.fingerprint,
        "width": 300,
        "height": 400,
        "thumbnails": [
            {
                "key": t.key,
                "box": box,
                "fit": "inside",
                "width": t.width,
                "height": t.height,
                "bytes": t.bytes,
                "content_type": "image/jpeg",
            }
            for box, t in zip(("128x128", "512x512", "1024x1024"), outcome.thumbnails, strict=True)
        ],
    }
    for thumb in outcome.thumbnails:
        head = mocked_s3.head_object(Bucket=BUCKET, Key=thumb.key)
        assert head["Metadata"]["s3thumbs-thumbhash"] == thumbhash
        assert head["ContentLength"] == thumb.bytes
    assert outcome.manifest is not None and outcome.manifest["thumbhash"] == thumbhash


def test_with_an_output_bucket_the_manifest_carries_the_source_bucket(mocked_s3, mocked_storage):
    mocked_s3.create_bucket(Bucket="thumbs")
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))

    make_thumbnails(mocked_storage, make_job(out_bucket="thumbs"), BUCKET, "p.jpg")

    manifest, _ = manifest_of(mocked_s3, f"{BUCKET}/p.jpg", bucket="thumbs")
    assert (manifest["bucket"], manifest["key"]) == (BUCKET, "p.jpg")
    boxes = ("128x128", "512x512", "1024x1024")
    assert [t["key"] for t in manifest["thumbnails"]] == [f"thumbnails/{box}/{BUCKET}/p.jpg" for box in boxes]


def test_the_manifest_is_deleted_with_the_thumbnails(mocked_s3, mocked_storage):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))
    job = make_job()
    make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    mocked_s3.delete_object(Bucket=BUCKET, Key="p.jpg")

    delete_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert mocked_s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


@pytest.mark.parametrize("damage", ["deleted", "stale"])
def test_a_missing_or_stale_manifest_is_rendered_again(mocked_s3, mocked_storage, damage):
    upload(mocked_s3, BUCKET, "p.jpg", images.jpeg(300, 200))
    job = make_job()
    make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")
    manifest_key = "thumbnails/manifest/p.jpg.json"
    if damage == "deleted":
        mocked_s3.delete_object(Bucket=BUCKET, Key=manifest_key)
    else:  # left by an earlier upload of the same key
        mocked_s3.copy_object(
            Bucket=BUCKET,
            Key=manifest_key,
            CopySource={"Bucket": BUCKET, "Key": manifest_key},
            Metadata={"s3thumbs-source-etag": "0" * 32, "s3thumbs-settings": job.spec.fingerprint},
            MetadataDirective="REPLACE",
        )

    outcome = make_thumbnails(mocked_storage, job, BUCKET, "p.jpg")

    assert outcome.status == "written"
    assert manifest_of(mocked_s3, "p.jpg")[1]["Metadata"]["s3thumbs-source-etag"] == outcome.source_etag


def test_a_cover_box_says_so_in_the_manifest():
    from s3thumbs import manifest
    from s3thumbs.encoding import Thumbnail
    from s3thumbs.keys import Layout, Size

    thumbs = [
        Thumbnail(Size(64, 64, "cover"), 64, 64, "image/jpeg", b"j"),
        Thumbnail(Size(256, 256), 256, 171, "image/jpeg", b"jj"),
    ]
    facts = manifest.build(Layout(), "b", "k.jpg", "e", "s", (900, 600), "h", thumbs)

    assert [(t["box"], t["fit"], t["width"], t["height"]) for t in facts["thumbnails"]] == [
        ("64x64", "cover", 64, 64),
        ("256x256", "inside", 256, 171),
    ]
