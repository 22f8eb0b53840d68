"""The two key layouts: the single-node names stay as they were; the cluster layout puts what one
script touches in one hash slot (the control keys in ``{prefix}``, the detections by camera)."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from vidwatch.config import RedisConfig
from vidwatch.results.keys import Keys

SINGLE, CLUSTER = Keys("vw"), Keys("vw", cluster=True)

NAMES = [  # key, single-node layout, cluster layout
    (lambda k: k.events, "vw:events", "{vw}:events"),
    (lambda k: k.summaries, "vw:summaries", "{vw}:summaries"),
    (lambda k: k.video("v1"), "vw:video:v1", "{vw}:video:v1"),
    (lambda k: k.inflight, "vw:ledger:inflight", "{vw}:ledger:inflight"),
    (lambda k: k.index_label("dog"), "vw:index:label:dog", "{vw}:index:label:dog"),
    (lambda k: k.join("v1", "2"), "vw:join:v1:r2", "{vw}:join:v1:r2"),
    (lambda k: k.join_fired("v1", "2"), "vw:join:v1:r2:fired", "{vw}:join:v1:r2:fired"),
    (lambda k: k.detections("cam1"), "vw:detections:cam1", "vw:detections:{cam1}"),
    (lambda k: k.index_detections("cam1"), "vw:index:detections:cam1", "vw:index:detections:{cam1}"),
    (lambda k: k.segment_done("v1", 3, "cam1"), "vw:segment:v1:3", "vw:segment:{cam1}:v1:3"),
    (lambda k: k.stream("detections:cam1"), "vw:detections:cam1", "vw:detections:{cam1}"),
    (lambda k: k.detections("*"), "vw:detections:*", "vw:detections:{*}"),
    (lambda k: k.objects, "vw:objects", "{vw}:objects"),
    (lambda k: k.index_objects_time, "vw:index:objects:time", "{vw}:index:objects:time"),
    (lambda k: k.index_objects_camera("cam1"), "vw:index:objects:camera:cam1", "{vw}:index:objects:camera:cam1"),
    (lambda k: k.index_objects_label("dog"), "vw:index:objects:label:dog", "{vw}:index:objects:label:dog"),
    (lambda k: k.video_objects("v1"), "vw:video-objects:v1", "{vw}:video-objects:v1"),
    (lambda k: k.bridge_markers("v1", 2, "cam1"), ["vw:segment:v1:0", "vw:segment:v1:1"],
     ["vw:segment:{cam1}:v1:0", "vw:segment:{cam1}:v1:1"]),
]


@pytest.mark.parametrize(("key", "single", "cluster"), NAMES)
def test_names_in_both_layouts(key, single: str | list[str], cluster: str | list[str]) -> None:
    assert (key(SINGLE), key(CLUSTER)) == (single, cluster)


@pytest.mark.parametrize("keys", [SINGLE, CLUSTER], ids=["single", "cluster"])
def test_short_names_and_cameras_read_back(keys: Keys) -> None:
    assert keys.short(keys.events) == "events"
    assert keys.short(keys.detections("cam 1")) == "detections:cam 1"
    assert keys.camera_of(keys.detections("cam1")) == "cam1"


SCRIPT_KEYS = {  # each script's KEYS, as the code passes them
    "records (create, transition, rerun)": [CLUSTER.video("v1"), CLUSTER.inflight, CLUSTER.events],
    "summary": [CLUSTER.video("v1"), CLUSTER.summaries, CLUSTER.index_time, CLUSTER.index_camera("cam1"),
                CLUSTER.inflight, CLUSTER.events, CLUSTER.index_label("dog"), CLUSTER.index_label("cat")],
    "segment": [CLUSTER.segment_done("v1", 0, "cam1"), CLUSTER.detections("cam1"), CLUSTER.index_detections("cam1")],
    "span": [CLUSTER.index_detections_span],
    "join": [CLUSTER.join("v1", "1"), CLUSTER.join_fired("v1", "1")],
    "objects": [CLUSTER.video_objects("v1"), CLUSTER.objects, CLUSTER.index_objects_time,
                CLUSTER.index_objects_camera("cam1"), CLUSTER.index_objects_label("dog")],
    "removal (control slot)": [CLUSTER.video("v1"), CLUSTER.summaries, CLUSTER.retention_videos, CLUSTER.paths,
                               CLUSTER.video_objects("v1"), CLUSTER.objects, *CLUSTER.bridge_control("v1", 1, 2)],
    "removal (camera slot)": [CLUSTER.detections("cam1"), CLUSTER.index_detections("cam1"),
                              *CLUSTER.bridge_markers("v1", 2, "cam1")],
}


@pytest.mark.parametrize("script", SCRIPT_KEYS)
def test_every_script_touches_one_slot_in_the_cluster_layout(script: str) -> None:
    assert len({key_slot(key.encode()) for key in SCRIPT_KEYS[script]}) == 1


def test_the_layout_follows_the_mode() -> None:
    assert not Keys.for_config(RedisConfig()).cluster
    assert not Keys.for_config(RedisConfig(mode="sentinel", sentinels=["s:1"], service="m")).cluster
    assert Keys.for_config(RedisConfig(mode="cluster", prefix="p")) == Keys("p", cluster=True)
