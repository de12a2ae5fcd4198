from __future__ import annotations

import json
from typing import Any

import pytest

from s3thumbs.errors import InvalidEvent
from s3thumbs.events import Notification, ObjectEvent, SubscriptionRequest
from s3thumbs.notifications import parse_body, parse_document
from tests.support.notifications import (
    PAYLOADS,
    eventbridge_event,
    json_body,
    payload,
    s3_notification,
    s3_record,
    sns_notification,
)

MINIO_KEY = "dir/my photo+1\u00e9.jpg"
# The topic of the recorded SNS payloads.
TOPIC = "arn:aws:sns:eu-west-1:123456789012:s3thumbs-uploads"


def notification(body: bytes | str) -> Notification:
    parsed = parse_body(body)
    assert isinstance(parsed, Notification)
    return parsed


# Shorthands over tests.support.notifications for the tables below: bodies as bytes, keys as on the wire.


def record(key: Any, event_name: Any = "ObjectCreated:Put", bucket: Any = "photos") -> dict[str, Any]:
    """An S3 record with ``key`` exactly as given on the wire."""
    return s3_record(bucket, key, event=event_name, encoded=False)


def records_body(*records: Any) -> bytes:
    return json_body(s3_notification(*records))


def sns_body(message: Any, message_type: str = "Notification") -> bytes:
    return json_body(sns_notification(message) | {"Type": message_type})


def eventbridge_body(key: Any, detail_type: str = "Object Created", bucket: Any = "photos") -> bytes:
    return json_body(eventbridge_event(bucket, key, detail_type=detail_type))


MINIO_PUT = ObjectEvent(
    action="created",
    bucket="uploads",
    key=MINIO_KEY,
    event_name="s3:ObjectCreated:Put",
    size=6474,
    etag="430f5a1ac9e7d5c3b8f7a4d0e2c6b1a9",
    version_id=None,
    sequencer="1876A0B2C3D4E5F6",
    content_type="image/jpeg",
)
S3_PUT = ObjectEvent(
    action="created",
    bucket="photos",
    key="albums/2026/red flower+1\u00e9.jpg",
    event_name="ObjectCreated:Put",
    size=1024,
    etag="d41d8cd98f00b204e9800998ecf8427e",
    version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko",
    sequencer="0055AED6DCD90281E5",
)

