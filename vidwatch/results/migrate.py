"""One-shot copy of a single-node installation's keys into a Redis Cluster's hash-tagged layout.

Run it with every daemon and worker stopped (nothing in flight)::

    python -m vidwatch.results.migrate /etc/vidwatch/standalone.toml /etc/vidwatch/cluster.toml

Each key is copied with ``DUMP`` / ``RESTORE`` under its cluster name (streams keep their
entry ids and consumer groups, sorted sets their scores); the source is left as it was. Keys
that only matter while work is in flight (segment markers, joins, delivery counts, worker and
daemon liveness) are not copied. A key that already exists in the target is left alone, so a
second run copies only what the first did not.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from vidwatch.config import load_config
from vidwatch.errors import ConfigError
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys

logger = logging.getLogger(__name__)

TRANSIENT = ("segment", "join", "deliveries", "worker", "daemon")  # first part after the prefix: not copied


def cluster_name(key: str, source: Keys, target: Keys) -> str | None:
    """The name of ``key`` (single-node layout) in the cluster layout; None for keys not copied.

    >>> single, cluster = Keys("vw"), Keys("vw", cluster=True)
    >>> [cluster_name(k, single, cluster) for k in ("vw:video:v1", "vw:detections:c1", "vw:segment:v1:0")]
    ['{vw}:video:v1', 'vw:detections:{c1}', None]
    """
    rest = key.removeprefix(f"{source.prefix}:")
    if rest == key or rest.split(":", 1)[0] in TRANSIENT:
        return None
    if rest.startswith("detections:"):
        return target.detections(rest.removeprefix("detections:"))
    if rest.startswith("index:detections:"):
        return target.index_detections(rest.removeprefix("index:detections:"))
    return ":".join((f"{{{target.prefix}}}", rest))


@dataclass
class Copied:
    copied: int = 0
    existing: int = 0
    skipped: int = 0


def source_keys(client: redis.Redis, keys: Keys) -> Iterator[str]:
    yield from (str(key) for key in client.scan_iter(match=f"{keys.prefix}:*", count=1000))


def migrate(source: redis.Redis, source_keys_: Keys, target: redis.Redis, target_keys: Keys) -> Copied:
    """Copy every lasting key of ``source`` into ``target`` under its cluster name."""
    if source_keys_.cluster or not target_keys.cluster:
        raise ConfigError("migrate: expected a single-node source and a cluster-mode target")
    done = Copied()
    for key in source_keys(source, source_keys_):
        name = cluster_name(key, source_keys_, target_keys)
        if name is None:
            done.skipped += 1
            continue
        dumped = source.dump(key)
        if dumped is None:  # expired meanwhile
            continue
        ttl_ms = max(0, int(source.pttl(key)))
        try:
            target.restore(name, ttl_ms, dumped)
        except redis.ResponseError as exc:
            if "BUSYKEY" not in str(exc):
                raise
            done.existing += 1
            continue
        done.copied += 1
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("source", help="configuration of the single-node installation ([redis] mode standalone)")
    parser.add_argument("target", help="configuration of the cluster ([redis] mode = cluster)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        source_config, target_config = load_config(args.source).redis, load_config(args.target).redis
        source, target = connect(source_config), connect(target_config)  # DUMP's reply is never decoded
        try:
            done = migrate(source, Keys.for_config(source_config), target, Keys.for_config(target_config))
        finally:
            source.close()
            target.close()
    except (ConfigError, redis.RedisError) as exc:
        logger.error("migrate: %s", exc)
        return 1
    logger.info("migrate: %d keys copied, %d already there, %d transient keys skipped",
                done.copied, done.existing, done.skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
