"""Ceph RGW topics: where an RGW bucket's notifications are pushed, made through RGW's SNS-style API.

RGW pushes each event to a topic's ``push-endpoint``, sending the credentials of that URL
(``http://s3thumbs:TOKEN@host/events``) as ``Authorization: Basic``. It refuses to create such a topic
unless the request came over https: on Ceph 16.2 that means an https endpoint, or
``rgw_trust_forwarded_https = true`` and the request carrying ``X-Forwarded-Proto: https`` (what a
TLS proxy in front of RGW sends); this module sends the header when the endpoint is plain http.

Topics are not persistent by default: RGW then pushes inside the S3 request that caused the event, in
order, with no retry (an upload while the receiver is down is found by reconciliation). A persistent
topic queues and retries, but on 16.2 its queue was seen to stop for good after the receiver had been
unreachable, until radosgw restarted (README, "Deploy on Ceph RGW").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

DEFAULT_TOPIC = "s3thumbs"
# RGW takes any region name; boto3 needs one to sign with.
DEFAULT_REGION = "us-east-1"


class TopicRefused(Exception):
    """Raised when RGW refuses to create or update the topic; says why, and what to do about it."""


def make_client(endpoint_url: str) -> Any:
    """A client of RGW's SNS-style API at its S3 endpoint, with boto3's credential chain."""
    session = boto3.session.Session()
    config = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})
    return session.client(
        "sns", endpoint_url=endpoint_url, region_name=session.region_name or DEFAULT_REGION, config=config
    )


def has_credentials(url: str) -> bool:
    """True when a push-endpoint URL carries a user name or password."""
    parts = urlsplit(url)
    return bool(parts.username or parts.password)


def forward_https(client: Any) -> Any:
    """Mark every request of a boto3 client as forwarded by a TLS proxy: ``X-Forwarded-Proto: https``,
    added before signing so that it is signed like the rest."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-Proto"] = "https"

    client.meta.events.register(f"before-sign.{client.meta.service_model.service_id.hyphenize()}", add_header)
    return client


def create_topic(sns: Any, push_endpoint: str, *, name: str = DEFAULT_TOPIC, persistent: bool = False) -> str:
    """Create (or update: RGW's CreateTopic replaces the attributes) the topic; return its ARN."""
    attributes = {"push-endpoint": push_endpoint, "persistent": "true" if persistent else "false"}
    try:
        response = sns.create_topic(Name=name, Attributes=attributes)
    except ClientError as e:
        raise TopicRefused(_why(e, push_endpoint)) from e
    arn: str = response["TopicArn"]
    return arn


def _why(error: ClientError, push_endpoint: str) -> str:
    # RGW answers with an S3-style error document, which boto3's SNS client files under "Code".
    code = str(error.response.get("Error", {}).get("Code") or error.response.get("Code") or "refused")
    if code == "InvalidInput" and has_credentials(push_endpoint):
        return (
            "RGW refused a push-endpoint with credentials over plain http (InvalidInput): give RGW an https "
            "endpoint, or set rgw_trust_forwarded_https = true on it (the request carries X-Forwarded-Proto: https)"
        )
    return f"RGW refused the topic: {code}"
