"""Signing SNS envelopes as SNS does: a signing key, its self-signed certificate, and the signature."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
# AWS's documented order of signed fields (Subject only when present).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
DIGESTS = {"1": hashes.SHA1, "2": hashes.SHA256}


def make_signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_certificate(
    key: rsa.RSAPrivateKey, *, valid_from: timedelta = timedelta(days=-1), valid_until: timedelta = timedelta(days=1)
) -> bytes:
    """A self-signed PEM certificate, like the one moto serves."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + valid_from)
        .not_valid_after(now + valid_until)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def sign(envelope: dict[str, Any], key: rsa.RSAPrivateKey, version: str = "1") -> dict[str, Any]:
    """The envelope with SignatureVersion, Signature and SigningCertURL (unless it has one) set as SNS sets them."""
    names = [name for name in SIGNED_FIELDS[envelope["Type"]] if envelope.get(name) is not None]
    text = "".join(f"{name}\n{envelope[name]}\n" for name in names).encode()
    signature = key.sign(text, padding.PKCS1v15(), DIGESTS[version]())
    return {
        "SigningCertURL": CERT_URL,
        **envelope,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
    }
