"""``s3thumbs dev``: the whole pipeline in one process, with no outside server.

An embedded S3 endpoint (moto's server) with one bucket whose notifications go, through an SNS
topic with an HTTP subscription, to the receiver, exactly as AWS delivers them; the receiver;
and a Celery worker, on an in-process broker unless ``S3THUMBS_BROKER_URL`` names a real one.
Everything runs in this process, so Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import uvicorn
from kombu.utils.url import maybe_sanitize_url
from moto.server import ThreadedMotoServer

from s3thumbs import server
from s3thumbs.config import Settings
from s3thumbs.demo import upload_demo

BUCKET = "uploads"
ACCESS_KEY = "s3thumbs"
SECRET_KEY = "s3thumbs-dev-secret"
REGION = "us-east-1"
IN_PROCESS_BROKER = "memory://localhost/"


@dataclass(frozen=True)
class Endpoints:
    """Where the embedded services listen."""

    s3: str
    receiver: str


def dev_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment dev runs with: the user's, with an in-process broker and no result backend
    unless they named their own, and credentials the embedded S3 accepts."""
    env = dict(environ)
    env.setdefault("S3THUMBS_BROKER_URL", IN_PROCESS_BROKER)
    env.setdefault("S3THUMBS_RESULT_BACKEND", "")
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION)
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return env


def banner(endpoints: Endpoints, settings: Settings, gallery: bool = True) -> list[str]:
    """What dev prints: the endpoint, credentials, bucket and commands that work as shown; ``gallery``
    False when the receiver serves none (a public address without S3THUMBS_GALLERY_TOKEN)."""
    s3 = endpoints.s3
    credentials = f"AWS_ACCESS_KEY_ID={ACCESS_KEY} AWS_SECRET_ACCESS_KEY={SECRET_KEY} AWS_DEFAULT_REGION={REGION}"
    return [
        f"S3 endpoint: {s3}",
        f"bucket: {BUCKET}",
        f"access key: {ACCESS_KEY}",
        f"secret key: {SECRET_KEY}",
        f"region: {REGION}",
        f"receiver: {endpoints.receiver}/events",
        f"gallery: {endpoints.receiver}/" if gallery else "gallery: off (set S3THUMBS_GALLERY_TOKEN)",
        f"broker: {maybe_sanitize_url(settings.broker_url)}",
        f"sizes: {', '.join(map(str, settings.sizes))} under {settings.output_prefix}",
        f"upload: {credentials} aws --endpoint-url {s3} s3 cp photo.jpg s3://{BUCKET}/photo.jpg",
        f"list: {credentials} aws --endpoint-url {s3} s3 ls --recursive s3://{BUCKET}/",
        f'boto3: boto3.client("s3", endpoint_url="{s3}", aws_access_key_id="{ACCESS_KEY}", '
        f'aws_secret_access_key="{SECRET_KEY}", region_name="{REGION}")'
        f'.upload_file("photo.jpg", "{BUCKET}", "photo.jpg")',
        "Press Ctrl-C to stop.",
    ]


class ReceiverThread:
    """uvicorn serving the receiver from a background thread."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off", **server.options())
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="receiver", daemon=True)

    def start(self, timeout: float = 10) -> int:
        """Start serving; return the bound port."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start (is the port in use?)")
            time.sleep(0.05)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wire_bucket(s3: Any, sns: Any, receiver_url: str) -> None:
    """Create the bucket and send its put/delete notifications to the receiver through SNS."""
    s3.create_bucket(Bucket=BUCKET)
    topic = sns.create_topic(Name="s3thumbs-dev")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{receiver_url}/events")
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "Id": "s3thumbs",
                    "TopicArn": topic,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )


def start_s3(host: str, port: int) -> tuple[ThreadedMotoServer, str]:
    """Start moto's server; return it and its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def serve(
    settings: Settings,
    receiver_app: Any,
    run_worker: Callable[[], None],
    s3: Any,
    sns: Any,
    s3_url: str,
    show: Callable[[str], None],
    host: str,
    receiver_port: int,
    demo: bool = False,
    gallery: bool = True,
) -> None:
    """Start the receiver, wire the bucket to it, and block in the worker until Ctrl-C.

    With ``demo``, the demo images are uploaded first; ``gallery`` says whether the receiver serves one.
    """
    receiver = ReceiverThread(receiver_app, host, receiver_port)
    try:
        receiver_url = f"http://{host}:{receiver.start()}"
        wire_bucket(s3, sns, _with_token(receiver_url, settings))
        for line in banner(Endpoints(s3_url, receiver_url), settings, gallery):
            show(line)
        if demo:  # before the worker starts (it takes over stdout); the tasks wait on the broker
            upload_demo(s3, BUCKET, show)
            if gallery:
                show(f"demo: open {receiver_url}/ to watch the thumbnails appear")
        run_worker()
    finally:
        show("Stopping…")
        receiver.stop()


def _with_token(url: str, settings: Settings) -> str:
    """SNS sends a token as HTTP Basic credentials in the subscription URL."""
    if not settings.auth_token:
        return url
    return url.replace("://", f"://s3thumbs:{quote(settings.auth_token, safe='')}@", 1)


def apply_environment(env: Mapping[str, str]) -> None:
    """Make this process use dev's environment (boto3 reads credentials from it)."""
    for name in set(os.environ) - set(env):
        del os.environ[name]
    os.environ.update(env)
