import threading

import pytest

from tests.helpers import wait_for
from vidwatch.daemon.fsguard import FsGuard, RootStuck


def test_a_hanging_call_marks_its_root_stuck_until_it_returns() -> None:
    guard = FsGuard(deadline_s=0.2)
    release = threading.Event()
    with pytest.raises(RootStuck, match="no answer within"):
        guard.call("/nas", lambda: release.wait(30))
    assert "/nas" in guard.stuck_roots()
    with pytest.raises(RootStuck, match="has not returned"):
        guard.call("/nas", lambda: 1)  # fails fast instead of piling up blocked threads
    assert guard.call("/local", lambda: 42) == 42  # other roots are unaffected
    release.set()
    wait_for(lambda: "/nas" not in guard.stuck_roots(), timeout_s=5, what="the root to answer again")
    assert guard.call("/nas", lambda: 7) == 7
    guard.close()


def test_errors_of_the_call_pass_through() -> None:
    guard = FsGuard(deadline_s=1)

    def missing() -> None:
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        guard.call("/r", missing)
    guard.close()
