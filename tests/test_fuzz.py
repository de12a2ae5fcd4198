"""Fuzz POST /events: whatever the body, while the broker is up the receiver never answers 5xx."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from s3thumbs.receiver import create_app
from s3thumbs.sns import Verifier, is_sns_url
from tests.support.notifications import (
    eventbridge_event,
    minio_webhook,
    s3_notification,
    s3_record,
    s3_test_event,
    sns_confirmation,
    sns_notification,
)
from tests.support.publishing import Recorded
from tests.support.sns_signatures import CERT_URL, SIGNED_FIELDS, make_certificate, make_signing_key, sign

MAX_BODY_BYTES = 64 * 1024
ANSWERS = {200, 202, 400, 403, 413}  # 403: a refused SNS subscription, or an SNS message that does not verify
NEAR_MISSES = 600
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HUGE = "__huge_number__"  # replaced, in the encoded body, by a number Python will not convert

PLACEHOLDER_SIGNATURE = {"SignatureVersion": "1", "Signature": "AAAA", "SigningCertURL": CERT_URL}
TOPIC = "arn:aws:sns:us-east-1:1:t"
RECORD = s3_record("uploads", "dir/a b.jpg", version_id="v", sequencer="01")
SKELETONS: dict[str, dict[str, Any]] = {
    "s3": s3_notification(RECORD),
    "minio": minio_webhook("uploads", "dir/a.jpg", None, event="s3:ObjectRemoved:Delete", size=None),
    "test-event": s3_test_event("uploads"),
    "eventbridge": eventbridge_event("uploads", "a b.png", version_id="null"),
    "sns": sns_notification("{}", topic=TOPIC) | PLACEHOLDER_SIGNATURE,
    "sns-unsubscribe": sns_confirmation("UnsubscribeConfirmation", topic=TOPIC) | PLACEHOLDER_SIGNATURE,
    "sns-confirmation": sns_confirmation(topic=TOPIC) | PLACEHOLDER_SIGNATURE | {"SignatureVersion": "2"},
}
ODD_STRINGS = [
    "",
    "null",
    " ",
    "\x00",
    "\ud800",
    "a\udfffb",
    "\U0001f4a9.jpg",
    "é.png",
    "%",
    "%FF.jpg",
    "%2F",
    "%C3%A9.jpg",
    "+",
    "a+b.jpg",
    "thumbnails/128x128/a.jpg",
    "x.jpg",
    "x.txt",
    "ObjectCreated:Put",
    "s3:ObjectCreated:Put",
    "ObjectRemoved:Delete",
    "ObjectRemoved:\ud800",
    "LifecycleExpiration:Delete",
    "ObjectCreated:PutTagging",
    "Object Created",
    "Object Deleted",
    "aws.s3",
    "Notification",
    "SubscriptionConfirmation",
    "UnsubscribeConfirmation",
    "s3:TestEvent",
    "1",
    "2",
    "https://sns.us-east-1.amazonaws.com/x.pem",
    "https://[",
    "https://sns.us-east-1.amazonaws.com:x/",
    "http://sns.us-east-1.amazonaws.com/",
    "https://sns.us-east-1.amazonaws.com\uff03@evil/",
    "=" * 5,
    HUGE,
    "9" * 5000,
]
PATHOLOGICAL = [
    b"",
    b"[" * 100_000,
    b"{" * 50_000,
    b'{"a":' * 10_000,
    b"\xef\xbb\xbf{}",
    b"\xff\xfe{\x00}\x00",
    b"NaN",
    b'{"Records": [Infinity]}',
    b'{"Records": [-Infinity]}',
    b'"\\ud800"',
    b'{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "\xed\xa0\x80"},'
    b' "object": {"key": "a.jpg"}}}]}',
]

texts = st.one_of(st.sampled_from(ODD_STRINGS), st.text(st.characters(exclude_categories=()), max_size=20))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(10**30), 10**30), st.floats(), texts)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4), max_leaves=12
)


def encode(document: Any, ascii_only: bool) -> bytes:
    """JSON as a sender might write it: \\uXXXX escapes, or raw UTF-8 (lone surrogates and all)."""
    text = json.dumps(document, ensure_ascii=ascii_only)
    return text.replace(json.dumps(HUGE), "1" * 5000).encode("utf-8", "surrogatepass")


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a document, the root excluded."""
    found: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for name, child in items:
        found.append((*prefix, name))
        found += paths(child, (*prefix, name))
    return found


