"""The consumer API against the real Redis: shared groups, a dying consumer, failing handlers, lag."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import redis

from tests.conftest import REDIS_URL
from tests.helpers import wait_for
from vidwatch.config import RedisConfig
from vidwatch.results.consumer import StreamConsumer, ensure_group
from vidwatch.results.keys import Keys
from vidwatch.results.lag import group_lags, lag_report

# A consumer that handles two entries, then hangs in its handler holding the rest of its batch.
_DYING = """
import sys, threading, redis
from vidwatch.results.consumer import StreamConsumer
url, stream, done_key = sys.argv[1:4]
client = redis.Redis.from_url(url, decode_responses=True)
seen = []
def handler(entry_id, fields):
    seen.append(entry_id)
    if len(seen) > 2:
        client.rpush(done_key + ":hung", entry_id)
        threading.Event().wait()
    client.rpush(done_key, entry_id)
StreamConsumer(client, stream, group="g", consumer="a", start="0", count=5, claim_idle_ms=60000).run(handler)
"""


def _fill(client: redis.Redis, stream: str, n: int) -> list[str]:
    return [client.xadd(stream, {"n": str(i)}) for i in range(n)]


def test_group_is_created_once(redis_client: redis.Redis, redis_prefix: str) -> None:
    stream = f"{redis_prefix}:summaries"
    assert ensure_group(redis_client, stream, "g") is True
    assert ensure_group(redis_client, stream, "g") is False
    assert [g["name"] for g in redis_client.xinfo_groups(stream)] == ["g"]


def test_a_dead_consumers_entries_are_claimed_and_each_is_handled_once(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    stream, done_key = f"{redis_prefix}:summaries", f"{redis_prefix}:test:done"
    ids = _fill(redis_client, stream, 12)
    ensure_group(redis_client, stream, "g", start="0")
    dying = subprocess.Popen([sys.executable, "-c", _DYING, REDIS_URL, stream, done_key])
    try:
        wait_for(lambda: redis_client.llen(f"{done_key}:hung") == 1, timeout_s=30, what="consumer a to hang")
        held = redis_client.xpending(stream, "g")["consumers"]
        assert held == [{"name": "a", "pending": 3}]  # its batch of 5: two acknowledged, three held
    finally:
        os.kill(dying.pid, signal.SIGKILL)
        dying.wait(timeout=10)

    def handler(entry_id: str, _fields: dict[str, str]) -> None:
        redis_client.rpush(done_key, entry_id)

    other = StreamConsumer(redis_client, stream, group="g", consumer="b", count=4, block_ms=50, claim_idle_ms=200)
    wait_for(lambda: other.poll(handler).handled == 0 and redis_client.llen(done_key) == len(ids),
             timeout_s=30, what="consumer b to handle everything")
    done = Counter(redis_client.lrange(done_key, 0, -1))
    assert sorted(done) == sorted(ids)
    assert set(done.values()) == {1}
    assert other.pending() == 0


def test_a_failing_handler_loses_nothing(redis_client: redis.Redis, redis_prefix: str) -> None:
    stream = f"{redis_prefix}:events"
    consumer = StreamConsumer(redis_client, stream, group="g", consumer="c", start="0", block_ms=50, claim_idle_ms=100)
    consumer.ensure_group()
    ids = _fill(redis_client, stream, 3)
    calls: Counter[str] = Counter()
    handled: list[str] = []

    def flaky(entry_id: str, _fields: dict[str, str]) -> None:
        calls[entry_id] += 1
        if entry_id == ids[1] and calls[entry_id] == 1:
            raise RuntimeError("downstream unavailable")
        handled.append(entry_id)

    first = consumer.poll(flaky)
    assert (first.handled, first.failed) == (2, 1)
    assert consumer.pending() == 1
    wait_for(lambda: consumer.poll(flaky).handled, timeout_s=10, what="the failed entry to be retried")
    assert sorted(handled) == sorted(ids)
    assert calls[ids[1]] == 2
    assert consumer.pending() == 0


def test_an_entry_that_always_fails_goes_to_on_dead(redis_client: redis.Redis, redis_prefix: str) -> None:
    stream = f"{redis_prefix}:events"
    dead: list[str] = []
    consumer = StreamConsumer(
        redis_client, stream, group="g", consumer="c", start="0", block_ms=20, claim_idle_ms=50,
        max_deliveries=2, on_dead=lambda entry_id, _fields: dead.append(entry_id),
    )
    consumer.ensure_group()
    (poison,) = _fill(redis_client, stream, 1)

    def broken(_entry_id: str, _fields: dict[str, str]) -> None:
        raise ValueError("cannot parse")

    wait_for(lambda: consumer.poll(broken).dead, timeout_s=10, what="the entry to be given up")
    assert dead == [poison]
    assert consumer.pending() == 0


def test_lag_is_reported_with_a_warning_near_the_trim_horizon(redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    ensure_group(redis_client, keys.summaries, "slow", start="$")
    _fill(redis_client, keys.summaries, 60)
    assert group_lags(redis_client, keys.summaries)[0]["lag"] == 60
    report = lag_report(redis_client, keys, RedisConfig(summaries_maxlen=100))
    assert [(g["stream"], g["group"], g["lag"]) for g in report["groups"]] == [("summaries", "slow", 60)]
    assert len(report["warnings"]) == 1 and "slow" in report["warnings"][0]
    assert lag_report(redis_client, keys, RedisConfig(summaries_maxlen=1000))["warnings"] == []


def test_readyz_warns_about_lagging_groups_without_failing(redis_client: redis.Redis, redis_prefix: str) -> None:
    from types import SimpleNamespace

    from vidwatch.api.server import readiness_checks
    from vidwatch.config import Config

    keys = Keys(redis_prefix)
    config = Config(redis=RedisConfig(prefix=redis_prefix, events_maxlen=100))
    check = readiness_checks(config, SimpleNamespace(client=redis_client))["consumers"]
    ensure_group(redis_client, keys.events, "alerts", start="$")
    assert check() == (True, {"groups": [{"stream": "events", "group": "alerts", "lag": 0, "pending": 0,
                                          "consumers": 0, "exact": True, "maxlen": 100}], "warnings": []})
    _fill(redis_client, keys.events, 80)
    ok, detail = check()
    assert ok and detail["groups"][0]["lag"] == 80 and "alerts" in detail["warnings"][0]


def test_tail_reads_as_a_group_member_and_acknowledges(
    redis_client: redis.Redis, redis_prefix: str, tmp_path: object
) -> None:
    import json
    from pathlib import Path

    keys = Keys(redis_prefix)
    ids = _fill(redis_client, keys.summaries, 5)
    config = Path(str(tmp_path)) / "vidwatch.toml"
    config.write_text(f'[redis]\nurl = "{REDIS_URL}"\nprefix = "{redis_prefix}"\n')
    command = [str(Path(sys.executable).with_name("vidwatch")), "tail", "summaries", "-c", str(config),
               "--group", "g", "--consumer", "t1", "--from-start", "--json"]
    first = subprocess.run([*command, "--count", "3"], capture_output=True, text=True, timeout=60, check=True)
    assert [json.loads(line)["id"] for line in first.stdout.splitlines()] == ids[:3]
    rest = subprocess.run([*command, "--idle-timeout", "0.5"], capture_output=True, text=True, timeout=60,
                          check=True)
    assert [json.loads(line)["n"] for line in rest.stdout.splitlines()] == ["3", "4"]
    assert redis_client.xpending(keys.summaries, "g")["pending"] == 0
    plain = subprocess.run([*command[:5], "--from-start", "--count", "1"], capture_output=True, text=True,
                           timeout=60, check=True)
    assert plain.stdout.startswith(f"{ids[0]} n=0")


def test_the_documented_example_runs(redis_client: redis.Redis, redis_prefix: str, tmp_path: object) -> None:
    import json
    import re
    from pathlib import Path

    folder = Path(str(tmp_path))
    doc = (Path(__file__).parents[2] / "docs" / "consumers.md").read_text()
    (script,) = [block for block in re.findall(r"```python\n(.*?)```", doc, re.S) if "StreamConsumer(" in block]
    (folder / "archive.py").write_text(script)
    keys = Keys(redis_prefix)
    for n in range(3):
        redis_client.xadd(keys.summaries, {"schema": "1", "video_id": f"v{n}", "labels": "{}"})
    env = {**os.environ, "VIDWATCH_REDIS__URL": REDIS_URL, "VIDWATCH_REDIS__PREFIX": redis_prefix,
           "VIDWATCH_CONFIG": ""}
    subprocess.run([sys.executable, "archive.py", "0.5"], cwd=folder, env=env, timeout=60, check=True)
    lines = [json.loads(line) for line in (folder / "summaries.jsonl").read_text().splitlines()]
    assert [line["video_id"] for line in lines] == ["v0", "v1", "v2"]
    assert redis_client.xpending(keys.summaries, "archiver")["pending"] == 0
