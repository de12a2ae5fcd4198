"""The SQS consumer: S3 notifications from a queue in, one Celery task per object out.

For AWS without a public receiver endpoint: S3 → SQS, S3 → SNS → SQS (the SNS envelope, or raw
delivery), or EventBridge → SQS. The bodies are the ones the receiver understands, filtered by
the same ``Rules``. A message is deleted only once its tasks are on the broker; when the broker
refuses them the message stays, and SQS delivers it again after the queue's visibility timeout.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from s3thumbs.errors import InvalidEvent
from s3thumbs.events import ObjectEvent, SubscriptionRequest
from s3thumbs.messages import Publish
from s3thumbs.notifications import parse_body
from s3thumbs.rules import Rules, log_skipped
from s3thumbs.storage import error_code

logger = logging.getLogger(__name__)

# SQS caps a long poll at 20 s and a receive (or a batch delete) at 10 messages.
MAX_WAIT_SECONDS = 20
MAX_MESSAGES = 10
MAX_BACKOFF_SECONDS = 30.0
# How much of a body that can never succeed goes into the log.
LOGGED_BODY_CHARS = 300
# Error codes that pass; any 5xx passes too. The rest (no queue, access denied…) stops the consumer.
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestTimeout",
        "OverLimit",
        "KmsThrottled",
        "KMS.ThrottlingException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
    }
)
# sqs.REGION.amazonaws.com (or sqs-fips.…, or .cn) and the legacy REGION.queue.amazonaws.com.
_AWS_QUEUE_HOST = re.compile(r"(?:sqs(?:-fips)?\.(?P<a>[a-z0-9-]+)|(?P<b>[a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?")

Message = dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """What one receive did: messages received, tasks published, messages deleted and kept."""

    received: int = 0
    published: int = 0
    deleted: int = 0
    kept: int = 0


def region_of(queue_url: str) -> str | None:
    """The AWS region in an SQS queue URL, or None for any other URL (LocalStack, moto…)."""
    match = _AWS_QUEUE_HOST.fullmatch(urlsplit(queue_url).hostname or "")
    return (match["a"] or match["b"]) if match else None


def make_client(queue_url: str, endpoint_url: str | None = None) -> Any:
    """An SQS client for the queue: on AWS in the queue's own region, else at ``endpoint_url``."""
    region = None if endpoint_url else region_of(queue_url)
    # The read timeout must outlast a 20 s long poll.
    config = Config(connect_timeout=5, read_timeout=MAX_WAIT_SECONDS + 40, retries={"mode": "standard"})
    return boto3.session.Session().client("sqs", endpoint_url=endpoint_url, region_name=region, config=config)


def is_transient(error: Exception) -> bool:
    """True for SQS faults that pass: network errors, throttling, 5xx."""
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or status == 429 or error_code(error) in _TRANSIENT_CODES
    return False


class Consumer:
    """Long-polls one queue and turns its S3 notifications into tasks, at least once.

    A body that can never succeed (not a notification, or an SNS subscription message, which
    has nothing to do on SQS) is logged at ERROR and deleted: leaving it would only have SQS
    deliver it again and again until its retention period ends. A redrive policy with a
    dead-letter queue is still recommended, for messages that fail for any other reason.
    """

    def __init__(
        self,
        client: Any,
        queue_url: str,
        publish: Publish,
        rules: Rules,
        *,
        wait_seconds: int = MAX_WAIT_SECONDS,
        max_messages: int = MAX_MESSAGES,
        max_backoff: float = MAX_BACKOFF_SECONDS,
    ) -> None:
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be 0 to {MAX_WAIT_SECONDS}")
        if not 1 <= max_messages <= MAX_MESSAGES:
            raise ValueError(f"max_messages must be 1 to {MAX_MESSAGES}")
        self.client = client
        self.queue_url = queue_url
        self.publish = publish
        self.rules = rules
        self.wait_seconds = wait_seconds
        self.max_messages = max_messages
        self.max_backoff = max_backoff

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, finishing the batch in hand; back off while SQS or the broker fails.

        Raises the SQS errors that cannot pass (no such queue, access denied…).
        """
        logger.info("polling %s", self.queue_url)
        failures = 0
        while not stop.is_set():
            try:
                failed = self.poll().kept > 0
            except (BotoCoreError, ClientError) as e:
                if not is_transient(e):
                    raise
                logger.warning("SQS failed: %s", e)
                failed = True
            failures = failures + 1 if failed else 0
            if failures:
                delay = min(self.max_backoff, 2.0 ** (failures - 1))
                logger.info("trying again in %g s", delay)
                stop.wait(delay)
        logger.info("stopped polling %s", self.queue_url)

    def poll(self) -> Batch:
        """Receive one batch, publish its tasks message by message, and delete what is done."""
        response = self.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.max_messages, WaitTimeSeconds=self.wait_seconds
        )
        messages: list[Message] = response.get("Messages", [])
        done: list[Message] = []
        waiting: list[tuple[Message, list[ObjectEvent]]] = []
        for message in messages:
            events = self._accepted(message)
            if events:
                waiting.append((message, events))
            else:
                done.append(message)
        published = kept = 0
        for index, (message, events) in enumerate(waiting):
            try:
                self.publish(events)
            except Exception as e:  # whatever the broker client raised, SQS will deliver these again
                kept = len(waiting) - index
                logger.error(
                    "broker refused the tasks of message %s, leaving %d message(s) for SQS to deliver again: %s",
                    message["MessageId"],
                    kept,
                    e,
                )
                break
            for event in events:
                logger.info("published %s for s3://%s/%s", event.action, event.bucket, event.key)
            published += len(events)
            done.append(message)
        return Batch(len(messages), published, self._delete(done), kept)

    def _accepted(self, message: Message) -> list[ObjectEvent]:
        """The events of a message that need a task; logs every other decision."""
        body = message["Body"]
        try:
            parsed = parse_body(body)
        except InvalidEvent as e:
            self._discard(message, str(e))
            return []
        if isinstance(parsed, SubscriptionRequest):
            self._discard(
                message,
                f"an SNS {parsed.message_type} for {parsed.topic_arn}; a queue cannot confirm it "
                "(confirm a cross-account subscription with `aws sns confirm-subscription`)",
            )
            return []
        accepted, skipped = self.rules.sort(parsed)
        log_skipped(logger, skipped)
        return list(accepted)

    def _discard(self, message: Message, reason: str) -> None:
        logger.error(
            "deleting message %s, which can never succeed: %s; body: %.*r",
            message["MessageId"],
            reason,
            LOGGED_BODY_CHARS,
            message["Body"],
        )

    def _delete(self, messages: Sequence[Message]) -> int:
        """Delete these messages in one request; returns how many SQS deleted."""
        if not messages:
            return 0
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)
        ]
        response = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        for failure in response.get("Failed", []):
            # Its tasks are published: a second delivery only publishes them again, which is harmless.
            logger.warning(
                "could not delete message %s: %s %s",
                messages[int(failure["Id"])]["MessageId"],
                failure.get("Code", ""),
                failure.get("Message", ""),
            )
        return len(response.get("Successful", []))
