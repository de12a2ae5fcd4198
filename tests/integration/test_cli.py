"""``s3thumbs backfill`` from the command line onto a real Redis broker."""

from __future__ import annotations

import base64
import json

from s3thumbs.cli.main import main
from s3thumbs.imaging import RenderSpec
from s3thumbs.keys import Size


def test_backfill_enqueues_only_images_lacking_thumbnails(cli_runner, mocked_s3, redis_server):
    redis = redis_server.client(4)
    redis.flushdb()
    env = {"S3THUMBS_BROKER_URL": redis_server.url_for(4), "S3THUMBS_SIZES": "64x64"}
    for name in ("a.jpg", "b.jpg", "c.png", "d.jpg", "readme.txt"):
        mocked_s3.put_object(Bucket="photos", Key=f"in/{name}", Body=b"x")
    etag = mocked_s3.head_object(Bucket="photos", Key="in/a.jpg")["ETag"].strip('"')
    made_with = {"s3thumbs-source-etag": etag, "s3thumbs-settings": RenderSpec((Size(64, 64),)).fingerprint}
    for done in ("thumbnails/64x64/in/a.jpg", "thumbnails/manifest/in/a.jpg.json"):
        mocked_s3.put_object(Bucket="photos", Key=done, Body=b"t", Metadata=made_with)
    mocked_s3.put_object(Bucket="photos", Key="other/e.jpg", Body=b"x")

    dry = cli_runner.invoke(main, ["backfill", "photos", "--prefix", "in/", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "4 images: 1 current, 3 missing, 0 stale, 0 failed for good; would enqueue 3" in dry.output
    assert redis.llen("s3thumbs") == 0

    result = cli_runner.invoke(main, ["backfill", "photos", "--prefix", "in/"], env=env)
    assert result.exit_code == 0, result.output
    assert "enqueued 3" in result.output
    messages = [json.loads(raw) for raw in redis.lrange("s3thumbs", 0, -1)]
    tasks = sorted((m["headers"]["task"], tuple(json.loads(base64.b64decode(m["body"]))[0])) for m in messages)
    assert tasks == [("s3thumbs.thumbnail", ("photos", f"in/{name}")) for name in ("b.jpg", "c.png", "d.jpg")]
