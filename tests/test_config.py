from __future__ import annotations

import pytest
from click.testing import CliRunner

from s3thumbs.cli.main import main
from s3thumbs.config import Settings
from s3thumbs.errors import ConfigError
from s3thumbs.keys import Layout, Size

# The SPEC's table of environment variables, column "default".
SPEC_DEFAULTS = {
    "broker_url": "redis://localhost:6379/0",
    "result_backend": "redis://localhost:6379/1",
    "s3_endpoint_url": None,
    "sizes": (Size(128, 128), Size(512, 512), Size(1024, 1024)),
    "output_prefix": "thumbnails/",
    "output_bucket": None,
    "buckets": None,
    "auth_token": None,
    "gallery_token": None,
    "allow_open": False,
    "max_pixels": 100000000,
    "max_decode_mib": 768,
    "max_bytes": 104857600,
    "max_body_bytes": 1048576,
    "format": "auto",
    "quality": 85,
    "cache_control": None,
    "task_time_limit": 120,
    "max_retries": 5,
    "visibility_timeout": 1800,
    "sns_topics": None,
    "sns_verify": False,
    "log_format": "text",
    "metrics_port": 9808,
    "reconcile_interval": None,
}


@pytest.mark.parametrize(("name", "expected"), SPEC_DEFAULTS.items(), ids=list(SPEC_DEFAULTS))
def test_defaults_are_the_specs(name, expected):
    assert getattr(Settings.from_env({}), name) == expected


def test_defaults_match_the_dataclass_defaults():
    assert Settings.from_env({}) == Settings()


def test_derived_defaults():
    settings = Settings.from_env({})

    assert settings.soft_time_limit == pytest.approx(96)
    assert settings.layout == Layout("thumbnails/", None)
    assert settings.bucket_allowed("anything")


def test_from_env_reads_only_the_mapping_it_is_given(monkeypatch):
    monkeypatch.setenv("S3THUMBS_QUALITY", "0")
    monkeypatch.setenv("S3THUMBS_SIZES", "12x")

    assert Settings.from_env({}).quality == 85


def test_unrelated_variables_are_ignored():
    env = {"AWS_DEFAULT_REGION": "eu-west-1", "PATH": "/bin", "S3THUMBS": "x", "S3THUMBS_UNKNOWN": "1"}

    assert Settings.from_env(env) == Settings.from_env({})


