"""The exceptions s3thumbs raises. Their shape is the policy::

    S3ThumbsError
     ├── ConfigError        bad S3THUMBS_* variable: the process stops at start
     ├── InvalidEvent       a body that is no notification: the receiver answers 400
     ├── InvalidSignature   an SNS envelope SNS did not sign for an allowed topic: the receiver answers 403
     ├── StoreUnavailable   the status store cannot be read: the gallery says so (503)
     ├── SourceChanged      the source changed while it was read: retried
     └── PermanentFailure   the task fails once, is logged, and is never retried
          ├── BadImage          not an image, truncated, empty, too large, unsupported
          ├── TimedOut          the render outlived the soft time limit
          └── Forbidden         a bucket outside the allow-list, or S3 access denied

Transient S3 and network errors (botocore's) are not wrapped: the task's retry policy sees
them as they are.
"""

from __future__ import annotations


class S3ThumbsError(Exception):
    """Root of every error s3thumbs raises on purpose."""


class ConfigError(S3ThumbsError):
    """Raised when a configuration variable is missing its mark; names the variable."""


class InvalidEvent(S3ThumbsError):
    """Raised when a request body is not JSON or not a notification at all."""


class InvalidSignature(S3ThumbsError):
    """Raised when an SNS envelope's signature, certificate URL or topic does not verify."""


class StoreUnavailable(S3ThumbsError):
    """Raised when the status store does not answer a read."""


class SourceChanged(S3ThumbsError):
    """Raised when the source object changed between being looked at and being read."""


class PermanentFailure(S3ThumbsError):
    """Raised when retrying cannot help: the task fails once with this reason."""


class BadImage(PermanentFailure):
    """Raised when the source is not an image s3thumbs can or may decode."""


class TimedOut(PermanentFailure):
    """Raised when rendering one source outlived the task's soft time limit."""


class Forbidden(PermanentFailure):
    """Raised when a bucket is not allowed, or S3 denies access."""