# (payload file, kind, events, ignored as (bucket, key, word the reason must contain))
SHAPES = [
    ("minio_put.json", "minio", [MINIO_PUT], []),
    (
        "minio_delete.json",
        "minio",
        [
            ObjectEvent(
                action="removed",
                bucket="uploads",
                key=MINIO_KEY,
                event_name="s3:ObjectRemoved:Delete",
                sequencer="1876A0B3F1E2D3C4",
            )
        ],
        [],
    ),
    ("minio_put_tagging.json", "minio", [], [("uploads", MINIO_KEY, "PutTagging")]),
    ("minio_get.json", "minio", [], [("uploads", MINIO_KEY, "ObjectAccessed:Get")]),
    ("s3_put.json", "s3", [S3_PUT], []),
    (
        "s3_multi.json",
        "s3",
        [
            ObjectEvent(
                action="created",
                bucket="photos",
                key="raw/big scan.tiff",
                event_name="ObjectCreated:CompleteMultipartUpload",
                size=73400320,
                etag="9b2cf535f27731c974343645a3985328-14",
                version_id="Ua1pqBfQhQ1bRkYW2tE3Yc6rGxW_9N5M",
                sequencer="0061D2A4B1C3E5F7A9",
            ),
            ObjectEvent(
                action="created",
                bucket="photos",
                key="copies/a%2Bb.jpg",
                event_name="ObjectCreated:Copy",
                size=2048,
                etag="5d41402abc4b2a76b9719d911017c592",
                version_id="3HL4kqtJvjVBH40Nrjfkd",
                sequencer="0061D2A4B1C3E5F7B0",
            ),
            ObjectEvent(
                action="removed",
                bucket="photos",
                key="old/holiday.png",
                event_name="ObjectRemoved:DeleteMarkerCreated",
                version_id="G6Bo1xY2Lr6tQb3mHaC9eD5fJkWz7pNs",
                sequencer="0061D2A4B1C3E5F7C2",
            ),
        ],
        [("photos", "archive/cold.jpg", "ObjectRestore:Completed")],
    ),
    ("s3_test_event.json", "s3-test-event", [], [("photos", "", "test")]),
    ("sns_s3_put.json", "sns/s3", [S3_PUT], []),
    ("sns_s3_test_event.json", "sns/s3-test-event", [], [("photos", "", "test")]),
    (
        "moto_sns_s3_put.json",
        "sns/s3",
        [
            ObjectEvent(
                action="created",
                bucket="uploads",
                key=MINIO_KEY,
                event_name="ObjectCreated:Put",
                size=3141,
                etag="0cc175b9c0f1b6a831c399e269772661",
            )
        ],
        [],
    ),
    (
        "eventbridge_created.json",
        "eventbridge",
        [
            ObjectEvent(
                action="created",
                bucket="photos",
                key="albums/summer trip/a+b.png",
                event_name="Object Created",
                size=5242,
                etag="b1946ac92492d2347c6235b4d2611184",
                version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                sequencer="00617F08299329D189",
            )
        ],
        [],
    ),
    (
        "eventbridge_deleted.json",
        "eventbridge",
        [
            ObjectEvent(
                action="removed",
                bucket="photos",
                key="albums/summer trip/a+b.png",
                event_name="Object Deleted",
                version_id="1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF",
                sequencer="00617F0A3B2C4D5E6F",
            )
        ],
        [],
    ),
    (
        "moto_eventbridge_created.json",
        "eventbridge",
        [
            ObjectEvent(
                action="created",
                bucket="uploads",
                key="new folder/a b+c.png",
                event_name="Object Created",
                size=2718,
                etag="e2fc714c4727ee9395f324cd2e7f331f",
                version_id=None,
                sequencer="617f08299329d189",
            )
        ],
        [],
    ),
]


CEPH_KEY = "photos/a b+c é.jpg"  # raw: RGW neither encodes nor expects decoding
SHAPES += [
    (
        "ceph_put.json",
        "ceph",
        [
            ObjectEvent(
                "created",
                "capture",
                CEPH_KEY,
                "ObjectCreated:Put",
                22,
                "ee0945e1d9c818058680b98955391717",
                sequencer="EFC5146B1335C919",
            )
        ],
        [],
    ),
    (
        "ceph_delete.json",
        "ceph",
        [ObjectEvent("removed", "capture", CEPH_KEY, "ObjectRemoved:Delete", sequencer="EFC5146BBA243C1A")],
        [],
    ),
    (
        "seaweedfs_create.json",
        "seaweedfs",
        [
            ObjectEvent(
                "created",
                "capture",
                CEPH_KEY,
                "seaweedfs:create",
                22,
                "ee0945e1d9c818058680b98955391717",
                content_type="image/jpeg",
            )
        ],
        [],
    ),
    (  # an overwrite: S3 would say ObjectCreated:Put
        "seaweedfs_update.json",
        "seaweedfs",
        [
            ObjectEvent(
                "created",
                "capture",
                CEPH_KEY,
                "seaweedfs:update",
                11,
                "509ff4bfff30a77103aac34068ea46c7",
                content_type="text/plain; charset=utf-8",
            )
        ],
        [],
    ),
    ("seaweedfs_delete.json", "seaweedfs", [ObjectEvent("removed", "capture", CEPH_KEY, "seaweedfs:delete")], []),
    (
        "seaweedfs_multipart.json",
        "seaweedfs",
        [
            ObjectEvent(
                "created",
                "capture",
                "big.jpg",
                "seaweedfs:create",
                5242881,
                "0c62823571cff39c8dddcc6a74e2569f-2",
                content_type="image/jpeg",
            )
        ],
        [],
    ),
    ("seaweedfs_bucket.json", "seaweedfs", [], [("capture", "", "not an object")]),
    ("seaweedfs_directory.json", "seaweedfs", [], [("capture", "photos", "directory")]),
    ("seaweedfs_system.json", "seaweedfs", [], [(".system", "owners/s3thumbs-tests/capture", "filer's own")]),
    (
        "seaweedfs_upload_part.json",
        "seaweedfs",
        [],
        [
            (
                "capture",
                ".uploads/a2b1d57cc51548115a61c97726f77778b4c13f22_1a2b837dc4c64de0b326151e7befe864"
                "/0001_d077de13-ad1d-4dab-9e30-01498da6f8c4.part",
                "multipart",
            )
        ],
    ),
]


