"""Periodic reconciliation: an upload whose notification was lost still gets its thumbnails."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from s3thumbs.cli.main import main
from tests.services import s3_client, s3thumbs_env, wait_for, worker


def test_reconciliation_renders_an_upload_nobody_was_told_about(moto_endpoint, redis_factory, tmp_path):
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket="quiet")  # no notification configuration at all
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "teal").save(buffer, "JPEG")
    s3.put_object(Bucket="quiet", Key="lost event ü.jpg", Body=buffer.getvalue())
    server = redis_factory()
    env = s3thumbs_env(broker_url=server.url_for(0), result_backend="", s3_endpoint_url=moto_endpoint,
                       sizes="64x64", buckets="quiet", reconcile_interval="2")

    with worker(env, tmp_path / "worker.log", "--beat") as service:
        wait_for(lambda: "Contents" in s3.list_objects_v2(Bucket="quiet", Prefix="thumbnails/64x64/"), 60,
                 "the reconciled thumbnail")
        service.wait_log("reconciled s3://quiet: 1 images: 0 current, 1 missing", timeout=10)

    thumb = s3.get_object(Bucket="quiet", Key="thumbnails/64x64/lost event ü.jpg")["Body"].read()
    assert Image.open(io.BytesIO(thumb)).size == (64, 43)


@pytest.mark.parametrize("command", [["worker"], ["receiver"]])
def test_reconciliation_needs_the_list_of_buckets(command):
    from click.testing import CliRunner

    result = CliRunner().invoke(main, command, env={"S3THUMBS_RECONCILE_INTERVAL": "60"})

    assert result.exit_code != 0
    assert "S3THUMBS_RECONCILE_INTERVAL needs S3THUMBS_BUCKETS" in result.output
