"""Periodic reconciliation cannot start without the list of buckets it would look at."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from s3thumbs.cli.main import main


@pytest.mark.parametrize("command", [["worker"], ["receiver"]])
def test_reconciliation_needs_the_list_of_buckets(command):
    result = CliRunner().invoke(main, command, env={"S3THUMBS_RECONCILE_INTERVAL": "60"})

    assert result.exit_code != 0
    assert "S3THUMBS_RECONCILE_INTERVAL needs S3THUMBS_BUCKETS" in result.output
