"""Periodic reconciliation: an upload whose notification was lost still gets its thumbnails."""

from __future__ import annotations

import io

from PIL import Image

from tests.support import images
from tests.support.buckets import s3_client
from tests.support.processes import s3thumbs_env, wait_for, worker


def test_reconciliation_renders_an_upload_nobody_was_told_about(moto_server_url, redis_factory, tmp_path):
    s3 = s3_client(moto_server_url)
    s3.create_bucket(Bucket="quiet")  # no notification configuration at all
    s3.put_object(Bucket="quiet", Key="lost event ü.jpg", Body=images.jpeg(300, 200))
    server = redis_factory()
    env = s3thumbs_env(
        broker_url=server.url_for(0),
        result_backend="",
        s3_endpoint_url=moto_server_url,
        sizes="64x64",
        buckets="quiet",
        reconcile_interval="2",
    )

    with worker(env, tmp_path / "worker.log", "--beat") as service:
        wait_for(
            lambda: "Contents" in s3.list_objects_v2(Bucket="quiet", Prefix="thumbnails/64x64/"),
            60,
            "the reconciled thumbnail",
        )
        service.wait_log("reconciled s3://quiet: 1 images: 0 current, 1 missing", timeout=10)

    thumb = s3.get_object(Bucket="quiet", Key="thumbnails/64x64/lost event ü.jpg")["Body"].read()
    assert Image.open(io.BytesIO(thumb)).size == (64, 43)
