"""S3 in tests: clients of moto's server, fresh buckets and their notifications, uploads, and what the worker wrote."""

from __future__ import annotations

import io
import uuid
from typing import Any

import boto3
from PIL import Image

from tests.support.processes import REGION, wait_for

# The SPEC's default sizes, and what each makes of a 3:2 picture large enough to fill them.
SIZES = ("128x128", "512x512", "1024x1024")
SIZES_OF_3_2 = {"128x128": (128, 85), "512x512": (512, 341), "1024x1024": (1024, 683)}
NOTIFIED_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


def client(service: str, endpoint: str) -> Any:
    """A boto3 client of moto's server with the fake credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def s3_client(endpoint: str) -> Any:
    return client("s3", endpoint)


def fresh_bucket(s3: Any, prefix: str) -> str:
    """Create a bucket no other test uses, and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def notify_through_sns(endpoint: str, bucket: str, receiver_events_url: str) -> None:
    """Create ``bucket`` with put/delete notifications to an SNS topic subscribed over HTTP."""
    s3, sns = s3_client(endpoint), client("sns", endpoint)
    s3.create_bucket(Bucket=bucket)
    topic = sns.create_topic(Name=bucket)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver_events_url)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"TopicConfigurations": [{"TopicArn": topic, "Events": NOTIFIED_EVENTS}]},
    )


def upload(s3: Any, bucket: str, key: str, body: bytes) -> str:
    """Put an object and return its eTag, without quotes."""
    return str(s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]).strip('"')


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def written_by_s3thumbs(s3: Any, bucket: str, key: str) -> bool:
    """The object is there with the metadata the worker writes (moto's threaded server lists a new
    object a moment before its headers are stored, so existence alone is not enough)."""
    return object_exists(s3, bucket, key) and "s3thumbs-settings" in s3.head_object(Bucket=bucket, Key=key)["Metadata"]


def thumbnails_written(s3: Any, bucket: str, key: str, sizes: tuple[str, ...] = SIZES) -> bool:
    return all(written_by_s3thumbs(s3, bucket, f"thumbnails/{size}/{key}") for size in sizes)


def assert_thumbnails(
    s3: Any, bucket: str, key: str, expected: dict[str, tuple[int, int]] = SIZES_OF_3_2, timeout: float = 30
) -> None:
    """Wait for every size's thumbnail, then check it is a JPEG of the expected dimensions."""
    for size, dimensions in expected.items():
        out = f"thumbnails/{size}/{key}"
        wait_for(lambda out=out: written_by_s3thumbs(s3, bucket, out), timeout, f"s3://{bucket}/{out}")
        obj = s3.get_object(Bucket=bucket, Key=out)
        assert obj["ContentType"] == "image/jpeg"
        assert Image.open(io.BytesIO(obj["Body"].read())).size == dimensions


def nothing_written(s3: Any, bucket: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix="thumbnails/")["KeyCount"] == 0
