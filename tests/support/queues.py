"""SQS queues for tests, on moto's mock or its server: a new queue, and what is still on one."""

from __future__ import annotations

from typing import Any


def make_queue(sqs: Any, name: str = "uploads", **attributes: str) -> tuple[str, str]:
    """(URL, ARN) of a new queue."""
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def messages_left(sqs: Any, url: str) -> int:
    """Messages still on the queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
