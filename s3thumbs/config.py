"""Settings: every ``S3THUMBS_*`` variable read once, validated, frozen.

The only module that reads the environment. AWS credentials and region are left to boto3's own
chain; only the endpoint URL is ours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from s3thumbs.errors import ConfigError
from s3thumbs.keys import Layout, Size, normalize_prefix, parse_sizes
from s3thumbs.prefixes import SizeRules, parse_rules

FORMATS = ("auto", "jpeg", "png", "webp", "avif")
LOG_FORMATS = ("text", "json")
KEEP_METADATA = ("none", "copyright")
CROPS = ("centre", "attention")
# Retries wait 2**n seconds (n = retries so far, with full jitter), never more than this.
MAX_RETRY_COUNTDOWN = 300
# Pillow refuses images over twice its Image.MAX_IMAGE_PIXELS whatever we allow: a higher
# S3THUMBS_MAX_PIXELS would be a promise the decoder cannot keep.
PILLOW_PIXEL_CEILING = 178_956_970
# What one image may need to decode and convert, by default. A 100 MP progressive JPEG with full
# chroma (the heaviest RGB JPEG S3THUMBS_MAX_PIXELS admits) needs about 600 MiB; 768 MiB lets it
# through, and two worker processes of a 2 GiB pod stay inside it (README, "Scaling out").
DEFAULT_MAX_DECODE_MIB = 768

T = TypeVar("T")


class Secret(str):
    """A string that keeps itself out of reprs and logs."""

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class Settings:
    """Validated configuration for every s3thumbs process."""

    broker_url: str = "redis://localhost:6379/0"
    result_backend: str | None = "redis://localhost:6379/1"
    s3_endpoint_url: str | None = None
    public_s3_url: str | None = None  # the endpoint browsers reach, for the gallery's presigned URLs
    sizes: tuple[Size, ...] = (Size(128, 128), Size(512, 512), Size(1024, 1024))
    rules: tuple[tuple[str, tuple[Size, ...]], ...] = ()
    output_prefix: str = "thumbnails/"
    output_bucket: str | None = None
    buckets: frozenset[str] | None = None
    auth_token: Secret | None = field(default=None, repr=False)
    gallery_token: Secret | None = field(default=None, repr=False)
    allow_open: bool = False
    max_pixels: int = 100_000_000
    max_decode_mib: int = DEFAULT_MAX_DECODE_MIB
    max_bytes: int = 100 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    format: str = "auto"
    quality: int = 85
    cache_control: str | None = None
    keep_metadata: str = "none"
    crop: str = "centre"
    events_url: str | None = None
    events_secret: Secret | None = field(default=None, repr=False)
    task_time_limit: int = 120
    max_retries: int = 5
    visibility_timeout: int = 1800
    sns_topics: frozenset[str] | None = None
    sns_verify: bool = False
    log_format: str = "text"
    metrics_port: int = 9808
    reconcile_interval: int | None = None

    @property
    def size_rules(self) -> SizeRules:
        """The sizes of each key: S3THUMBS_RULES, else S3THUMBS_SIZES."""
        return SizeRules(self.sizes, self.rules)

    @property
    def layout(self) -> Layout:
        """Where thumbnails are written."""
        return Layout(self.output_prefix, self.output_bucket)

    @property
    def soft_time_limit(self) -> float:
        """The soft limit: 80% of the hard one, so a task can clean up before it is killed."""
        return self.task_time_limit * 0.8

    @property
    def longest_retry_countdown(self) -> int:
        """The longest a retried task waits, reserved by a worker, before it runs again; a completion
        event's delivery is retried up to MAX_RETRY_COUNTDOWN apart, whatever S3THUMBS_MAX_RETRIES says."""
        if self.events_url:
            return MAX_RETRY_COUNTDOWN
        return min(MAX_RETRY_COUNTDOWN, 2 ** (self.max_retries - 1)) if self.max_retries else 0

    def gallery_on(self, loopback: bool) -> bool:
        """Whether the receiver serves the gallery: behind S3THUMBS_GALLERY_TOKEN, or, with no token at
        all, on a ``loopback`` bind (``s3thumbs dev``)."""
        return bool(self.gallery_token) or (loopback and not self.auth_token)

    def bucket_allowed(self, bucket: str) -> bool:
        """True when the allow-list is off or names this bucket."""
        return self.buckets is None or bucket in self.buckets

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from a mapping (``os.environ`` in processes, a dict in tests)."""
        env = _Reader(environ)
        settings = cls(
            broker_url=env.text("BROKER_URL", cls.broker_url),
            result_backend=env.optional("RESULT_BACKEND", cls.result_backend),
            s3_endpoint_url=env.optional("S3_ENDPOINT_URL", None),
            public_s3_url=env.optional("PUBLIC_S3_URL", None),
            sizes=env.parse("SIZES", parse_sizes, cls.sizes),
            rules=env.parse("RULES", parse_rules, cls.rules),
            output_prefix=env.parse("OUTPUT_PREFIX", normalize_prefix, cls.output_prefix),
            output_bucket=env.optional("OUTPUT_BUCKET", None),
            buckets=env.names("BUCKETS"),
            auth_token=_secret(env.optional("AUTH_TOKEN", None)),
            gallery_token=_secret(env.optional("GALLERY_TOKEN", None)),
            allow_open=env.flag("ALLOW_OPEN"),
            max_pixels=env.integer("MAX_PIXELS", cls.max_pixels, maximum=PILLOW_PIXEL_CEILING),
            max_decode_mib=env.integer("MAX_DECODE_MIB", cls.max_decode_mib),
            max_bytes=env.integer("MAX_BYTES", cls.max_bytes),
            max_body_bytes=env.integer("MAX_BODY_BYTES", cls.max_body_bytes),
            format=env.choice("FORMAT", FORMATS, cls.format),
            quality=env.integer("QUALITY", cls.quality, maximum=100),
            cache_control=env.optional("CACHE_CONTROL", None),
            keep_metadata=env.choice("KEEP_METADATA", KEEP_METADATA, cls.keep_metadata),
            crop=env.choice("CROP", CROPS, cls.crop),
            events_url=env.parse("EVENTS_URL", _http_url, None),
            events_secret=_secret(env.optional("EVENTS_SECRET", None)),
            task_time_limit=env.integer("TASK_TIME_LIMIT", cls.task_time_limit),
            max_retries=env.integer("MAX_RETRIES", cls.max_retries, minimum=0),
            visibility_timeout=env.integer("VISIBILITY_TIMEOUT", cls.visibility_timeout),
            sns_topics=env.names("SNS_TOPICS"),
            sns_verify=env.flag("SNS_VERIFY"),
            log_format=env.choice("LOG_FORMAT", LOG_FORMATS, cls.log_format),
            metrics_port=env.integer("METRICS_PORT", cls.metrics_port, maximum=65535),
            reconcile_interval=env.optional_integer("RECONCILE_INTERVAL"),
        )
        if settings.gallery_token and settings.gallery_token == settings.auth_token:
            # A browser keeps the gallery's password: it must not also be the one that posts events.
            raise ConfigError("S3THUMBS_GALLERY_TOKEN must differ from S3THUMBS_AUTH_TOKEN")
        if settings.events_url and not settings.events_secret:
            raise ConfigError("S3THUMBS_EVENTS_URL needs S3THUMBS_EVENTS_SECRET: the key that signs the events")
        if settings.reconcile_interval is not None and settings.buckets is None:
            raise ConfigError("S3THUMBS_RECONCILE_INTERVAL needs S3THUMBS_BUCKETS: the buckets to reconcile")
        # On Redis a reserved task is redelivered once it has been unacknowledged this long.
        needed = settings.task_time_limit + settings.longest_retry_countdown
        if settings.visibility_timeout <= needed:
            raise ConfigError(
                f"S3THUMBS_VISIBILITY_TIMEOUT={settings.visibility_timeout} must exceed the hard time "
                f"limit plus the longest retry countdown ({settings.task_time_limit} + "
                f"{settings.longest_retry_countdown} = {needed} s), or a slow task is delivered twice"
            )
        return settings


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


def _http_url(value: str) -> str | None:
    """An http or https URL with a host, or None for an empty value."""
    url = value.strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url


class _Reader:
    """Reads ``S3THUMBS_<NAME>`` variables; every error names the variable."""

    prefix = "S3THUMBS_"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def _raw(self, name: str) -> str | None:
        return self.environ.get(self.prefix + name)

    def _fail(self, name: str, value: str, why: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{name}={value!r}: {why}")

    def text(self, name: str, default: str) -> str:
        value = self._raw(name)
        return value.strip() if value and value.strip() else default

    def optional(self, name: str, default: str | None) -> str | None:
        value = self._raw(name)
        if value is None:
            return default
        return value.strip() or None

    def parse(self, name: str, parser: Callable[[str], T], default: T) -> T:
        value = self._raw(name)
        if value is None:
            return default
        try:
            return parser(value)
        except ValueError as e:
            raise self._fail(name, value, str(e)) from e

    def integer(self, name: str, default: int, *, minimum: int = 1, maximum: int | None = None) -> int:
        value = self._raw(name)
        if value is None or not value.strip():
            return default
        try:
            number = int(value.strip())
        except ValueError as e:
            raise self._fail(name, value, "not a whole number") from e
        if number < minimum:
            raise self._fail(name, value, f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise self._fail(name, value, f"must be at most {maximum}")
        return number

    def optional_integer(self, name: str) -> int | None:
        value = self._raw(name)
        if value is None or not value.strip():
            return None
        return self.integer(name, 0)

    def flag(self, name: str) -> bool:
        value = (self._raw(name) or "0").strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise self._fail(name, value, "use 1 or 0")

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self._raw(name)
        if value is None or not value.strip():
            return default
        if value.strip().lower() not in choices:
            raise self._fail(name, value, f"use one of {', '.join(choices)}")
        return value.strip().lower()

    def names(self, name: str) -> frozenset[str] | None:
        value = self._raw(name)
        if value is None:
            return None
        names = frozenset(part.strip() for part in value.split(",") if part.strip())
        if not names:
            raise self._fail(name, value, "names no bucket; unset it to allow any")
        return names
