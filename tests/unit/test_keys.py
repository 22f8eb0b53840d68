"""The Redis key names: the public ones are a contract (ARCHITECTURE.md), the rest stay under the prefix."""

from __future__ import annotations

import pytest

from vidwatch.results.keys import STREAMS, Keys

K = Keys("vidwatch")

CONTRACT = [  # the key, its name as the contract writes it
    (K.events, "vidwatch:events"),
    (K.summaries, "vidwatch:summaries"),
    (K.detections("cam3"), "vidwatch:detections:cam3"),
    (K.video("abc"), "vidwatch:video:abc"),
    (K.index_time, "vidwatch:index:time"),
    (K.index_camera("cam3"), "vidwatch:index:camera:cam3"),
    (K.index_label("person"), "vidwatch:index:label:person"),
    (K.index_detections("cam3"), "vidwatch:index:detections:cam3"),
]


@pytest.mark.parametrize(("key", "expected"), CONTRACT)
def test_public_keys_follow_the_contract(key: str, expected: str) -> None:
    assert key == expected


def test_every_key_lives_under_the_configured_prefix() -> None:
    keys = Keys("site-a")
    internal = [keys.paths, keys.inflight, keys.backlog, keys.daemon("d1"), keys.worker("w1"), keys.worker_pattern(),
                keys.segment_done("v1", 2), keys.join("v1", "3"), keys.deliveries("t1"), keys.index_detections_span]
    assert all(key.startswith("site-a:") for key in internal)
    assert len(set(internal)) == len(internal)  # no two internal keys collide


def test_runs_of_a_join_and_segments_of_a_video_have_their_own_keys() -> None:
    assert K.join("v1", "1") != K.join("v1", "2")
    assert K.segment_done("v1", 0) != K.segment_done("v1", 1)


def test_a_stream_by_its_short_name() -> None:
    assert [K.stream(name) for name in STREAMS] == [K.events, K.summaries]
    assert K.stream("detections:cam3") == K.detections("cam3")