@pytest.mark.parametrize(("given", "kind", "events", "ignored"), SHAPES, ids=[case[0] for case in SHAPES])
def test_every_sender_shape_gives_its_events_and_ignored_records(given, kind, events, ignored):
    parsed = notification(payload(given))

    assert parsed.kind == kind
    assert list(parsed.events) == events
    assert [(i.bucket, i.key) for i in parsed.ignored] == [(b, k) for b, k, _ in ignored]
    for skipped, (_, _, word) in zip(parsed.ignored, ignored, strict=True):
        assert word in skipped.reason


def test_payload_table_covers_every_payload_file():
    tested = {case[0] for case in SHAPES} | {"sns_subscription_confirmation.json", "sns_unsubscribe_confirmation.json"}
    assert {path.name for path in PAYLOADS.glob("*.json")} == tested


@pytest.mark.parametrize("given", ["minio_put.json", "minio_delete.json", "minio_put_tagging.json"])
def test_minio_record_key_decodes_to_the_top_level_key(given):
    document = json.loads(payload(given))
    bucket, _, key = document["Key"].partition("/")

    parsed = notification(payload(given))

    [item] = parsed.events or parsed.ignored
    assert (item.bucket, item.key) == (bucket, key)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a+b.jpg", "a b.jpg"),
        ("a%2Bb.jpg", "a+b.jpg"),
        ("a%252Bb.jpg", "a%2Bb.jpg"),
        ("100%2525.jpg", "100%25.jpg"),
        ("100%25.jpg", "100%.jpg"),
        ("a%20b.jpg", "a b.jpg"),
        ("dir%2Fsub%2Fx.jpg", "dir/sub/x.jpg"),
        ("dir/sub/x.jpg", "dir/sub/x.jpg"),
        ("%C3%A9t%C3%A9.jpg", "\u00e9t\u00e9.jpg"),
        ("%E5%86%99%E7%9C%9F.png", "\u5199\u771f.png"),
        ("plain.jpg", "plain.jpg"),
    ],
)
def test_record_keys_are_decoded_exactly_once(given, expected):
    [event] = notification(records_body(record(given))).events

    assert event.key == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a%252Bb.jpg", "a%2Bb.jpg"),
        ("a+b%2Bc.jpg", "a b+c.jpg"),
    ],
)
def test_keys_inside_an_sns_envelope_are_decoded_exactly_once(given, expected):
    message = json.dumps({"Records": [record(given)]})

    [event] = notification(sns_body(message)).events

    assert event.key == expected


