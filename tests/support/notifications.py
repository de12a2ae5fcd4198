"""Notification bodies as each sender writes them: one builder per format, and the recorded payloads.

Builders take an object's key as S3 stores it and encode it the way that sender does (MinIO and S3
URL-encode it in their records, EventBridge does not); ``encoded=False`` writes a key exactly as given,
for tests of decoding and of keys that are not strings at all. Every builder returns the decoded JSON
document; ``json_body`` turns one into the bytes of a request. SNS envelopes come unsigned:
``sns_signatures.sign`` signs them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads"

SNS_TOPIC = "arn:aws:sns:us-east-1:123456789012:uploads"
SUBSCRIBE_URL = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=t&Token=x"
UNSUBSCRIBE_URL = "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
TIMESTAMP = "2026-01-01T00:00:00.000Z"


def payload(name: str) -> bytes:
    """A real notification body from tests/payloads, as it was sent."""
    return (PAYLOADS / name).read_bytes()


def json_body(document: Any) -> bytes:
    """A document as the bytes a sender posts (non-ASCII as \\u escapes, as json.dumps writes it)."""
    return json.dumps(document).encode()


def _wire_key(key: Any, encoded: bool, safe: str) -> Any:
    return quote_plus(key, safe=safe) if encoded and isinstance(key, str) else key


def _object(key: Any, etag: str | None, size: Any, **extra: Any) -> dict[str, Any]:
    fields = {"key": key, "size": size, "eTag": etag, **extra}
    return {name: value for name, value in fields.items() if value is not None}


def s3_record(
    bucket: Any = "photos",
    key: Any = "a.jpg",
    *,
    event: Any = "ObjectCreated:Put",
    etag: str | None = "e",
    size: Any = 10,
    version_id: str | None = None,
    sequencer: str | None = None,
    encoded: bool = True,
) -> dict[str, Any]:
    """One record of an S3 event notification (the key URL-encoded as S3 does: spaces as +, / kept)."""
    obj = _object(_wire_key(key, encoded, "/"), etag, size, versionId=version_id, sequencer=sequencer)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T12:00:00.000Z",
        "eventName": event,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "s3thumbs",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


def s3_notification(*records: Any) -> dict[str, Any]:
    """What S3 sends to SNS, SQS or a webhook: its records (``s3_record``), in order."""
    return {"Records": list(records)}


def s3_test_event(bucket: str = "photos") -> dict[str, Any]:
    """The test event S3 sends once when a notification is configured."""
    return {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": TIMESTAMP,
        "Bucket": bucket,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }


def minio_webhook(
    bucket: str = "uploads",
    key: str = "dir/my photo+1é.jpg",
    etag: str | None = "430f",
    *,
    event: str = "s3:ObjectCreated:Put",
    size: int | None = 6474,
    content_type: str | None = "image/jpeg",
    sequencer: str = "1876A0B2C3D4E5F6",
    encoded: bool = True,
) -> dict[str, Any]:
    """A MinIO webhook body for one object event: the record's key URL-encoded (slashes too), ``Key`` plain.

    ``etag``, ``size`` or ``content_type`` None leaves the field out (MinIO sends none of them for a deletion).
    """
    obj = _object(_wire_key(key, encoded, ""), etag, size, contentType=content_type, sequencer=sequencer)
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": "2026-01-01T12:00:00.123Z",
        "eventName": event,
        "userIdentity": {"principalId": "minioadmin"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }
    return {"EventName": event, "Key": f"{bucket}/{key}", "Records": [record]}


def eventbridge_event(
    bucket: Any = "photos",
    key: Any = "a.jpg",
    *,
    detail_type: str = "Object Created",
    etag: str | None = "e",
    size: int | None = 1,
    version_id: str | None = None,
    sequencer: str = "00",
) -> dict[str, Any]:
    """An S3 event as EventBridge delivers it (keys are not encoded)."""
    obj = {"key": key, "size": size, "etag": etag, "version-id": version_id, "sequencer": sequencer}
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-01-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {name: value for name, value in obj.items() if value is not None},
            "reason": "PutObject",
        },
    }


def sns_notification(
    message: Any,
    *,
    topic: str = SNS_TOPIC,
    subject: str | None = "Amazon S3 Notification",
    message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
) -> dict[str, Any]:
    """An SNS Notification envelope, unsigned; ``message`` goes in as given (SNS carries a JSON string)."""
    envelope = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic,
        "Message": message,
        "Timestamp": TIMESTAMP,
        "UnsubscribeURL": UNSUBSCRIBE_URL,
    }
    return envelope | ({"Subject": subject} if subject is not None else {})


def sns_confirmation(
    kind: str = "SubscriptionConfirmation", *, topic: str = SNS_TOPIC, subscribe_url: str = SUBSCRIBE_URL
) -> dict[str, Any]:
    """An SNS SubscriptionConfirmation (or UnsubscribeConfirmation) envelope, unsigned."""
    return {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37",
        "TopicArn": topic,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": subscribe_url,
        "Timestamp": TIMESTAMP,
    }


def ceph_records(
    bucket: str = "photos",
    key: str = "a b+c é.jpg",
    *,
    event: str = "ObjectCreated:Put",
    etag: str = "e",
    size: int = 22,
) -> dict[str, Any]:
    """A Ceph RGW topic's body: one AWS-shaped record, ``eventSource`` ``ceph:s3``, the key raw."""
    return {
        "Records": [
            {
                "eventVersion": "2.2",
                "eventSource": "ceph:s3",
                "awsRegion": "",
                "eventName": event,
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "s3thumbs",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": key,
                        "size": size,
                        "eTag": etag,
                        "versionId": "",
                        "sequencer": "EFC5146B1335C919",
                    },
                },
                "eventId": f"1796523503.432616.{etag}",
                "opaqueData": "",
            }
        ]
    }


def seaweedfs_event(
    event_type: str = "create",
    path: str = "/buckets/photos/a b+c é.jpg",
    *,
    etag: str | None = "ee0945e1d9c818058680b98955391717",
    size: int = 22,
    mime: str = "image/jpeg",
    directory: bool = False,
    new_path: str | None = None,
) -> dict[str, Any]:
    """A SeaweedFS filer event for the entry at ``path`` (``new_path``: where a rename puts it)."""
    name = path.rsplit("/", 1)[-1]
    entry: dict[str, Any] = {"name": name, "attributes": {"file_size": size, "mime": mime, "mtime": 1796523488}}
    if directory:
        entry = {"name": name, "is_directory": True, "attributes": {"mtime": 1796523488}}
    elif etag is not None:
        entry["extended"] = {"Seaweed-X-Amz-ETag": base64.b64encode(etag.encode()).decode()}
    message: dict[str, Any] = {"delete_chunks": True, "signatures": [980122533]}
    if event_type in ("delete", "update", "rename"):
        message["old_entry"] = entry
    if event_type in ("create", "update", "rename"):
        parent, _, new_name = (new_path or path).rpartition("/")
        message["new_entry"] = entry | {"name": new_name}
        message["new_parent_path"] = parent
    return {"event_type": event_type, "key": path, "message": message}
