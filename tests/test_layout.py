"""The package's shape: short modules, and the import boundaries the architecture promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "s3thumbs"
MAX_LINES = 300
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))


def loaded_after_import(module: str) -> set[str]:
    """The top-level packages and s3thumbs modules a fresh interpreter has loaded after ``import module``."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    names = json.loads(output.stdout)
    return {name if name.startswith("s3thumbs") else name.split(".")[0] for name in names}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_300_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize(
    ("module", "never"),
    [
        # The HTTP receiver hands events to a publish function; Celery, kombu and Redis are wired in elsewhere.
        ("s3thumbs.receiver", {"celery", "kombu", "redis", "amqp", "boto3"}),
        # The SQS consumer shares the filter rules, not the HTTP receiver.
        ("s3thumbs.sqs", {"s3thumbs.receiver", "s3thumbs.gallery", "s3thumbs.sns", "starlette", "redis"}),
        # `s3thumbs thumbnail` renders without a broker.
        ("s3thumbs.thumbnailer", {"celery", "kombu"}),
        # The pure core imports no I/O library.
        ("s3thumbs.events", {"boto3", "celery", "starlette", "redis", "PIL"}),
        ("s3thumbs.notifications", {"boto3", "celery", "starlette", "redis", "PIL"}),
        ("s3thumbs.rules", {"boto3", "celery", "starlette", "redis", "PIL"}),
        ("s3thumbs.messages", {"boto3", "celery", "starlette", "redis", "PIL"}),
        ("s3thumbs.imaging", {"boto3", "celery", "starlette", "redis"}),
        # Commands are imported when they run: a receiver never loads dev's embedded S3 server.
        ("s3thumbs.cli.main", {"moto", "celery", "boto3", "starlette"}),
        ("s3thumbs.cli.services", {"moto"}),
    ],
)
def test_import_boundaries(module, never):
    assert loaded_after_import(module) & never == set()


def test_the_readme_code_layout_names_every_module():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Code layout", 1)[1].split("\n### ", 1)[0]
    named = set(re.findall(r"`([\w/]+\.py)`", section))
    missing = [str(p.relative_to(PACKAGE)) for p in MODULES if str(p.relative_to(PACKAGE)) not in named]
    assert missing == []