@pytest.mark.parametrize(
    "given",
    [
        "a+b.jpg",
        "a b.jpg",
        "a%2Bb.jpg",
        "dir%2Fx.jpg",
        "100%.jpg",
        "\u00e9.jpg",
    ],
)
def test_eventbridge_keys_are_taken_as_they_come(given):
    [event] = notification(eventbridge_body(given)).events

    assert event.key == given


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3:ObjectCreated:Put", "created"),
        ("s3:ObjectCreated:Post", "created"),
        ("s3:ObjectCreated:Copy", "created"),
        ("s3:ObjectCreated:CompleteMultipartUpload", "created"),
        ("ObjectCreated:Put", "created"),
        ("ObjectCreated:Post", "created"),
        ("ObjectCreated:Copy", "created"),
        ("ObjectCreated:CompleteMultipartUpload", "created"),
        ("s3:ObjectRemoved:Delete", "removed"),
        ("s3:ObjectRemoved:DeleteMarkerCreated", "removed"),
        ("s3:ObjectRemoved:DeleteAllVersions", "removed"),
        ("ObjectRemoved:Delete", "removed"),
        ("ObjectRemoved:DeleteMarkerCreated", "removed"),
        ("LifecycleExpiration:Delete", "removed"),
        ("LifecycleExpiration:DeleteMarkerCreated", "removed"),
        ("s3:ObjectCreated:PutTagging", None),
        ("s3:ObjectCreated:DeleteTagging", None),
        ("s3:ObjectCreated:PutRetention", None),
        ("s3:ObjectCreated:PutLegalHold", None),
        ("s3:ObjectAccessed:Get", None),
        ("s3:ObjectAccessed:Head", None),
        ("s3:ObjectAccessed:Attributes", None),
        ("s3:Replication:OperationFailedReplication", None),
        ("s3:ObjectRestore:Post", None),
        ("s3:ObjectTransition:Complete", None),
        ("s3:Scanner:ManyVersions", None),
        ("ObjectTagging:Put", None),
        ("ObjectAcl:Put", None),
        ("ObjectRestore:Completed", None),
    ],
)
def test_only_created_and_removed_event_names_do_work(given, expected):
    parsed = notification(records_body(record("a.jpg", event_name=given)))

    if expected is None:
        assert parsed.events == ()
        [skipped] = parsed.ignored
        assert (skipped.bucket, skipped.key) == ("photos", "a.jpg")
        assert given in skipped.reason
    else:
        assert parsed.ignored == ()
        [event] = parsed.events
        assert (event.action, event.event_name) == (expected, given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Object Created", "created"),
        ("Object Deleted", "removed"),
        ("Object Tags Added", None),
        ("Object Restore Completed", None),
        ("Object Access Tier Changed", None),
    ],
)
def test_only_eventbridge_created_and_deleted_do_work(given, expected):
    parsed = notification(eventbridge_body("a.jpg", detail_type=given))

    assert parsed.kind == "eventbridge"
    if expected is None:
        assert parsed.events == ()
        [skipped] = parsed.ignored
        assert (skipped.bucket, skipped.key) == ("photos", "a.jpg")
        assert given in skipped.reason
    else:
        [event] = parsed.events
        assert event.action == expected


CONFIRM_URL = (
    f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37fb687f"
    "5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece2"
    "9417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac"
    "82c01f235d0e717736"
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sns_subscription_confirmation.json", SubscriptionRequest("SubscriptionConfirmation", TOPIC, CONFIRM_URL)),
        ("sns_unsubscribe_confirmation.json", SubscriptionRequest("UnsubscribeConfirmation", TOPIC, CONFIRM_URL)),
    ],
)
def test_sns_confirmations_come_back_as_subscription_requests(given, expected):
    assert parse_body(payload(given)) == expected


def test_subscription_url_is_the_one_in_the_body():
    document = json.loads(payload("sns_subscription_confirmation.json"))

    request = parse_body(payload("sns_subscription_confirmation.json"))

    assert isinstance(request, SubscriptionRequest)
    assert request.subscribe_url == document["SubscribeURL"]
    assert request.topic_arn == document["TopicArn"]


