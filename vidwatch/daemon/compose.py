"""The composition root: the one place the daemon's objects are built and wired.

``config → Redis client → records, ledger → publisher → normalizer → ingestor`` is
:func:`build`, shared by the daemon (:class:`~vidwatch.daemon.main.Daemon`, which adds its
parts: watchers, walker, claim pool, normalize pool), ``vidwatch submit`` (which claims with
its own ledger identity) and, through :class:`~vidwatch.daemon.serve.DaemonService`,
``vidwatch daemon`` and ``vidwatch up``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from vidwatch.config import Config
from vidwatch.daemon.fsguard import FsGuard
from vidwatch.daemon.ingest import Ingestor
from vidwatch.daemon.ledger import Ledger, daemon_id_for
from vidwatch.daemon.normalize import Normalizer
from vidwatch.daemon.publish import Publisher, queue_for
from vidwatch.paths import PathRules
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.tasks.app import make_app

FS_DEADLINE_S = 5.0  # a filesystem call on a root that takes longer marks the root stuck


@dataclass(frozen=True)
class Components:
    """What a daemon (or a ``vidwatch submit``) works with, built once from the configuration."""

    config: Config
    rules: PathRules
    keys: Keys
    client: redis.Redis
    records: Records
    ledger: Ledger
    queue: str
    publisher: Publisher
    normalizer: Normalizer
    ingestor: Ingestor
    stop_event: threading.Event
    fs: FsGuard  # deadlines on filesystem calls, per root


def build(config: Config, *, client: redis.Redis | None = None, owner: str | None = None) -> Components:
    """Build the daemon's objects from ``config``.

    ``client``: an existing Redis client (default: a new one from ``[redis]``); ``owner``: the
    ledger identity (default: this host and state folder, so a restarted daemon knows its records).
    """
    keys = Keys(config.redis.prefix)
    client = client or connect(config.redis)
    records = Records(client, keys, events_maxlen=config.redis.events_maxlen)
    ledger = Ledger(client, keys, records, owner or daemon_id_for(config.paths.state_dir))
    queue = queue_for(config)
    publisher = Publisher(make_app(config), queue, config.broker.publish_timeout_seconds)
    stop_event = threading.Event()
    normalizer = Normalizer(config, client, keys, stop_event)
    rules = PathRules(config.watch)
    fs = FsGuard(FS_DEADLINE_S)
    ingestor = Ingestor(config, rules, records, ledger, publisher, queue, normalizer=normalizer, fs=fs)
    return Components(config, rules, keys, client, records, ledger, queue, publisher, normalizer, ingestor,
                      stop_event, fs)
