"""Logged values cannot forge log lines: control characters are escaped, in messages and tracebacks."""

from __future__ import annotations

import io
import json
import logging

import pytest

from s3thumbs.errors import SourceChanged
from s3thumbs.logs import EscapeControls, escape_controls, make_formatter

FORGED = "a.jpg\n2026-01-01 00:00:00,000 INFO s3thumbs: wrote 3 thumbnails of s3://photos/forged.jpg"


def logged(log_format: str, message: str, *args: object, error: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(EscapeControls())
    logger = logging.getLogger(f"tests.logs.{log_format}")
    logger.propagate, logger.handlers = False, [handler]
    if error is None:
        logger.warning(message, *args, extra={"key": args[-1] if args else None})
    else:
        try:
            raise error
        except SourceChanged:
            logger.exception(message, *args)
    return stream.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("tab\there", "tab\\there"),
        ("line\u2028separator", "line\\u2028separator"),
        ("nul\x00", "nul\\x00"),
        ("c1\x85", "c1\\x85"),
        ("été 写真 + % spaces", "été 写真 + % spaces"),
    ],
)
def test_control_characters_are_escaped_and_nothing_else(text, expected):
    assert escape_controls(text) == expected


def test_a_key_with_a_newline_stays_on_its_one_text_line():
    text = logged("text", "skipped s3://%s/%s: %s", "photos", FORGED, "not an image key")

    assert text.count("\n") == 1
    assert "forged.jpg" in text and "\\n2026-01-01" in text


def test_a_key_with_a_newline_stays_inside_its_json_line():
    [line] = logged("json", "skipped s3://%s/%s", "photos", FORGED).splitlines()

    record = json.loads(line)
    assert record["key"] == FORGED  # the field keeps the key as it is, JSON-escaped
    assert "\\n2026" in record["message"]


def test_an_exception_quoting_a_key_cannot_forge_lines_after_its_traceback():
    error = SourceChanged(f"s3://photos/{FORGED} changed while it was read")

    text = logged("text", "s3://%s/%s failed", "photos", FORGED, error=error)

    lines = text.splitlines()
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1].startswith("s3thumbs.errors.SourceChanged: s3://photos/a.jpg\\n2026-01-01")
    assert not any(line.startswith("2026-01-01 00:00:00,000 INFO") for line in lines)
