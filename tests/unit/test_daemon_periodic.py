"""The main loop's timetable, its view of Redis, and the index pruner's handling of an outage."""

from __future__ import annotations

import logging
import threading

import pytest
import redis

from vidwatch.daemon.periodic import IndexPruner, RedisHealth, Timetable
from vidwatch.errors import ResultsError
from vidwatch.results.keys import Keys


def test_jobs_run_when_due_in_registration_order() -> None:
    ran: list[tuple[str, float]] = []
    table = Timetable()
    table.every("heartbeat", 5.0, lambda: ran.append(("heartbeat", now)))
    table.every("resume", 10.0, lambda: ran.append(("resume", now)), first_at=10.0)
    for now in (0.0, 4.9, 5.0, 10.0, 14.9, 15.0):
        table.run_due(now)
    assert ran == [("heartbeat", 0.0), ("heartbeat", 5.0), ("heartbeat", 10.0), ("resume", 10.0),
                   ("heartbeat", 15.0)]


def test_a_job_that_raises_stays_due_and_stops_the_round() -> None:
    calls: list[str] = []
    failing = [True]

    def flaky() -> None:
        calls.append("flaky")
        if failing[0]:
            raise ConnectionError("away")

    table = Timetable()
    table.every("flaky", 5.0, flaky)
    table.every("after", 5.0, lambda: calls.append("after"))
    with pytest.raises(ConnectionError):
        table.run_due(0.0)
    failing[0] = False
    table.run_due(0.1)  # due again at the next tick, not 5 s later
    assert calls == ["flaky", "flaky", "after"]


def test_names_are_unique_and_postpone_moves_a_job() -> None:
    ran: list[float] = []
    table = Timetable()
    table.every("rescan", 60.0, lambda: ran.append(now))
    with pytest.raises(ValueError, match="already registered"):
        table.every("rescan", 1.0, lambda: None)
    table.postpone("rescan", 60.0)
    for now in (0.0, 59.0, 60.0):
        table.run_due(now)
    assert ran == [60.0]
    with pytest.raises(KeyError):
        table.postpone("nothing", 1.0)


def test_redis_health_follows_outages_and_logs_each_change_once(caplog: pytest.LogCaptureFixture) -> None:
    health = RedisHealth()
    health.ok = True

    def down() -> None:
        raise redis.ConnectionError("Connection refused")

    with caplog.at_level(logging.INFO, logger="vidwatch.daemon.periodic"):
        health.run(down)
        health.run(down)
        assert not health.ok
        health.run(lambda: None)
        assert health.ok
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "Redis unavailable" in m]) == 1
    assert messages[-1] == "daemon: Redis is back"


def test_redis_health_lets_a_permanent_error_through() -> None:
    def wrong_type() -> None:
        raise redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    with pytest.raises(ResultsError, match="WRONGTYPE"):
        RedisHealth().run(wrong_type)


def test_the_pruner_skips_a_round_while_redis_is_away() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    pruner = IndexPruner(client, Keys("vwtest-none"), threading.Event())
    assert pruner.prune_once() == 0
