"""The bare steps `pipeline.py` measures the pipeline against: GET the original, `imaging.render` it,
PUT each size, one after another and nothing else.

One copy, used by the bare processes, the one-task profile and the worker of `--bare-task`, so that
all three run the very same steps. It imports only s3thumbs: the `--bare-task` worker loads it.
"""

from __future__ import annotations

import io
import time
from typing import Any

from s3thumbs import imaging
from s3thumbs.encoding import Thumbnail
from s3thumbs.keys import Layout


def bare_steps(
    client: Any, bucket: str, key: str, spec: imaging.RenderSpec, layout: Layout
) -> tuple[dict[str, Any], list[Thumbnail], tuple[float, float, float]]:
    """GET, render, PUT each size of ``bucket/key``: the GET's response (its body read), the
    thumbnails, and the ms of the GET, the render and the PUTs."""
    t0 = time.perf_counter()
    got = client.get_object(Bucket=bucket, Key=key)
    data = got["Body"].read()
    t1 = time.perf_counter()
    thumbnails = imaging.render(io.BytesIO(data), spec).thumbnails
    t2 = time.perf_counter()
    for thumb in thumbnails:
        client.put_object(
            Bucket=bucket,
            Key=layout.thumbnail_key(bucket, key, thumb.box),
            Body=thumb.body,
            ContentType=thumb.content_type,
        )
    t3 = time.perf_counter()
    return got, thumbnails, ((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000)
