"""Real distributed set-ups on loopback, started by the tests: a Redis Cluster, a Redis Sentinel
set, a RabbitMQ cluster.

Each harness runs the system's own servers (``redis-server``, ``redis-cli --cluster``,
``redis-server --sentinel``, ``rabbitmq-server`` + ``rabbitmqctl join_cluster``), every node
with its own port and data folder under the test's temporary folder; nothing touches the shared
Redis (6379) or RabbitMQ (5672), except RabbitMQ nodes registering with the host's epmd.

The fixtures are module-scoped (a set-up costs seconds: Redis ~2 s, RabbitMQ ~30 s on two
cores); nodes start in parallel. Make them fixtures of a test module by name::

    from tests import clusters

    redis_cluster = clusters.redis_cluster

A missing server skips the test locally and fails it in CI, like ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.sentinel import Sentinel

from vidwatch.procs import spawn
from vidwatch.services import broker_answers

REDIS_START_S = 20.0
RABBIT_START_S = 120.0
FAILOVER_S = 30.0
CTL_TIMEOUT_S = 120.0
SENTINEL_SERVICE = "vidwatch-test"
SENTINEL_DOWN_AFTER_MS = 1000


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all sockets held until every port is chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(count: int) -> list[int]:
    """``count`` free ports below 55535 whose cluster-bus port (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = secrets.randbelow(20000) + 20000
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


def wait_until(check: Callable[[], object], *, timeout_s: float, what: str, interval_s: float = 0.1) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class Server:
    """One server process of a set-up, with its port, data folder and log."""

    name: str
    port: int
    folder: Path
    args: list[str]
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(self.args, env=self.env, log_path=str(self.log), cwd=str(self.folder))
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the machine loses power."""
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, grace_s: float = 30.0) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _parallel(calls: list[Callable[[], object]]) -> list[object]:
    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


# --- Redis -----------------------------------------------------------------------------------------


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server")
    return str(binary)


def redis_server(folder: Path, port: int, *extra: str) -> Server:
    """A redis-server on loopback ``port``, data and log in ``folder`` (not yet started)."""
    args = [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
            "--appendonly", "no", "--repl-diskless-sync-delay", "0",
            "--daemonize", "no", "--logfile", str(folder / "server.log"), *extra]
    return Server(f"redis:{port}", port, folder, args)


@contextlib.contextmanager
def node_client(port: int, timeout_s: float = 1.0) -> Iterator[redis.Redis]:
    """A client of the one server on ``port``, closed afterwards (no socket is left to the collector)."""
    client = redis.Redis(port=port, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def _pings(port: int) -> bool:
    try:
        with node_client(port, 0.5) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def wait_redis(server: Server, timeout_s: float = REDIS_START_S) -> Server:
    def up() -> bool:
        if not server.alive():
            raise AssertionError(f"{server.name} exited at start:\n{server.tail()}")
        return _pings(server.port)

    wait_until(up, timeout_s=timeout_s, what=f"{server.name} to answer")
    return server


@dataclass
class RedisClusterSet:
    """A Redis Cluster: ``masters`` masters (each with ``replicas`` replicas) on loopback."""

    nodes: list[Server]
    masters: int

    @property
    def url(self) -> str:
        """The seed node's URL (what ``[redis] url`` holds in cluster mode)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def state_ok(self) -> bool:
        for node in self.nodes:
            try:
                with node_client(node.port) as client:
                    info = client.cluster("INFO")
            except redis.RedisError:
                return False
            text = info if isinstance(info, str) else "\n".join(f"{k}:{v}" for k, v in dict(info).items())
            if "cluster_state:ok" not in text:
                return False
        return True

    def flush(self) -> None:
        """Empty every master (between tests of one module)."""
        for node in self.nodes:
            with contextlib.suppress(redis.RedisError), node_client(node.port, 5.0) as client:
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_redis_cluster(folder: Path, *, masters: int = 3, replicas: int = 0) -> RedisClusterSet:
    """Start the nodes in parallel, join them with ``redis-cli --cluster create``, wait for ``cluster_state:ok``."""
    redis_cli = shutil.which("redis-cli")
    if redis_cli is None:
        _missing("redis-cli")
    count = masters * (1 + replicas)
    nodes = [
        redis_server(folder / f"node{i}", port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "2000")
        for i, port in enumerate(cluster_ports(count))
    ]
    cluster = RedisClusterSet(nodes, masters)
    try:
        for node in nodes:
            node.start()
        _parallel([lambda node=node: wait_redis(node) for node in nodes])
        created = subprocess.run(
            [str(redis_cli), "--cluster", "create", *(node.address for node in nodes),
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )
        if created.returncode != 0:
            raise AssertionError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
        wait_until(cluster.state_ok, timeout_s=30, what="cluster_state:ok on every node")
    except BaseException:
        cluster.stop()
        raise
    return cluster


@dataclass
class SentinelSet:
    """A primary, its replica and three sentinels watching them as ``service``.

    ``kill_primary()`` SIGKILLs whichever server is the primary now and waits until the sentinels
    have promoted the replica; ``revive()`` restarts the killed server, which the sentinels turn
    into a replica of the new primary.
    """

    servers: list[Server]
    sentinels: list[Server]
    service: str = SENTINEL_SERVICE
    killed: list[Server] = field(default_factory=list)

    @property
    def sentinel_addresses(self) -> list[str]:
        """``host:port`` of each sentinel (what ``[redis] sentinels`` holds)."""
        return [sentinel.address for sentinel in self.sentinels]

    @contextlib.contextmanager
    def sentinel(self) -> Iterator[Sentinel]:
        sentinel = Sentinel([("127.0.0.1", s.port) for s in self.sentinels], socket_timeout=1.0)
        try:
            yield sentinel
        finally:
            for client in sentinel.sentinels:
                client.close()

    def primary_port(self, timeout_s: float = FAILOVER_S) -> int:
        """The port the sentinels name as the primary (waiting while none is named, mid-fail-over)."""

        def named() -> int:
            try:
                with self.sentinel() as sentinel:
                    return int(sentinel.discover_master(self.service)[1])
            except redis.RedisError:
                return 0

        return int(wait_until(named, timeout_s=timeout_s, what=f"the sentinels to name a primary for {self.service}"))

    def primary(self) -> Server:
        port = self.primary_port()
        return next(server for server in self.servers if server.port == port)

    def _promoted(self, old_port: int) -> bool:
        port = self.primary_port()
        if port == old_port:
            return False
        try:
            with node_client(port) as client:
                role = client.role()
        except redis.RedisError:
            return False
        return role[0] == "master"

    def kill_primary(self, *, wait: bool = True) -> Server:
        """SIGKILL the current primary; with ``wait``, return once another server is primary."""
        victim = self.primary()
        victim.kill()
        self.killed.append(victim)
        if wait:
            self.wait_failover(victim.port)
        return victim

    def wait_failover(self, old_port: int, timeout_s: float = FAILOVER_S) -> int:
        wait_until(lambda: self._promoted(old_port), timeout_s=timeout_s, what=f"a primary other than :{old_port}")
        return self.primary_port()

    def revive(self) -> None:
        """Restart the killed servers (the sentinels make them replicas of the new primary)."""
        primary = self.primary_port()
        while self.killed:
            server = self.killed.pop()
            if "--replicaof" in server.args:
                at = server.args.index("--replicaof")
                del server.args[at : at + 3]
            server.args += ["--replicaof", "127.0.0.1", str(primary)]  # sooner than the sentinels' reconfiguring
            wait_redis(server.start())

    def replicas_in_sync(self) -> bool:
        """The primary counts every other live server as a connected replica."""
        try:
            with node_client(self.primary_port()) as client:
                info = client.info("replication")
        except redis.RedisError:
            return False
        live = sum(1 for server in self.servers if server.alive()) - 1
        online = [key for key, value in info.items() if key.startswith("slave") and isinstance(value, dict)
                  and value.get("state") == "online"]
        return len(online) >= live

    def flush(self) -> None:
        with contextlib.suppress(redis.RedisError), node_client(self.primary_port(), 5.0) as client:
            client.flushall()

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            server.stop()


def start_redis_sentinel(folder: Path, *, service: str = SENTINEL_SERVICE, sentinels: int = 3) -> SentinelSet:
    """A primary + one replica + ``sentinels`` sentinels (quorum 2), all on loopback."""
    primary_port, replica_port, *sentinel_ports = free_ports(2 + sentinels)
    primary = redis_server(folder / "primary", primary_port)
    replica = redis_server(folder / "replica", replica_port, "--replicaof", "127.0.0.1", str(primary_port))
    watchers = []
    for i, port in enumerate(sentinel_ports):
        home = folder / f"sentinel{i}"
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "sentinel.conf"  # the sentinel rewrites it: one file each
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {home}\nlogfile {home / 'server.log'}\n"
            f"sentinel monitor {service} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {service} {SENTINEL_DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {service} 2000\n"
            f"sentinel parallel-syncs {service} 1\n"
        )
        watchers.append(Server(f"sentinel:{port}", port, home, [_redis_binary(), str(conf), "--sentinel"]))
    setup = SentinelSet([primary, replica], watchers, service)
    try:
        for server in [primary, replica, *watchers]:
            server.start()
        _parallel([lambda server=server: wait_redis(server) for server in [primary, replica, *watchers]])
        wait_until(setup.replicas_in_sync, timeout_s=REDIS_START_S, what="the replica to sync")

        def sentinels_agree() -> bool:
            try:
                for watcher in watchers:
                    with node_client(watcher.port) as client:
                        if int(client.sentinel_master(service)["num-other-sentinels"]) < sentinels - 1:
                            return False
                return True
            except (redis.RedisError, KeyError):
                return False

        wait_until(sentinels_agree, timeout_s=REDIS_START_S, what="the sentinels to find each other")
    except BaseException:
        setup.stop()
        raise
    return setup


# --- RabbitMQ --------------------------------------------------------------------------------------


def _rabbit_tool(name: str) -> str:
    """RabbitMQ's own script (Debian's /usr/sbin wrapper switches to the rabbitmq user and drops our env)."""
    direct = Path("/usr/lib/rabbitmq/bin") / name
    found = str(direct) if direct.exists() else shutil.which(name)
    if found is None:
        _missing(name)
    return str(found)


@dataclass
class RabbitNode:
    server: Server

    @property
    def nodename(self) -> str:
        assert self.server.env is not None
        return self.server.env["RABBITMQ_NODENAME"]

    def url(self, vhost: str = "/") -> str:
        path = "/" if vhost == "/" else vhost
        return f"amqp://guest:guest@127.0.0.1:{self.server.port}/{path}"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([_rabbit_tool("rabbitmqctl"), "-q", "-n", self.nodename, *args], env=self.server.env,
                              capture_output=True, text=True, timeout=CTL_TIMEOUT_S, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"rabbitmqctl -n {self.nodename} {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def answers(self) -> bool:
        return broker_answers(self.url(), 1.0)

    def wait(self, timeout_s: float = RABBIT_START_S) -> RabbitNode:
        def up() -> bool:
            if not self.server.alive():
                raise AssertionError(f"{self.nodename} exited at start:\n{self.server.tail()}")
            return self.answers()

        wait_until(up, timeout_s=timeout_s, what=f"{self.nodename} to accept AMQP", interval_s=0.5)
        return self


def rabbit_node(folder: Path, amqp_port: int, dist_port: int, cookie: str) -> RabbitNode:
    """A rabbitmq-server node with its own name, ports and data folder, sharing ``cookie`` (not started)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "log").mkdir(exist_ok=True)
    (folder / "enabled_plugins").write_text("[].\n")
    cookie_file = folder / ".erlang.cookie"  # HOME is the folder: the VM and rabbitmqctl read it there
    if not cookie_file.exists():
        cookie_file.write_text(cookie)
        cookie_file.chmod(0o400)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(folder),
        "RABBITMQ_NODENAME": f"vwc{amqp_port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_BASE": str(folder),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
        "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
        "ERL_CRASH_DUMP": str(folder / "log" / "erl_crash.dump"),
        # two cores shared by many VMs: fewer scheduler threads, no busy-waiting
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none",
    }
    server = Server(f"rabbit:{amqp_port}", amqp_port, folder, [_rabbit_tool("rabbitmq-server")], env)
    return RabbitNode(server)


@dataclass
class RabbitClusterSet:
    """RabbitMQ nodes joined into one cluster; node 0 is the one the others joined."""

    nodes: list[RabbitNode]

    def urls(self, vhost: str = "/") -> list[str]:
        return [node.url(vhost) for node in self.nodes]

    def multi_url(self, vhost: str = "/") -> str:
        """``amqp://a;amqp://b;…``: what ``[broker] url`` holds for a cluster (kombu fails over in order)."""
        return ";".join(self.urls(vhost))

    def running(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.server.alive()]

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """rabbitmqctl against the first running node (cluster-wide commands)."""
        return self.running()[0].ctl(*args, check=check)

    def add_vhost(self, vhost: str | None = None) -> str:
        vhost = vhost or f"vwtest-{uuid.uuid4().hex[:10]}"
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return vhost

    def delete_vhost(self, vhost: str) -> None:
        self.ctl("delete_vhost", vhost, check=False)

    def cluster_nodes(self) -> set[str]:
        """Running nodes as the cluster itself reports them."""
        done = self.ctl("eval", "rabbit_nodes:all_running().")
        return {name.strip(" '[]\n") for name in done.stdout.split(",") if name.strip(" '[]\n")}

    def stop_node(self, index: int, *, hard: bool = False) -> RabbitNode:
        """Stop one node: SIGTERM (a clean shutdown) or, with ``hard``, SIGKILL of its VM."""
        node = self.nodes[index]
        if hard:
            node.server.kill()
        else:
            node.server.stop(grace_s=60)
        return node

    def start_node(self, index: int) -> RabbitNode:
        """Start a stopped node again; it rejoins the cluster from its data folder."""
        node = self.nodes[index]
        node.server.start()
        node.wait()
        wait_until(lambda: node.nodename in self.cluster_nodes(), timeout_s=60, what=f"{node.nodename} to rejoin")
        return node

    def stop(self) -> None:
        _parallel([lambda node=node: node.server.stop(grace_s=60) for node in self.nodes])


def start_rabbit_cluster(folder: Path, *, size: int = 3) -> RabbitClusterSet:
    """Start ``size`` nodes in parallel, then join nodes 1.. to node 0 (stop_app, join_cluster, start_app)."""
    cookie = secrets.token_hex(16).upper()
    ports = free_ports(2 * size)
    nodes = [rabbit_node(folder / f"node{i}", ports[2 * i], ports[2 * i + 1], cookie) for i in range(size)]
    cluster = RabbitClusterSet(nodes)
    try:
        for node in nodes:
            node.server.start()
        _parallel([node.wait for node in nodes])
        first = nodes[0].nodename
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first)
            node.ctl("start_app")
        expected = {node.nodename for node in nodes}
        wait_until(lambda: cluster.cluster_nodes() >= expected, timeout_s=60, what=f"a cluster of {sorted(expected)}")
    except BaseException:
        cluster.stop()
        raise
    return cluster


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSet]:
    """A 3-master Redis Cluster on loopback for this module (flushed before each use is the test's job)."""
    cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """Primary + replica + 3 sentinels on loopback for this module."""
    setup = start_redis_sentinel(tmp_path_factory.mktemp("redis-sentinel"))
    yield setup
    setup.stop()


@pytest.fixture(scope="module")
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitClusterSet]:
    """Three RabbitMQ nodes joined into one cluster on loopback for this module."""
    cluster = start_rabbit_cluster(tmp_path_factory.mktemp("rabbit-cluster"))
    yield cluster
    cluster.stop()
