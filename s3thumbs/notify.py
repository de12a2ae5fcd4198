"""Wire a bucket's notifications to s3thumbs through the S3 API, merged with what is there.

``PutBucketNotificationConfiguration`` replaces the whole configuration, on AWS and on MinIO
alike, so this reads it, swaps in (or adds) the rule with our id, and writes it back.
"""

from __future__ import annotations

from typing import Any

RULE_ID = "s3thumbs"
EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
# Which list of the configuration an ARN belongs in, by its service.
_SECTIONS = {
    "sns": ("TopicConfigurations", "TopicArn"),
    "sqs": ("QueueConfigurations", "QueueArn"),
    "lambda": ("LambdaFunctionConfigurations", "LambdaFunctionArn"),
}


def section_for(arn: str) -> tuple[str, str]:
    """The configuration list and ARN field for a destination ARN (MinIO webhooks are "sqs")."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] not in _SECTIONS:
        raise ValueError(
            f"{arn!r} is not an SNS topic, SQS queue, Lambda or MinIO target ARN "
            "(e.g. arn:aws:sns:REGION:ACCOUNT:TOPIC or arn:minio:sqs::ID:webhook)"
        )
    return _SECTIONS[parts[2]]


def rule(arn: str, prefix: str | None = None, suffix: str | None = None) -> dict[str, Any]:
    """Our rule: put and delete events only, optionally filtered by key prefix and suffix."""
    _, arn_field = section_for(arn)
    entry: dict[str, Any] = {"Id": RULE_ID, arn_field: arn, "Events": list(EVENTS)}
    filters = [{"Name": name, "Value": value} for name, value in (("prefix", prefix), ("suffix", suffix)) if value]
    if filters:
        entry["Filter"] = {"Key": {"FilterRules": filters}}
    return entry


def merged(current: dict[str, Any], arn: str, prefix: str | None = None, suffix: str | None = None) -> dict[str, Any]:
    """``current`` with our rule added, replacing any earlier rule of ours; other rules kept."""
    section, _ = section_for(arn)
    config = {name: value for name, value in current.items() if name != "ResponseMetadata"}
    for name in [s for s, _ in _SECTIONS.values()]:
        kept = [entry for entry in config.get(name, []) if entry.get("Id") != RULE_ID]
        if kept:
            config[name] = kept
        else:
            config.pop(name, None)
    config[section] = [*config.get(section, []), rule(arn, prefix, suffix)]
    return config


def apply(client: Any, bucket: str, arn: str, prefix: str | None = None, suffix: str | None = None) -> dict[str, Any]:
    """Read the bucket's notification configuration, merge our rule in, write it back."""
    config = merged(client.get_bucket_notification_configuration(Bucket=bucket), arn, prefix, suffix)
    client.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    return config
