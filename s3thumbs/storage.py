"""The boto3 seam: look at, stream, write and delete objects.

Missing objects and refused access become s3thumbs errors; throttling, 5xx and network errors
are left as botocore raises them, for the task's retry policy.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from s3thumbs.budget import SOURCE_IN_MEMORY
from s3thumbs.errors import BadImage, Forbidden, PermanentFailure, SourceChanged

T = TypeVar("T")

# Sources up to this size stay in memory while they are read (and count in their decode budget);
# larger ones spill to disk.
SPOOL_MAX_MEMORY = SOURCE_IN_MEMORY
_CHUNK = 1024 * 1024
# Requests made at once by put_all, head_all and get_and_head: one thread each, up to this many.
UPLOAD_THREADS = 4
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})
_DENIED = frozenset({"403", "AccessDenied", "AllAccessDisabled", "NoSuchBucket", "InvalidBucketName"})
# A failed precondition on the object's version: it changed (the task retries and reads it again).
_CHANGED = frozenset({"412", "PreconditionFailed"})
# 4xx codes that pass: everything else in 4xx is a request that can never succeed.
_TRANSIENT_4XX = frozenset(
    {
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "429",
    }
)


def make_client(endpoint_url: str | None) -> Any:
    """An S3 client with boto3's credential chain, bounded timeouts and standard retries."""
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "total_max_attempts": 3},
        s3={"addressing_style": "path"} if endpoint_url else None,
        # SigV4 everywhere, presigned links included: botocore would sign those with SigV2, which AWS
        # regions opened since 2014 refuse and AWS is retiring.
        signature_version="s3v4",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD tells about an object."""

    key: str
    etag: str
    size: int
    content_type: str | None
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class NewObject:
    """A small object to write in one request."""

    key: str
    body: bytes
    content_type: str
    metadata: Mapping[str, str]


class Download:
    """A GET whose headers arrived and whose body is not read yet; close it (or spool it) once."""

    def __init__(self, bucket: str, info: ObjectInfo, body: Any) -> None:
        self.bucket = bucket
        self.info = info
        self._body = body

    def spool(self, max_bytes: int) -> IO[bytes]:
        """The body in memory up to SPOOL_MAX_MEMORY, else in a temporary file (the caller closes
        it); BadImage over ``max_bytes``.

        The size is checked before a byte of the body is read. Either is a plain file a decoder
        may read in place (a BytesIO's buffer, a mapped file) rather than copy.
        """
        with self:
            if self.info.size > max_bytes:
                raise BadImage(f"source is {self.info.size:,} bytes, over the limit of {max_bytes:,}")
            small = self.info.size <= SPOOL_MAX_MEMORY
            spooled: IO[bytes] = io.BytesIO() if small else tempfile.TemporaryFile()
            try:
                with _s3_errors(self.bucket, self.info.key):
                    shutil.copyfileobj(self._body, spooled, _CHUNK)
                spooled.seek(0)
            except BaseException:
                spooled.close()
                raise
            return spooled

    def close(self) -> None:
        """Give up the body (a body left unread costs its connection, not its bytes)."""
        self._body.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def error_code(error: ClientError) -> str:
    """The S3 error code of a ClientError (a HEAD's 404 has only the status as code)."""
    return str(error.response.get("Error", {}).get("Code", ""))


class Storage:
    """Objects in S3-compatible buckets, through one boto3 client."""

    def __init__(self, client: Any, upload_threads: int | None = None) -> None:
        self.client = client  # boto3 clients are thread-safe
        self.upload_threads = UPLOAD_THREADS if upload_threads is None else upload_threads
        self._uploads: ThreadPoolExecutor | None = None
        self._uploads_pid = 0

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """Look at an object; None when it does not exist."""
        with _s3_errors(bucket, key):
            try:
                response = self.client.head_object(Bucket=bucket, Key=key)
            except ClientError as e:
                if error_code(e) in _MISSING:
                    return None
                raise
        return _info(key, response)

    def get(self, bucket: str, key: str) -> Download | None:
        """Start reading an object: its headers now, its body when ``Download.spool`` asks; None if gone.

        The eTag comes with the content, so what is rendered is exactly the version the eTag names
        (no HEAD before, no window between them).
        """
        with _s3_errors(bucket, key):
            try:
                response = self.client.get_object(Bucket=bucket, Key=key)
            except ClientError as e:
                if error_code(e) in _MISSING:
                    return None
                raise
        return Download(bucket, _info(key, response), response["Body"])

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str,
        metadata: Mapping[str, str],
        cache_control: str | None = None,
    ) -> None:
        """Write one small object in a single request."""
        extra = {"CacheControl": cache_control} if cache_control else {}
        with _s3_errors(bucket, key):
            self.client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=dict(metadata), **extra
            )

    def put_all(self, bucket: str, objects: Sequence[NewObject], cache_control: str | None = None) -> None:
        """Write these objects, several requests at once, and return when every request has ended.

        Each is one PUT, as ``put`` makes it. If any fails, the first failure (in the order given)
        is raised, once the others have finished: none is left running in the background.
        """
        calls = [
            partial(self.put, bucket, obj.key, obj.body, obj.content_type, obj.metadata, cache_control)
            for obj in objects
        ]
        for answer in self._at_once(calls):
            if isinstance(answer, Exception):
                raise answer

    def head_all(self, objects: Sequence[tuple[str, str]]) -> list[ObjectInfo | None | Exception]:
        """HEAD these (bucket, key) objects, several requests at once, once every request has ended.

        Each answer is what ``head`` returns for it, or the exception it raised: the caller decides
        which failures matter.
        """
        return self._at_once([partial(self.head, bucket, key) for bucket, key in objects])

    def get_and_head(
        self, get: tuple[str, str], head: tuple[str, str]
    ) -> tuple[Download | None | Exception, ObjectInfo | None | Exception]:
        """Start the GET of one (bucket, key) and the HEAD of another at once: one round trip.

        Each answer is what ``get`` or ``head`` returns, or the exception it raised.
        """
        calls: list[Callable[[], object]] = [partial(self.get, *get), partial(self.head, *head)]
        got, headed = self._at_once(calls)
        return cast(Download | None | Exception, got), cast(ObjectInfo | None | Exception, headed)

    def _at_once(self, calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
        """Run these calls in the pool (one after another with fewer than 2 threads); each result or exception."""
        if len(calls) < 2 or self.upload_threads < 2:
            return [_outcome(call) for call in calls]
        if self._uploads is None or self._uploads_pid != os.getpid():
            # Threads do not survive a fork: a child process makes its own pool.
            self._uploads = ThreadPoolExecutor(self.upload_threads, thread_name_prefix="s3thumbs-io")
            self._uploads_pid = os.getpid()
        futures = [self._uploads.submit(_outcome, call) for call in calls]
        return [future.result() for future in futures]

    def delete(self, bucket: str, keys: list[str]) -> None:
        """Delete these keys; missing ones are fine."""
        for key in keys:
            with _s3_errors(bucket, key):
                self.client.delete_object(Bucket=bucket, Key=key)

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, page by page (no metadata: listing does not return it)."""
        paginator = self.client.get_paginator("list_objects_v2")
        with _s3_errors(bucket, prefix):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"], item["ETag"].strip('"'), item["Size"], None, {})


def _info(key: str, response: Mapping[str, Any]) -> ObjectInfo:
    """What a HEAD's or a GET's response headers tell about the object."""
    return ObjectInfo(
        key=key,
        etag=response["ETag"].strip('"'),
        size=response["ContentLength"],
        content_type=response.get("ContentType"),
        metadata=response.get("Metadata", {}),
    )


def _outcome(call: Callable[[], T]) -> T | Exception:
    try:
        return call()
    except Exception as e:  # handed to the caller, who raises it
        return e


@contextmanager
def _s3_errors(bucket: str, key: str) -> Iterator[None]:
    """Turn refusals and precondition failures into s3thumbs errors; let the rest through."""
    try:
        yield
    except ClientError as e:
        code = error_code(e)
        if code in _DENIED:
            raise Forbidden(f"s3://{bucket}/{key}: {code} ({e})") from e
        if code in _CHANGED:
            raise SourceChanged(f"s3://{bucket}/{key} changed while it was read") from e
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if 400 <= status < 500 and code not in _TRANSIENT_4XX:
            raise PermanentFailure(f"s3://{bucket}/{key}: S3 refused the request: {e}") from e
        raise