@st.composite
def near_misses(draw: st.DrawFn, depth: int = 0) -> Any:
    """A real notification skeleton with some fields replaced by random JSON, or deleted."""
    kind = draw(st.sampled_from(sorted(SKELETONS)))
    document = copy.deepcopy(SKELETONS[kind])
    if kind == "sns" and depth < 2:
        document["Message"] = json.dumps(draw(near_misses(depth + 1)))
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(paths(document) or [()]))
        if not path:
            break
        parent = document
        for name in path[:-1]:
            parent = parent[name]
        how = draw(st.sampled_from(["odd", "append", "json", "delete"]))
        if how == "odd":
            parent[path[-1]] = draw(st.sampled_from(ODD_STRINGS))
        elif how == "append" and isinstance(parent[path[-1]], str):
            parent[path[-1]] += draw(texts)
        elif how == "json":
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return document


class Broker(Recorded):
    """A broker that is up: publish always succeeds, and must be handed JSON-safe, UTF-8 events."""

    def __call__(self, events: Any) -> None:
        for event in events:
            json.dumps(event.to_dict(), ensure_ascii=False).encode("utf-8")
        self.extend(events)


BROKER = Broker()
CONFIRMED: list[str] = []
KEY = make_signing_key()
PLAIN = TestClient(
    create_app(BROKER, max_body_bytes=MAX_BODY_BYTES, confirm=CONFIRMED.append), raise_server_exceptions=False
)
CERTIFICATE = make_certificate(KEY)
VERIFYING = TestClient(
    create_app(
        BROKER, max_body_bytes=MAX_BODY_BYTES, confirm=CONFIRMED.append, verify=Verifier(lambda url: CERTIFICATE)
    ),
    raise_server_exceptions=False,
)


def signed(document: Any) -> Any:
    """The document signed as SNS would sign it, when it is close enough to an envelope to be signed."""
    if isinstance(document, dict) and isinstance(document.get("Type"), str) and document["Type"] in SIGNED_FIELDS:
        version = document.get("SignatureVersion")
        try:
            return sign(document, KEY, version if version in ("1", "2") else "2")
        except UnicodeEncodeError:
            return document
    return document


def check(client: TestClient, body: bytes) -> None:
    BROKER.clear()
    CONFIRMED.clear()
    response = client.post("/events", content=body, headers={"Content-Type": "text/plain; charset=UTF-8"})

    assert response.status_code in ANSWERS, (response.status_code, response.text)
    answer = response.json()
    assert isinstance(answer, dict)
    if response.status_code >= 300:
        assert isinstance(answer.get("error"), str)
        assert BROKER == [] and CONFIRMED == []
        return
    if "confirmed" in answer:
        assert response.status_code == 200 and BROKER == []
        assert len(CONFIRMED) == 1 and is_sns_url(CONFIRMED[0])
        return
    assert CONFIRMED == []
    accepted, skipped = answer["accepted"], answer["skipped"]
    assert all(isinstance(item["reason"], str) for item in skipped)
    assert [(e["bucket"], e["key"], e["action"]) for e in accepted] == [(e.bucket, e.key, e.action) for e in BROKER]
    assert response.status_code == (202 if accepted else 200)


@FUZZ
@given(st.one_of(st.binary(max_size=512), st.sampled_from(PATHOLOGICAL)))
def test_garbage_bytes_never_get_a_5xx(body):
    check(PLAIN, body)


@FUZZ
@given(st.builds(encode, json_values, st.booleans()))
def test_arbitrary_json_never_gets_a_5xx(body):
    check(PLAIN, body)


# What the fuzzer found (each was a 500 or a 503, or a 2xx without the summary), kept as regressions.
FOUND = [
    b'{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "\\ud800"}',
    b'{"Records": [{"eventName": "ObjectCreated:\\ud800", "s3": {"bucket": {"name": "b"}, "object": {"key": "a"}}}]}',
    b'{"Records": [{"eventName": "ObjectRemoved:\\ud800", "s3": {"bucket": {"name": "b"}, "object": {"key": "a"}}}]}',
    b'{"source": "aws.s3", "detail-type": "\\udfff", "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}}',
    b'{"Type": "SubscriptionConfirmation", "TopicArn": "\\ud800", "SubscribeURL": "https://sns.us-east-1.amazonaws.com/"}',
    b'{"Type": "SubscriptionConfirmation", "TopicArn": "t", "SubscribeURL": "https://[sns.us-east-1.amazonaws.com"}',
    b'{"Type": "UnsubscribeConfirmation", "TopicArn": "t"}',
]


@pytest.mark.parametrize("body", FOUND)
def test_what_the_fuzzer_found(body):
    check(PLAIN, body)


@pytest.mark.slow  # 10 s of examples
@settings(FUZZ, max_examples=NEAR_MISSES)
@given(st.builds(encode, near_misses(), st.booleans()))
def test_near_miss_notifications_never_get_a_5xx(body):
    check(PLAIN, body)


@pytest.mark.slow  # 10 s of examples
@settings(FUZZ, max_examples=NEAR_MISSES)
@given(st.builds(encode, near_misses().map(signed), st.booleans()))
def test_near_miss_signed_sns_never_gets_a_5xx_from_a_verifying_receiver(body):
    check(VERIFYING, body)