BAD = [
    ({"S3THUMBS_SIZES": "12x"}, "S3THUMBS_SIZES"),
    ({"S3THUMBS_SIZES": "0x10"}, "S3THUMBS_SIZES"),
    ({"S3THUMBS_SIZES": "abc"}, "S3THUMBS_SIZES"),
    ({"S3THUMBS_SIZES": "-1x5"}, "S3THUMBS_SIZES"),
    ({"S3THUMBS_SIZES": ""}, "S3THUMBS_SIZES"),
    ({"S3THUMBS_SIZES": "128x128,"}, "S3THUMBS_SIZES"),
    ({"S3THUMBS_QUALITY": "0"}, "S3THUMBS_QUALITY"),
    ({"S3THUMBS_QUALITY": "101"}, "S3THUMBS_QUALITY"),
    ({"S3THUMBS_QUALITY": "-1"}, "S3THUMBS_QUALITY"),
    ({"S3THUMBS_QUALITY": "high"}, "S3THUMBS_QUALITY"),
    ({"S3THUMBS_QUALITY": "85.5"}, "S3THUMBS_QUALITY"),
    ({"S3THUMBS_MAX_PIXELS": "0"}, "S3THUMBS_MAX_PIXELS"),
    ({"S3THUMBS_MAX_PIXELS": "-5"}, "S3THUMBS_MAX_PIXELS"),
    ({"S3THUMBS_MAX_PIXELS": "abc"}, "S3THUMBS_MAX_PIXELS"),
    ({"S3THUMBS_MAX_PIXELS": "1e8"}, "S3THUMBS_MAX_PIXELS"),
    ({"S3THUMBS_MAX_PIXELS": "178956971"}, "S3THUMBS_MAX_PIXELS"),
    ({"S3THUMBS_MAX_DECODE_MIB": "0"}, "S3THUMBS_MAX_DECODE_MIB"),
    ({"S3THUMBS_MAX_DECODE_MIB": "1GiB"}, "S3THUMBS_MAX_DECODE_MIB"),
    ({"S3THUMBS_MAX_BYTES": "0"}, "S3THUMBS_MAX_BYTES"),
    ({"S3THUMBS_MAX_BYTES": "-1"}, "S3THUMBS_MAX_BYTES"),
    ({"S3THUMBS_MAX_BODY_BYTES": "0"}, "S3THUMBS_MAX_BODY_BYTES"),
    ({"S3THUMBS_MAX_BODY_BYTES": "1MB"}, "S3THUMBS_MAX_BODY_BYTES"),
    ({"S3THUMBS_TASK_TIME_LIMIT": "0"}, "S3THUMBS_TASK_TIME_LIMIT"),
    ({"S3THUMBS_TASK_TIME_LIMIT": "-120"}, "S3THUMBS_TASK_TIME_LIMIT"),
    ({"S3THUMBS_MAX_RETRIES": "-1"}, "S3THUMBS_MAX_RETRIES"),
    ({"S3THUMBS_MAX_RETRIES": "many"}, "S3THUMBS_MAX_RETRIES"),
    ({"S3THUMBS_METRICS_PORT": "0"}, "S3THUMBS_METRICS_PORT"),
    ({"S3THUMBS_METRICS_PORT": "65536"}, "S3THUMBS_METRICS_PORT"),
    ({"S3THUMBS_RECONCILE_INTERVAL": "0"}, "S3THUMBS_RECONCILE_INTERVAL"),
    ({"S3THUMBS_RECONCILE_INTERVAL": "hourly"}, "S3THUMBS_RECONCILE_INTERVAL"),
    ({"S3THUMBS_FORMAT": "gif"}, "S3THUMBS_FORMAT"),
    ({"S3THUMBS_FORMAT": "jpg2000"}, "S3THUMBS_FORMAT"),
    ({"S3THUMBS_EVENTS_URL": "ftp://app.example/hooks", "S3THUMBS_EVENTS_SECRET": "k"}, "S3THUMBS_EVENTS_URL"),
    ({"S3THUMBS_EVENTS_URL": "https:///no-host", "S3THUMBS_EVENTS_SECRET": "k"}, "S3THUMBS_EVENTS_URL"),
    ({"S3THUMBS_EVENTS_URL": "https://app.example/hooks"}, "S3THUMBS_EVENTS_SECRET"),
    # Deliveries wait up to 300 s between attempts, reserved by a worker, whatever MAX_RETRIES says.
    (
        {
            "S3THUMBS_EVENTS_URL": "https://a.example/",
            "S3THUMBS_EVENTS_SECRET": "k",
            "S3THUMBS_MAX_RETRIES": "0",
            "S3THUMBS_VISIBILITY_TIMEOUT": "400",
        },
        "S3THUMBS_VISIBILITY_TIMEOUT",
    ),  # fmt: skip
    ({"S3THUMBS_KEEP_METADATA": "gps"}, "S3THUMBS_KEEP_METADATA"),
    ({"S3THUMBS_LOG_FORMAT": "xml"}, "S3THUMBS_LOG_FORMAT"),
    ({"S3THUMBS_ALLOW_OPEN": "maybe"}, "S3THUMBS_ALLOW_OPEN"),
    ({"S3THUMBS_ALLOW_OPEN": "2"}, "S3THUMBS_ALLOW_OPEN"),
    ({"S3THUMBS_SNS_VERIFY": "sometimes"}, "S3THUMBS_SNS_VERIFY"),
    ({"S3THUMBS_BUCKETS": " , "}, "S3THUMBS_BUCKETS"),
    ({"S3THUMBS_BUCKETS": ""}, "S3THUMBS_BUCKETS"),
    ({"S3THUMBS_SNS_TOPICS": ","}, "S3THUMBS_SNS_TOPICS"),
    ({"S3THUMBS_OUTPUT_PREFIX": "/"}, "S3THUMBS_OUTPUT_PREFIX"),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "136"}, "S3THUMBS_VISIBILITY_TIMEOUT"),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "376", "S3THUMBS_MAX_RETRIES": "9"}, "S3THUMBS_VISIBILITY_TIMEOUT"),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "420", "S3THUMBS_MAX_RETRIES": "20"}, "S3THUMBS_VISIBILITY_TIMEOUT"),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "120", "S3THUMBS_MAX_RETRIES": "0"}, "S3THUMBS_VISIBILITY_TIMEOUT"),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "0"}, "S3THUMBS_VISIBILITY_TIMEOUT"),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "soon"}, "S3THUMBS_VISIBILITY_TIMEOUT"),
    ({"S3THUMBS_TASK_TIME_LIMIT": "1800"}, "S3THUMBS_VISIBILITY_TIMEOUT"),
    ({"S3THUMBS_TASK_TIME_LIMIT": "600", "S3THUMBS_VISIBILITY_TIMEOUT": "616"}, "S3THUMBS_VISIBILITY_TIMEOUT"),
]


