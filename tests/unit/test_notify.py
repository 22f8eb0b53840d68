"""sd_notify datagrams, to a path socket and to an abstract one."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from vidwatch.ops.notify import Notifier
from vidwatch.ops.service import ServiceNotifier
from vidwatch.results.keys import Keys
from vidwatch.status import DaemonStatus


def listener(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_one_datagram_per_notification_on_a_path_and_an_abstract_socket(tmp_path: Path) -> None:
    name = f"vidwatch-test-{uuid.uuid4().hex}"
    for env_value, bind_to in ((str(tmp_path / "notify.sock"), str(tmp_path / "notify.sock")),
                               (f"@{name}", f"\0{name}")):
        with listener(bind_to) as sock:
            notifier = Notifier(environ={"NOTIFY_SOCKET": env_value})
            assert notifier.ready("watching 1 root")
            assert notifier.watchdog()
            assert notifier.stopping()
            assert sock.recv(4096) == b"READY=1\nSTATUS=watching 1 root"
            assert sock.recv(4096) == b"WATCHDOG=1"
            assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_silent_without_a_socket_and_tolerant_of_a_gone_manager(tmp_path: Path) -> None:
    assert not Notifier(environ={}).enabled
    assert not Notifier(environ={"NOTIFY_SOCKET": "relative"}).enabled
    assert not Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")}).watchdog()


def test_watchdog_interval_is_read_for_this_process_only() -> None:
    assert Notifier(environ={"WATCHDOG_USEC": "30000000"}).watchdog_s == 30.0
    assert Notifier(environ={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_s == 30.0
    assert Notifier(environ={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_s is None


class FakeDaemon:
    def __init__(self) -> None:
        self.observers = {"/srv/nvr": True}
        self.redis_ok = True
        self.client = self

    def pipeline(self, transaction: bool) -> FakeDaemon:
        return self

    def zcard(self, _key: str) -> None:
        return None

    def scard(self, _key: str) -> None:
        return None

    def execute(self) -> list[int]:
        return [3, 7]

    def status(self) -> DaemonStatus:
        return DaemonStatus(settling=2, claiming=1, videos_in_progress=1, publish_retries=0,
                            observers=dict(self.observers), root_errors={}, redis_ok=self.redis_ok)


class Recorder(Notifier):
    def __init__(self) -> None:
        super().__init__(environ={"NOTIFY_SOCKET": "/run/fake", "WATCHDOG_USEC": "3000000"})
        self.sent: list[str] = []

    def notify(self, *assignments: str) -> bool:
        self.sent.append("\n".join(assignments))
        return True


LINE = "2 file(s) in flight; backlog 2 settling, 3 to normalize, 7 not done"


def test_ready_once_everything_is_up_and_watchdog_only_while_observers_live() -> None:
    daemon, notifier, clock = FakeDaemon(), Recorder(), [0.0]
    broker = [False]
    service = ServiceNotifier(daemon, notifier, lambda: (broker[0], ""), Keys("t"), clock=lambda: clock[0])  # type: ignore[arg-type]
    steps = [  # (seconds later, broker up, observers alive, what is sent)
        (0.0, False, True, ["STATUS=starting: waiting for the broker", "WATCHDOG=1"]),
        (2.0, True, True, [f"READY=1\nSTATUS={LINE}", "WATCHDOG=1"]),
        (0.5, True, True, []),
        (0.6, True, False, []),  # observer dead: no ping
        (1.0, True, False, []),
        (1.0, True, True, ["WATCHDOG=1"]),
        (1.0, True, None, ["WATCHDOG=1"]),  # the root vanished: reported, not a reason to restart
    ]
    for later, broker_up, alive, expected in steps:
        clock[0] += later
        broker[0] = broker_up
        daemon.observers = {} if alive is None else {"/srv/nvr": alive}
        notifier.sent.clear()
        service.after_tick()
        assert notifier.sent == expected, (clock[0], notifier.sent)
    service.stopping()
    assert notifier.sent[-1].startswith("STOPPING=1")