INVALID = [
    ("not JSON", b"hello"),
    ("empty body", b""),
    ("truncated JSON", payload("minio_put.json")[:-20]),
    ("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000),
    ("not UTF-8", b'{"Records": [], "x": "\xff"}'),
    ("JSON array", b"[]"),
    ("JSON array of a notification", b'[{"Records": []}]'),
    ("JSON string", b'"Records"'),
    ("JSON number", b"42"),
    ("JSON null", b"null"),
    ("bare NaN", b"NaN"),
    ("NaN inside", b'{"Records": [], "x": NaN}'),
    ("Infinity inside", b'{"Records": [], "x": -Infinity}'),
    ("empty object", b"{}"),
    ("object of another shape", b'{"hello": "world", "items": [1, 2]}'),
    ("TopicArn without Type", b'{"TopicArn": "arn:aws:sns:eu-west-1:1:t", "Message": "{}"}'),
    (
        "EventBridge event from another source",
        json.dumps({"version": "0", "detail-type": "Object Created", "source": "aws.ec2", "detail": {}}).encode(),
    ),
    ("Records is an object", b'{"Records": {"eventName": "ObjectCreated:Put"}}'),
    ("Records is a string", b'{"Records": "ObjectCreated:Put"}'),
    ("Records is null", b'{"Records": null}'),
    ("MinIO Records is not a list", b'{"EventName": "s3:ObjectCreated:Put", "Key": "b/k", "Records": {}}'),
    ("record is not an object", records_body("ObjectCreated:Put")),
    (
        "record without s3.object.key",
        json.dumps(
            {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"size": 1}}}]}
        ).encode(),
    ),
    ("record without s3", b'{"Records": [{"eventName": "ObjectCreated:Put"}]}'),
    (
        "record without eventName",
        json.dumps({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k.jpg"}}}]}).encode(),
    ),
    (
        "record without bucket name",
        json.dumps(
            {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}, "object": {"key": "k.jpg"}}}]}
        ).encode(),
    ),
    (
        "object is not an object",
        json.dumps(
            {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": "k.jpg"}}]}
        ).encode(),
    ),
    ("key is a number", records_body(record(12))),
    ("key is null", records_body(record(None))),
    ("key is a list", records_body(record(["a.jpg"]))),
    ("bucket is a number", records_body(record("a.jpg", bucket=7))),
    ("eventName is a number", records_body(record("a.jpg", event_name=1))),
    ("key %FF is not UTF-8", records_body(record("a%FF.jpg"))),
    ("key %C3 is a truncated UTF-8 sequence", records_body(record("a%C3.jpg"))),
    ("key is a percent-encoded surrogate", records_body(record("a%ED%A0%80.jpg"))),
    ("one bad record among good ones", records_body(record("ok.jpg"), record("bad%FF.jpg"))),
    ("SNS Message is an object", sns_body({"Records": [record("a.jpg")]})),
    ("SNS Message is a list", sns_body([record("a.jpg")])),
    ("SNS Message is null", sns_body(None)),
    ("SNS Message is missing", json.dumps({"Type": "Notification", "TopicArn": TOPIC}).encode()),
    ("SNS Message is not JSON", sns_body("Hello from the topic")),
    ("SNS Message is NaN", sns_body("NaN")),
    ("SNS Message is a JSON array", sns_body("[]")),
    ("SNS Message is of another shape", sns_body('{"hello": "world"}')),
    ("SNS Message has a bad key", sns_body(json.dumps({"Records": [record("a%FF.jpg")]}))),
    ("SNS Message wraps another SNS envelope", sns_body(payload("sns_subscription_confirmation.json").decode())),
    ("unknown SNS Type", sns_body("{}", message_type="SomethingElse")),
    ("empty SNS Type", sns_body("{}", message_type="")),
    (
        "EventBridge without object key",
        json.dumps(
            {
                "version": "0",
                "detail-type": "Object Created",
                "source": "aws.s3",
                "detail": {"bucket": {"name": "b"}, "object": {"size": 1}},
            }
        ).encode(),
    ),
    ("EventBridge key is a number", eventbridge_body(5)),
    ("EventBridge bucket is null", eventbridge_body("a.jpg", bucket=None)),
]