@pytest.mark.parametrize(("given", "variable"), BAD, ids=[repr(env) for env, _ in BAD])
def test_each_bad_value_raises_a_config_error_naming_the_variable(given, variable):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(given)

    message = str(caught.value)
    assert variable in message
    assert "\n" not in message


GOOD = [
    ({"S3THUMBS_SIZES": " 64x64 , 64x64,32X16"}, "sizes", (Size(64, 64), Size(32, 16))),
    ({"S3THUMBS_OUTPUT_PREFIX": "thumbs"}, "output_prefix", "thumbs/"),
    ({"S3THUMBS_OUTPUT_PREFIX": "thumbs/"}, "output_prefix", "thumbs/"),
    ({"S3THUMBS_OUTPUT_PREFIX": "out/small"}, "output_prefix", "out/small/"),
    ({"S3THUMBS_RESULT_BACKEND": ""}, "result_backend", None),
    ({"S3THUMBS_RESULT_BACKEND": "  "}, "result_backend", None),
    ({"S3THUMBS_RESULT_BACKEND": "redis://cache:6379/3"}, "result_backend", "redis://cache:6379/3"),
    ({"S3THUMBS_BROKER_URL": "amqp://rabbit:5672//"}, "broker_url", "amqp://rabbit:5672//"),
    ({"S3THUMBS_S3_ENDPOINT_URL": "http://localhost:9000"}, "s3_endpoint_url", "http://localhost:9000"),
    ({"S3THUMBS_S3_ENDPOINT_URL": ""}, "s3_endpoint_url", None),
    ({"S3THUMBS_OUTPUT_BUCKET": "thumbs"}, "output_bucket", "thumbs"),
    ({"S3THUMBS_BUCKETS": "photos, uploads ,photos"}, "buckets", frozenset({"photos", "uploads"})),
    (
        {"S3THUMBS_SNS_TOPICS": "arn:aws:sns:eu-west-1:1:a,arn:aws:sns:eu-west-1:1:b"},
        "sns_topics",
        frozenset({"arn:aws:sns:eu-west-1:1:a", "arn:aws:sns:eu-west-1:1:b"}),
    ),
    ({"S3THUMBS_ALLOW_OPEN": "1"}, "allow_open", True),
    ({"S3THUMBS_ALLOW_OPEN": "0"}, "allow_open", False),
    ({"S3THUMBS_QUALITY": "1"}, "quality", 1),
    ({"S3THUMBS_QUALITY": "100"}, "quality", 100),
    ({"S3THUMBS_MAX_PIXELS": "1"}, "max_pixels", 1),
    ({"S3THUMBS_MAX_RETRIES": "0"}, "max_retries", 0),
    ({"S3THUMBS_MAX_DECODE_MIB": "2048"}, "max_decode_mib", 2048),
    ({"S3THUMBS_GALLERY_TOKEN": "look"}, "gallery_token", "look"),
    ({"S3THUMBS_FORMAT": "jpeg"}, "format", "jpeg"),
    ({"S3THUMBS_FORMAT": "png"}, "format", "png"),
    ({"S3THUMBS_FORMAT": "webp"}, "format", "webp"),
    ({"S3THUMBS_FORMAT": "avif"}, "format", "avif"),
    ({"S3THUMBS_LOG_FORMAT": "json"}, "log_format", "json"),
    ({"S3THUMBS_CACHE_CONTROL": "public, max-age=86400"}, "cache_control", "public, max-age=86400"),
    ({"S3THUMBS_RECONCILE_INTERVAL": "3600", "S3THUMBS_BUCKETS": "photos"}, "reconcile_interval", 3600),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "137"}, "visibility_timeout", 137),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "421", "S3THUMBS_MAX_RETRIES": "20"}, "visibility_timeout", 421),
    ({"S3THUMBS_VISIBILITY_TIMEOUT": "121", "S3THUMBS_MAX_RETRIES": "0"}, "visibility_timeout", 121),
    ({"S3THUMBS_TASK_TIME_LIMIT": "600", "S3THUMBS_VISIBILITY_TIMEOUT": "617"}, "task_time_limit", 600),
]


