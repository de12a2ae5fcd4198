"""SNS message signatures: an HTTP envelope is acted on only once Amazon SNS is shown to have signed it.

The rules are AWS's (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
the string to sign is ``name\\nvalue\\n`` for each signed field in byte order, the signature is RSA
PKCS#1 v1.5 over it with SHA1 (``SignatureVersion`` 1) or SHA256 (2), and the public key is the one
in the X.509 certificate at ``SigningCertURL``, fetched only over https from an SNS host and cached.
A ``TopicArn`` outside the allowed topics is refused even when the signature holds: anyone can sign
through SNS with a topic of their own.

Off by default (``S3THUMBS_SNS_VERIFY=0``): moto and other emulators sign with a fresh self-signed
certificate that no SNS host serves (moto also leaves ``Subject`` out of its string to sign), so
their messages cannot pass.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature as SignatureMismatch
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from s3thumbs.errors import InvalidSignature

# URLs we fetch on an envelope's say (SubscribeURL, SigningCertURL) must be SNS's own:
# sns.<region>.amazonaws.com, or .amazonaws.com.cn in the China regions.
SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS = {
    "Notification": NOTIFICATION_FIELDS,
    "SubscriptionConfirmation": CONFIRMATION_FIELDS,
    "UnsubscribeConfirmation": CONFIRMATION_FIELDS,
}
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
# SNS gives up on an endpoint after 15 s; a certificate fetch must leave time for the rest.
CERT_FETCH_TIMEOUT = 5.0
CERT_CACHE_SIZE = 32

FetchCertificate = Callable[[str], bytes]


def is_sns_url(url: str) -> bool:
    """True for an https URL on an AWS SNS host (no other port, no user info)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and parts.username is None
        and SNS_HOST.fullmatch(parts.hostname or "") is not None
    )


def fetch_certificate(url: str, client: httpx.Client | None = None) -> bytes:
    """The PEM at ``url``; a 4xx answer is a forgery's mark, other failures pass and propagate."""
    if client is None:
        with httpx.Client(timeout=CERT_FETCH_TIMEOUT, follow_redirects=False) as fresh:
            return fetch_certificate(url, fresh)
    response = client.get(url)
    if 400 <= response.status_code < 500:
        raise InvalidSignature(f"SigningCertURL answered {response.status_code}")
    response.raise_for_status()
    return response.content


def string_to_sign(envelope: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed for this envelope, or InvalidSignature when a signed field is missing."""
    fields = SIGNED_FIELDS.get(_text(envelope, "Type"))
    if fields is None:
        raise InvalidSignature(f"unknown SNS message type {envelope.get('Type')!r}")
    lines: list[str] = []
    for name in fields:
        if name == "Subject" and envelope.get(name) is None:
            continue  # signed only when present
        lines += [name, _text(envelope, name)]
    try:
        return "".join(line + "\n" for line in lines).encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidSignature("SNS envelope is not valid Unicode") from e


class Verifier:
    """Checks that an SNS envelope was signed by Amazon SNS for an allowed topic; raises InvalidSignature."""

    def __init__(
        self,
        fetch: FetchCertificate = fetch_certificate,
        *,
        topics: frozenset[str] | None = None,
        cache_size: int = CERT_CACHE_SIZE,
    ) -> None:
        self.fetch = fetch
        self.topics = topics
        self._certificate = functools.lru_cache(maxsize=cache_size)(self._load)

    def __call__(self, envelope: Mapping[str, Any]) -> None:
        """Return when ``envelope`` is genuine; a certificate that cannot be fetched now propagates."""
        signed = string_to_sign(envelope)
        topic = _text(envelope, "TopicArn")
        if self.topics is not None and topic not in self.topics:
            raise InvalidSignature("TopicArn not in S3THUMBS_SNS_TOPICS")
        hash_type = HASHES.get(_text(envelope, "SignatureVersion"))
        if hash_type is None:
            raise InvalidSignature(f"unknown SignatureVersion {envelope.get('SignatureVersion')!r}")
        try:
            signature = base64.b64decode(_text(envelope, "Signature"), validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidSignature("Signature is not base64") from e
        url = _text(envelope, "SigningCertURL")
        if not is_sns_url(url) or not urlsplit(url).path.endswith(".pem"):
            raise InvalidSignature("SigningCertURL is not a .pem on an AWS SNS host over https")
        certificate = self._certificate(url)
        now = datetime.now(UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise InvalidSignature("signing certificate is not valid now")
        key = certificate.public_key()
        if not isinstance(key, RSAPublicKey):
            raise InvalidSignature("signing certificate has no RSA key")
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hash_type())
        except SignatureMismatch as e:
            raise InvalidSignature("signature does not match") from e

    def _load(self, url: str) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(self.fetch(url))
        except ValueError as e:
            raise InvalidSignature("SigningCertURL is not a PEM certificate") from e


def _text(envelope: Mapping[str, Any], name: str) -> str:
    value = envelope.get(name)
    if not isinstance(value, str):
        raise InvalidSignature(f"SNS envelope has no {name} string")
    return value
