"""The reference ThumbHash decoder (Evan Wallace's JavaScript, npm's ``thumbhash``), run by Node: an
independent check of s3thumbs' encoder. Installed with npm into a cache folder on first use."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.support.servers import unavailable

PACKAGE = "thumbhash@0.1.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "s3thumbs-tests" / "thumbhash-js"
ENCODE = """
import { rgbaToThumbHash } from %s;
const images = JSON.parse(process.argv[1]);
console.log(JSON.stringify(images.map(([w, h, rgba]) =>
  Buffer.from(rgbaToThumbHash(w, h, Buffer.from(rgba, "base64"))).toString("base64"))));
"""
DECODE = """
import { thumbHashToRGBA, thumbHashToAverageRGBA, thumbHashToApproximateAspectRatio } from %s;
const hashes = JSON.parse(process.argv[1]);
console.log(JSON.stringify(hashes.map((text) => {
  const hash = Buffer.from(text, "base64");
  const { w, h, rgba } = thumbHashToRGBA(hash);
  const average = thumbHashToAverageRGBA(hash);
  return { w, h, rgba: Buffer.from(rgba).toString("base64"), ratio: thumbHashToApproximateAspectRatio(hash),
           average: [average.r, average.g, average.b, average.a] };
})));
"""


@dataclass(frozen=True)
class Decoded:
    """What the reference decoder makes of a hash."""

    image: Image.Image  # RGBA, the placeholder picture
    ratio: float  # its approximate aspect ratio, width / height
    average: tuple[float, float, float, float]  # RGBA, 0..1


def encode(pictures: list[Image.Image]) -> list[str]:
    """The reference encoder's ThumbHashes (base64) of RGBA pictures of at most 100×100."""
    given = [[p.width, p.height, base64.b64encode(p.tobytes()).decode("ascii")] for p in pictures]
    return list(json.loads(_node(ENCODE, given)))


def decode(hashes: list[str]) -> list[Decoded]:
    """Decode base64 ThumbHashes with the reference decoder."""
    return [
        Decoded(
            Image.frombytes("RGBA", (item["w"], item["h"]), base64.b64decode(item["rgba"])),
            item["ratio"],
            tuple(item["average"]),
        )
        for item in json.loads(_node(DECODE, hashes))
    ]


def _node(script: str, argument: object) -> str:
    module = json.dumps(_reference_module().as_uri())
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script % module, json.dumps(argument)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _reference_module() -> Path:
    module = CACHE / "node_modules" / "thumbhash" / "thumbhash.js"
    if module.exists():
        return module
    if not (shutil.which("node") and shutil.which("npm")):
        unavailable(
            "node and npm are needed to run the reference ThumbHash decoder (Debian: apt-get install nodejs npm)"
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--silent", PACKAGE],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return module
