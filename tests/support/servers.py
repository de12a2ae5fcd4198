"""The pytest plugin that starts servers: the one way to get a private Redis, RabbitMQ or moto server.

Fixtures: ``redis_server`` and ``rabbitmq_server`` (one per session, shared), ``redis_factory`` and
``rabbitmq_factory`` (servers of a test's own, to stop, kill and restart), ``moto_server_url``. A
fixture wider than a test starts its own Redis with ``start_redis``. A server that cannot start
fails the test under CI and skips it elsewhere (``unavailable``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import kombu
import pytest
import redis
from moto.server import ThreadedMotoServer

__all__ = [
    "AMQP_URL_ENV",
    "REDIS_URL_ENV",
    "BrokerUnavailable",
    "PortInUse",
    "RabbitMQNode",
    "RabbitMQServer",
    "RedisProcess",
    "RedisServer",
    "empty_rabbitmq",
    "empty_redis",
    "free_port",
    "in_ci",
    "start_redis",
    "unavailable",
]

REDIS_URL_ENV = "S3THUMBS_TEST_REDIS_URL"
AMQP_URL_ENV = "S3THUMBS_TEST_AMQP_URL"

LOOPBACK = "127.0.0.1"
DEBIAN_RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
REDIS_START_TIMEOUT = 20.0
RABBITMQ_START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
OVERRIDE_TIMEOUT = 10.0
PORT_ATTEMPTS = 3

_T = TypeVar("_T")


class BrokerUnavailable(RuntimeError):
    """A broker binary is missing or its server did not come up."""


class PortInUse(BrokerUnavailable):
    """Another process holds the port a server was meant to listen on."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def in_ci() -> bool:
    """Tell whether the CI environment variable asks for strict behaviour."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def unavailable(reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere: a missing broker never passes silently."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error rather than a skip)", pytrace=False)
    pytest.skip(reason)


def _require(start: Callable[[], _T], context: str = "") -> _T:
    """Return `start()`, or fail/skip the test with the reason it raised BrokerUnavailable."""
    try:
        return start()
    except BrokerUnavailable as exc:
        reason = f"{exc}{context}"
    unavailable(reason)


_PR_SET_PDEATHSIG = 1


def _death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """Return a preexec hook that has Linux send `sig` to the child if the test process dies first."""
    if not sys.platform.startswith("linux"):
        return None
    return lambda: ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _Process:
    """A child process in its own session whose output goes to a log file."""

    _live: set[_Process] = set()

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        death_signal: signal.Signals = signal.SIGKILL,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.death_signal = death_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Spawn the process; it must not be running already."""
        if self.alive:
            raise RuntimeError(f"{self.argv[0]} is already running (pid {self.pid})")
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_death_signal(self.death_signal),
            )
        _Process._live.add(self)

    def signal_group(self, sig: signal.Signals) -> None:
        """Send `sig` to the process group, if any member is left."""
        if self._popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, sig)

    def wait(self, timeout: float | None) -> bool:
        """Wait for the leader to exit; True once it has."""
        if self._popen is None:
            return True
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def terminate(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the group, then SIGKILL it if the leader outlives `timeout`."""
        if self.alive:
            self.signal_group(signal.SIGTERM)
            self.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group and reap the leader."""
        if self._popen is None:
            return
        self.signal_group(signal.SIGKILL)
        self.wait(STOP_TIMEOUT)
        _Process._live.discard(self)

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of the captured output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @classmethod
    def kill_all(cls) -> None:
        """Last-resort cleanup for processes a finaliser never reached."""
        for proc in list(cls._live):
            proc.kill()


atexit.register(_Process.kill_all)


class _Startable(Protocol):
    def start(self) -> None: ...


_S = TypeVar("_S", bound=_Startable)


def _start_on_free_port(make: Callable[[int], _S]) -> _S:
    """Start a server on a fresh free port, retrying when another process grabbed it first."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server = make(free_port())
        try:
            server.start()
        except PortInUse:
            if attempt == PORT_ATTEMPTS:
                raise
            continue
        return server
    raise AssertionError("unreachable")


def _check_port_free(port: int) -> None:
    if _port_open(LOOPBACK, port, timeout=0.5):
        raise PortInUse(f"port {port} on {LOOPBACK} is already taken by another process")


class _Server:
    """A server identified by its URL, of one of ``schemes``, on ``default_port`` unless the URL says."""

    schemes: tuple[str, ...] = ()
    default_port = 0

    def __init__(self, url: str) -> None:
        self._parts = urlsplit(url)
        if self._parts.scheme not in self.schemes:
            raise ValueError(f"not a {self.schemes[0]}:// URL: {url!r}")

    @property
    def url(self) -> str:
        return urlunsplit(self._parts)

    @property
    def host(self) -> str:
        return self._parts.hostname or LOOPBACK

    @property
    def port(self) -> int:
        return self._parts.port or self.default_port

    def answers(self) -> bool:
        """Tell whether the server takes a client right now."""
        raise NotImplementedError

    def wait_ready(self, timeout: float) -> None:
        """Wait until the server answers, or raise BrokerUnavailable."""
        deadline = time.monotonic() + timeout
        while not self.answers():
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"{self!r} did not answer within {timeout:.0f}s")
            time.sleep(0.1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class _OwnProcess:
    """A server this test session runs itself, as ``_process``."""

    _process: _Process

    @property
    def running(self) -> bool:
        return self._process.alive

    @property
    def pid(self) -> int | None:
        return self._process.pid


class RedisServer(_Server):
    """A reachable Redis server identified by its URL."""

    schemes = ("redis", "rediss")
    default_port = 6379

    def url_for(self, db: int) -> str:
        """Return the URL of database `db` on this server."""
        return urlunsplit(self._parts._replace(path=f"/{db}"))

    def client(self, db: int = 0) -> redis.Redis:
        """Return a new client for database `db`; the caller closes it."""
        return redis.Redis.from_url(self.url_for(db), socket_connect_timeout=2, socket_timeout=5)

    def ping(self) -> bool:
        """Tell whether the server answers PING right now."""
        try:
            with self.client() as client:
                return bool(client.ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False

    def answers(self) -> bool:
        return self.ping()


class RedisProcess(_OwnProcess, RedisServer):
    """A private redis-server on loopback that tests may stop, kill and restart in place."""

    def __init__(
        self,
        executable: str,
        directory: Path,
        port: int,
        *,
        appendonly: bool = False,
        appendfsync: str = "always",
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(f"redis://{LOOPBACK}:{port}")
        self.directory = directory
        self.appendonly = appendonly
        directory.mkdir(parents=True, exist_ok=True)
        options = {
            "bind": LOOPBACK,
            "port": str(port),
            "dir": str(directory),
            "save": "",
            "daemonize": "no",
            "appendonly": "yes" if appendonly else "no",
        }
        if appendonly:
            options["appendfsync"] = appendfsync
        argv = [executable]
        for name, value in options.items():
            argv += [f"--{name}", value]
        argv += list(extra_args)
        self._process = _Process(argv, directory / "redis.log", cwd=directory)

    def start(self, timeout: float = REDIS_START_TIMEOUT) -> None:
        """Start the server on its port and directory, and wait until it has loaded its data."""
        _check_port_free(self.port)
        self._process.start()
        deadline = time.monotonic() + timeout
        while not self._ready():
            if not self._process.alive:
                self._process.kill()
                error = PortInUse if "Address already in use" in self.log_tail() else BrokerUnavailable
                raise error(f"redis-server on port {self.port} exited at startup; log:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self._process.kill()
                raise BrokerUnavailable(
                    f"redis-server on port {self.port} was not ready within {timeout:.0f}s; log:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _ready(self) -> bool:
        """Tell whether our own process answers and has finished loading."""
        try:
            with self.client() as client:
                client.ping()
                info = client.info()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False
        return info.get("process_id") == self.pid and not info.get("loading")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut down gracefully with SIGTERM."""
        self._process.terminate(timeout)

    def kill(self) -> None:
        """Kill with SIGKILL, as a crash would."""
        self._process.kill()

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of the server log."""
        return self._process.log_tail(lines)


class RabbitMQServer(_Server):
    """A reachable RabbitMQ broker identified by its AMQP URL."""

    schemes = ("amqp", "amqps", "pyamqp")
    default_port = 5672

    def connects(self, timeout: float = 5.0) -> bool:
        """Tell whether an AMQP connection succeeds right now."""
        with kombu.Connection(self.url, connect_timeout=timeout) as conn:
            try:
                conn.connect()
            except (OSError, *conn.connection_errors):
                return False
            return True

    def answers(self) -> bool:
        return self.connects()


def _rabbitmq_scripts() -> tuple[Path, Path] | None:
    """Locate rabbitmq-server and rabbitmqctl, skipping Debian's switch-user wrapper."""
    server: Path | None = None
    if DEBIAN_RABBITMQ_SERVER.is_file():
        server = DEBIAN_RABBITMQ_SERVER
    elif found := shutil.which("rabbitmq-server"):
        server = Path(found)
        resolved = server.resolve()
        if resolved.name == "rabbitmq-script-wrapper":
            server = resolved.parent / "rabbitmq-server"
    if server is None or not server.is_file():
        return None
    ctl = server.parent / "rabbitmqctl"
    if not ctl.is_file():
        found_ctl = shutil.which("rabbitmqctl")
        if found_ctl is None:
            return None
        ctl = Path(found_ctl)
    return server, ctl


class RabbitMQNode(_OwnProcess, RabbitMQServer):
    """A private RabbitMQ node on loopback with its own epmd, data, logs and Erlang cookie."""

    def __init__(self, server: Path, ctl: Path, directory: Path, port: int) -> None:
        super().__init__(f"amqp://guest:guest@{LOOPBACK}:{port}//")
        self.server_script = server
        self.ctl_script = ctl
        self.directory = directory
        self.nodename = f"s3thumbs-test-{os.getpid()}-{uuid.uuid4().hex[:8]}@localhost"
        self.dist_port = free_port()
        self._epmd: _Process | None = None
        self.epmd_port: int | None = None
        if epmd := shutil.which("epmd"):
            self.epmd_port = free_port()
            argv = [epmd, "-port", str(self.epmd_port), "-address", LOOPBACK]
            self._epmd = _Process(argv, directory / "epmd.log", cwd=directory)
        self.env = self._environment()
        self._write_config()
        # The server script runs the VM as its child and turns SIGTERM into a clean stop.
        self._process = _Process(
            [str(server)], directory / "server.log", env=self.env, cwd=directory, death_signal=signal.SIGTERM
        )
        self.startup_seconds: float | None = None

    def _environment(self) -> dict[str, str]:
        d = self.directory
        erl_args = "-kernel inet_dist_use_interface {127,0,0,1}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_EPMD_"))}
        env.update(
            HOME=str(d / "home"),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS=LOOPBACK,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_PID_FILE=str(d / "rabbitmq.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=erl_args,
        )
        if self.epmd_port is not None:
            env.update(
                ERL_EPMD_PORT=str(self.epmd_port),
                ERL_EPMD_ADDRESS=LOOPBACK,
                RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=f"{erl_args} -start_epmd false",
                RABBITMQ_CTL_ERL_ARGS="-start_epmd false",
            )
        return env

    def _write_config(self) -> None:
        d = self.directory
        for sub in ("home", "mnesia", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")
        (d / "advanced.config").write_text("[].\n")
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {LOOPBACK}:{self.port}\n"
            f"cluster_name = {self.nodename}\n"
            "loopback_users.guest = true\n"
            "disk_free_limit.absolute = 1MB\n"
        )

    def start(self, timeout: float = RABBITMQ_START_TIMEOUT) -> None:
        """Start the node (and its epmd) and wait until AMQP connections succeed."""
        try:
            self._start(time.monotonic() + timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, deadline: float) -> None:
        if self._epmd is not None and self.epmd_port is not None and not self._epmd.alive:
            self._epmd.start()
            while not _port_open(LOOPBACK, self.epmd_port, timeout=0.5):
                if not self._epmd.alive or time.monotonic() > deadline:
                    raise BrokerUnavailable(f"epmd did not start; log:\n{self._epmd.log_tail()}")
                time.sleep(0.05)
        _check_port_free(self.port)
        started = time.monotonic()
        self._process.start()
        while not (_port_open(LOOPBACK, self.port, timeout=0.5) and self._ready()):
            if not self._process.alive:
                logs = self._logs()
                error = PortInUse if "eaddrinuse" in logs else BrokerUnavailable
                raise error(f"RabbitMQ node {self.nodename} exited at startup; {logs}")
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"RabbitMQ node {self.nodename} refused AMQP connections for "
                    f"{time.monotonic() - started:.0f}s; {self._logs()}"
                )
            time.sleep(0.1)
        self.startup_seconds = time.monotonic() - started

    def _ready(self) -> bool:
        """Tell whether this node, not some other broker, accepts AMQP connections."""
        with kombu.Connection(self.url, connect_timeout=5) as conn:
            try:
                conn.connect()
            except (OSError, *conn.connection_errors):
                return False
            return bool(conn.connection.server_properties.get("cluster_name") == self.nodename)

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run rabbitmqctl against this node."""
        return subprocess.run(
            [str(self.ctl_script), "-n", self.nodename, *args],
            env=self.env,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the node with `rabbitmqctl stop`, killing its group if that does not work."""
        if self.running:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                self.ctl("stop", timeout=timeout)
            self._process.wait(timeout)
        self._process.kill()

    def kill(self) -> None:
        """Kill the node with SIGKILL, as a crash would; epmd stays up for a restart."""
        self._process.kill()

    def close(self) -> None:
        """Stop the node and its epmd."""
        try:
            self.stop()
        finally:
            if self._epmd is not None:
                self._epmd.kill()

    def _logs(self) -> str:
        parts = [f"output:\n{self._process.log_tail()}"]
        node_log = self.directory / "log" / f"{self.nodename}.log"
        if node_log.is_file():
            lines = node_log.read_text(errors="replace").splitlines()[-30:]
            parts.append(f"{node_log.name}:\n" + "\n".join(lines))
        return "\n".join(parts)


