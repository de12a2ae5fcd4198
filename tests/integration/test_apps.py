"""What apps get, through a real receiver and worker: per-prefix sizes, cover crops, manifests,
ThumbHash metadata and the photographer's credit."""

from __future__ import annotations

import io
import json

from PIL import ExifTags, Image

from tests.support import images
from tests.support.buckets import notify_through_sns, object_exists, s3_client
from tests.support.processes import receiver, s3thumbs_env, wait_for, worker

TOKEN = "apps-sender-token"


def test_rules_cover_boxes_manifests_and_credits_end_to_end(moto_server_url, redis_factory, tmp_path):
    server = redis_factory()
    env = s3thumbs_env(
        broker_url=server.url_for(0),
        result_backend=server.url_for(1),
        auth_token=TOKEN,
        s3_endpoint_url=moto_server_url,
        sizes="256x256,64x64:cover",
        rules="avatars/=96x96:cover;raw/=",
        crop="attention",
        keep_metadata="copyright",
    )
    s3 = s3_client(moto_server_url)
    credited = images.exif(gps=True)
    credited[ExifTags.Base.Copyright] = "© Ana".encode()  # UTF-8, as phones write it
    uploads = {
        "avatars/u 1.jpg": images.encode(images.salient_scene("face", 0.8), "JPEG", exif=credited),
        "photos/beach.jpg": images.encode(images.salient_scene("flower", 0.2), "JPEG"),
        "raw/scan.jpg": images.jpeg(300, 200),
    }

    with receiver(env, tmp_path / "receiver.log") as url, worker(env, tmp_path / "worker.log"):
        notify_through_sns(moto_server_url, "app", url.replace("://", f"://sns:{TOKEN}@") + "/events")
        for key, body in uploads.items():
            s3.put_object(Bucket="app", Key=key, Body=body)
        for key in ("avatars/u 1.jpg", "photos/beach.jpg"):
            wait_for(
                lambda key=key: object_exists(s3, "app", f"thumbnails/manifest/{key}.json"), 60, f"{key}'s manifest"
            )
        wait_for(
            lambda: "no thumbnails under this prefix" in (tmp_path / "receiver.log").read_text(), 30, "raw/ skipped"
        )

    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="app", Prefix="thumbnails/")["Contents"])
    assert listed == [
        "thumbnails/256x256/photos/beach.jpg",
        "thumbnails/64x64/photos/beach.jpg",
        "thumbnails/96x96/avatars/u 1.jpg",
        "thumbnails/manifest/avatars/u 1.jpg.json",
        "thumbnails/manifest/photos/beach.jpg.json",
    ]
    avatar = json.loads(s3.get_object(Bucket="app", Key="thumbnails/manifest/avatars/u 1.jpg.json")["Body"].read())
    assert [(t["box"], t["fit"], t["width"], t["height"]) for t in avatar["thumbnails"]] == [("96x96", "cover", 96, 96)]
    got = s3.get_object(Bucket="app", Key="thumbnails/96x96/avatars/u 1.jpg")
    assert got["Metadata"]["s3thumbs-thumbhash"] == avatar["thumbhash"]
    square = Image.open(io.BytesIO(got["Body"].read()))
    assert dict(square.getexif()) == {ExifTags.Base.Copyright: "\u00a9 Ana".encode().decode("latin-1")}
    # The attention crop kept the face, off to the right of the 1200×400 scene.
    r, g, b = square.convert("RGB").getpixel((48, 48))
    assert r > 180 and r - b > 60, (r, g, b)