@pytest.mark.parametrize(("given", "name", "expected"), GOOD, ids=[repr(env) for env, _, _ in GOOD])
def test_valid_values_are_read(given, name, expected):
    assert getattr(Settings.from_env(given), name) == expected


def test_output_bucket_and_prefix_make_the_layout():
    settings = Settings.from_env({"S3THUMBS_OUTPUT_PREFIX": "small", "S3THUMBS_OUTPUT_BUCKET": "thumbs"})

    assert settings.layout == Layout("small/", "thumbs")


def test_bucket_allow_list_is_enforced():
    settings = Settings.from_env({"S3THUMBS_BUCKETS": "photos,uploads"})

    assert settings.bucket_allowed("photos")
    assert not settings.bucket_allowed("other")


@pytest.mark.parametrize("name", ["AUTH_TOKEN", "GALLERY_TOKEN"])
def test_tokens_never_show_in_the_repr(name):
    token = "s3cr3t-t0ken-value"

    settings = Settings.from_env({f"S3THUMBS_{name}": token})

    assert getattr(settings, name.lower()) == token
    assert token not in repr(settings)
    assert token not in str(settings)
    assert token not in repr(getattr(settings, name.lower()))
    assert token not in repr(vars(settings))


def test_empty_auth_token_means_no_token():
    assert Settings.from_env({"S3THUMBS_AUTH_TOKEN": ""}).auth_token is None


def test_the_gallery_token_cannot_be_the_senders_token():
    # A browser keeps the gallery's password; it must never be one that posts events.
    with pytest.raises(ConfigError, match="S3THUMBS_GALLERY_TOKEN"):
        Settings.from_env({"S3THUMBS_AUTH_TOKEN": "same", "S3THUMBS_GALLERY_TOKEN": "same"})


@pytest.mark.parametrize(
    "command", [["thumbnail", "b", "k"], ["backfill", "b"], ["receiver"], ["worker"]], ids=lambda command: command[0]
)
@pytest.mark.parametrize(
    "given",
    [{"S3THUMBS_SIZES": "12x"}, {"S3THUMBS_QUALITY": "0"}, {"S3THUMBS_FORMAT": "gif"}],
    ids=lambda env: next(iter(env)),
)
def test_cli_stops_at_start_with_one_line_naming_the_variable(command, given):
    variable = next(iter(given))

    result = CliRunner().invoke(main, command, env=given)

    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert variable in lines[0]


def test_the_pixel_ceiling_is_pillows_own_hard_limit():
    from PIL import Image

    from s3thumbs.config import PILLOW_PIXEL_CEILING

    assert PILLOW_PIXEL_CEILING == 2 * Image.MAX_IMAGE_PIXELS
    assert Settings.from_env({"S3THUMBS_MAX_PIXELS": str(PILLOW_PIXEL_CEILING)}).max_pixels == PILLOW_PIXEL_CEILING