def _launch_redis(
    directory: Path, *, appendonly: bool = False, appendfsync: str = "always", extra_args: Sequence[str] = ()
) -> RedisProcess:
    executable = shutil.which("redis-server")
    if executable is None:
        raise BrokerUnavailable("redis-server is not installed (Debian: apt-get install redis-server)")
    return _start_on_free_port(
        lambda port: RedisProcess(
            executable, directory, port, appendonly=appendonly, appendfsync=appendfsync, extra_args=extra_args
        )
    )


def start_redis(
    directory: Path, *, appendonly: bool = False, appendfsync: str = "always", extra_args: Sequence[str] = ()
) -> RedisProcess:
    """Start a private redis-server in ``directory``; the caller kills it. Fails or skips when it cannot."""
    return _require(
        lambda: _launch_redis(directory, appendonly=appendonly, appendfsync=appendfsync, extra_args=extra_args)
    )


def _launch_rabbitmq(directory: Path) -> RabbitMQNode:
    scripts = _rabbitmq_scripts()
    if scripts is None:
        raise BrokerUnavailable("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)")
    attempts = iter(range(PORT_ATTEMPTS))
    return _start_on_free_port(lambda port: RabbitMQNode(*scripts, directory / f"node{next(attempts)}", port))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> RedisServer:
    """A Redis server for the session: private, or the one named by S3THUMBS_TEST_REDIS_URL."""
    if url := os.environ.get(REDIS_URL_ENV):
        shared = RedisServer(url)
        _require(lambda: shared.wait_ready(OVERRIDE_TIMEOUT), f" (from {REDIS_URL_ENV})")
        return shared
    server = start_redis(tmp_path_factory.mktemp("redis"))
    request.addfinalizer(server.kill)
    return server