@pytest.mark.parametrize("given", [case[1] for case in INVALID], ids=[case[0] for case in INVALID])
def test_bodies_that_are_no_notification_raise_invalid_event(given):
    with pytest.raises(InvalidEvent):
        parse_body(given)


# Known bug: a JSON escape such as \ud800 gives a str no S3 key can be, yet parse_body accepts it; the
# receiver then fails deterministically (500 while rendering its JSON answer, or UnicodeEncodeError in
# the Celery publish -> 503), and MinIO with a queue_dir retries that body forever.
UNENCODABLE = [
    ("Records key", records_body(record("\ud800.jpg"))),
    ("Records key, ignored event", records_body(record("\ud800.jpg", event_name="ObjectCreated:PutTagging"))),
    ("Records bucket", records_body(record("a.jpg", bucket="b\udfff"))),
    ("EventBridge key", eventbridge_body("\ud800.jpg")),
    ("EventBridge bucket", eventbridge_body("a.jpg", bucket="b\udfff")),
    ("SNS-wrapped key", sns_body(json.dumps({"Records": [record("\ud800.jpg")]}))),
]


@pytest.mark.parametrize("given", [case[1] for case in UNENCODABLE], ids=[case[0] for case in UNENCODABLE])
def test_names_that_are_not_valid_unicode_raise_invalid_event(given):
    try:
        parsed = parse_body(given)
    except InvalidEvent:
        return
    pytest.fail(
        f"BUG: parse_body accepted a lone surrogate and returned {parsed!r}; the receiver will answer "
        "5xx for this body on every retry instead of 400"
    )


@pytest.mark.parametrize("given", [[], "Records", 1, None, [{"Records": []}]])
def test_parse_document_refuses_what_is_not_an_object(given):
    with pytest.raises(InvalidEvent):
        parse_document(given)


def test_parse_document_reads_an_already_decoded_body():
    document = json.loads(payload("s3_put.json"))

    assert parse_document(document) == parse_body(payload("s3_put.json"))


def test_bytes_and_text_bodies_give_the_same_result():
    raw = payload("minio_put.json")
    assert "\u00e9".encode() in raw

    from_bytes = notification(raw)
    from_text = notification(raw.decode("utf-8"))

    assert from_bytes == from_text
    assert from_bytes.events[0].key == MINIO_KEY


def test_empty_records_list_is_understood_and_needs_nothing():
    assert parse_body(b'{"Records": []}') == Notification("s3")


def test_removed_records_carry_no_size_or_etag():
    moto_delete = record("gone.jpg", event_name="ObjectRemoved:Delete")

    [event] = notification(records_body(moto_delete)).events

    assert (event.action, event.size, event.etag) == ("removed", None, None)


@pytest.mark.parametrize("given", [True, "10", 1.5, None, -0.0])
def test_a_size_that_is_not_an_integer_is_dropped(given):
    body = record("a.jpg")
    body["s3"]["object"]["size"] = given

    [event] = notification(records_body(body)).events

    assert event.size is None


ALL_EVENTS = [event for case in SHAPES for event in case[2]]


@pytest.mark.parametrize("given", ALL_EVENTS, ids=[f"{e.event_name}:{e.key}" for e in ALL_EVENTS])
def test_object_event_round_trips_through_a_json_dict(given):
    data = json.loads(json.dumps(given.to_dict()))

    assert ObjectEvent.from_dict(data) == given


def test_object_event_dict_names_every_field():
    assert MINIO_PUT.to_dict() == {
        "action": "created",
        "bucket": "uploads",
        "key": MINIO_KEY,
        "event_name": "s3:ObjectCreated:Put",
        "size": 6474,
        "etag": "430f5a1ac9e7d5c3b8f7a4d0e2c6b1a9",
        "version_id": None,
        "sequencer": "1876A0B2C3D4E5F6",
        "content_type": "image/jpeg",
    }
