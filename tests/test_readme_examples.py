"""The README's examples for apps do what it says, against what s3thumbs really sends."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from s3thumbs.completions import failed, signature
from tests.support.servers import unavailable

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SECTION = README.split("## Integrating with your app", 1)[1].split("\n## ", 1)[0]
SECRET = "whsec-test"


def example(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", SECTION, re.S)
    [block] = [b for b in blocks if containing in b]
    return block


def signed_event() -> tuple[bytes, str, str]:
    event = failed("photos", "a ü.jpg", "e1", "not an image")
    body = json.dumps(event).encode()
    return body, signature(SECRET, body, int(time.time())), event["id"]


def test_the_python_example_accepts_a_real_event_once_and_refuses_a_forged_or_old_one():
    scope: dict = {}
    exec(example("python", "def accept"), scope)
    accept, seen = scope["accept"], set()
    body, header, event_id = signed_event()

    assert accept(body, header, SECRET, seen)["id"] == event_id
    assert accept(body, header, SECRET, seen) is None  # the redelivery
    assert accept(body.replace(b"photos", b"photoz"), header, SECRET, set()) is None
    assert accept(body, signature(SECRET, body, int(time.time()) - 3600), SECRET, set()) is None


def test_the_node_example_does_the_same(tmp_path):
    if not shutil.which("node"):
        unavailable("node is needed to run the README's Node.js example (Debian: apt-get install nodejs)")
    (tmp_path / "accept.mjs").write_text(example("js", "createHmac"))
    body, header, event_id = signed_event()
    old = signature(SECRET, body, int(time.time()) - 3600)
    script = (
        'import { accept } from "./accept.mjs";\n'
        "const [body, header, old, secret] = process.argv.slice(2);\n"
        "const raw = Buffer.from(body), seen = new Set();\n"
        "console.log(JSON.stringify([accept(raw, header, secret, seen)?.id ?? null, accept(raw, header, secret, seen),"
        " accept(Buffer.from(body.replace('photos', 'photoz')), header, secret, new Set()),"
        " accept(raw, old, secret, new Set())]));\n"
    )
    (tmp_path / "run.mjs").write_text(script)

    done = subprocess.run(
        ["node", "run.mjs", body.decode(), header, old, SECRET],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [event_id, None, None, None]
