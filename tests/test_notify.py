from __future__ import annotations

import boto3
import pytest
from click.testing import CliRunner

from s3thumbs.cli.main import main
from s3thumbs.notify import merged, rule


@pytest.fixture
def sns_topic_arn(mocked_s3):
    sns = boto3.client("sns", region_name="us-east-1")
    return sns.create_topic(Name="uploads")["TopicArn"]


def configuration(s3):
    config = s3.get_bucket_notification_configuration(Bucket="photos")
    config.pop("ResponseMetadata")
    return config


def test_notify_adds_put_and_delete_events_for_a_topic(mocked_s3, sns_topic_arn):
    result = CliRunner().invoke(main, ["notify", "photos", "--arn", sns_topic_arn, "--prefix", "uploads/"])
    assert result.exit_code == 0, result.output
    [entry] = configuration(mocked_s3)["TopicConfigurations"]
    assert entry["TopicArn"] == sns_topic_arn
    assert sorted(entry["Events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert entry["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "uploads/"}]


def test_notify_keeps_other_rules_and_replaces_its_own(mocked_s3, sns_topic_arn):
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="audit")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mocked_s3.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={
            "QueueConfigurations": [{"Id": "audit", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:Put"]}]
        },
    )
    runner = CliRunner()
    assert runner.invoke(main, ["notify", "photos", "--arn", sns_topic_arn]).exit_code == 0
    assert runner.invoke(main, ["notify", "photos", "--arn", sns_topic_arn, "--suffix", ".jpg"]).exit_code == 0
    config = configuration(mocked_s3)
    assert [q["Id"] for q in config["QueueConfigurations"]] == ["audit"]
    [ours] = config["TopicConfigurations"]
    assert ours["Filter"]["Key"]["FilterRules"] == [{"Name": "suffix", "Value": ".jpg"}]


def test_minio_webhook_arns_are_queue_configurations():
    config = merged(
        {
            "TopicConfigurations": [
                {"Id": "s3thumbs", "TopicArn": "arn:aws:sns:us-east-1:1:old", "Events": ["s3:ObjectCreated:*"]}
            ]
        },
        "arn:minio:sqs::S3THUMBS:webhook",
    )
    assert config == {"QueueConfigurations": [rule("arn:minio:sqs::S3THUMBS:webhook")]}
    assert config["QueueConfigurations"][0]["QueueArn"] == "arn:minio:sqs::S3THUMBS:webhook"


@pytest.mark.parametrize("arn", ["not-an-arn", "arn:aws:s3:::bucket", "arn:aws:sns"])
def test_notify_refuses_an_arn_it_cannot_place(mocked_s3, arn):
    result = CliRunner().invoke(main, ["notify", "photos", "--arn", arn])
    assert result.exit_code == 2
    assert "--arn" in result.output