@pytest.fixture
def redis_factory(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Callable[..., RedisProcess]:
    """Start extra private redis-servers, e.g. `redis_factory(appendonly=True)`; all are killed afterwards."""

    def make(*, appendonly: bool = False, appendfsync: str = "always", extra_args: Sequence[str] = ()) -> RedisProcess:
        directory = tmp_path_factory.mktemp("redis-extra")
        server = start_redis(directory, appendonly=appendonly, appendfsync=appendfsync, extra_args=extra_args)
        request.addfinalizer(server.kill)
        return server

    return make


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> RabbitMQServer:
    """A RabbitMQ broker for the session: private, or the one named by S3THUMBS_TEST_AMQP_URL."""
    if url := os.environ.get(AMQP_URL_ENV):
        shared = RabbitMQServer(url)
        _require(lambda: shared.wait_ready(OVERRIDE_TIMEOUT), f" (from {AMQP_URL_ENV})")
        return shared
    node = _require(lambda: _launch_rabbitmq(tmp_path_factory.mktemp("rabbitmq")))
    request.addfinalizer(node.close)
    return node


@pytest.fixture
def rabbitmq_factory(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Callable[[], RabbitMQNode]:
    """Start extra private RabbitMQ nodes that tests may stop, kill and restart; all are closed afterwards."""

    def make() -> RabbitMQNode:
        directory = tmp_path_factory.mktemp("rabbitmq-extra")
        node = _require(lambda: _launch_rabbitmq(directory))
        request.addfinalizer(node.close)
        return node

    return make


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    """The URL of moto's S3/SNS/SQS server on a free loopback port, for tests with real HTTP and processes."""
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def empty_redis(server: RedisServer, broker_db: int, backend_db: int) -> dict[str, str]:
    """Broker and result-backend settings on two emptied databases of ``server``."""
    for db in (broker_db, backend_db):
        with server.client(db) as client:
            client.flushdb()
    return {"broker_url": server.url_for(broker_db), "result_backend": server.url_for(backend_db)}


def empty_rabbitmq(url: str, *queues: str) -> str:
    """Declare these durable queues on the RabbitMQ at ``url``, empty them, and return the URL."""
    with kombu.Connection(url) as connection:
        for name in queues:
            queue = kombu.Queue(name, durable=True)(connection.default_channel)
            queue.declare()
            queue.purge()
    return url
