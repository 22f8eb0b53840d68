"""Stable cursor pagination over the index sorted sets: newest first, ties by member.

A page ends at its last item; the cursor names it (score and member), and the next page
starts strictly after it in the order ``(score desc, member desc)`` — the order
``ZREVRANGEBYSCORE`` returns. Pages of one query neither repeat nor skip a member, whatever
is added meanwhile: a new member lands where its score puts it (on a page already seen
when it is newer than the cursor).

>>> decode_cursor(encode_cursor(1700000000.5, "1-0"))
(1700000000.5, '1-0')
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import redis

from vidwatch.results.keys import Keys
from vidwatch.results.trim import live_summaries

CHUNK = 200

# members of one chunk -> for each, whether it is still alive (the dead ones are removed from the primary index)
Alive = Callable[[Sequence[str]], Sequence[bool]]


def encode_cursor(score: float, member: str) -> str:
    """An opaque cursor naming the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps([score, member]).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, str]:
    """The ``(score, member)`` of :func:`encode_cursor`; ValueError for anything else."""
    try:
        score, member = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(member, str) or isinstance(score, bool) or not math.isfinite(float(score)):
            raise ValueError("cursor")
        return float(score), member
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValueError("cursor: expected the previous page's next_cursor") from None


@dataclass(frozen=True)
class IndexPage:
    items: list[tuple[str, float]]  # (member, score), newest first
    next_cursor: str | None  # None: the last page


def page_index(
    client: redis.Redis,
    primary: str,
    *,
    also_in: str | None = None,
    since: float | None = None,
    until: float | None = None,
    cursor: str | None = None,
    limit: int,
    alive: Alive | None = None,
) -> IndexPage:
    """One page of ``primary``'s members scored in ``[since, until]``, after ``cursor``.

    ``also_in``: keep only members also in this sorted set. ``alive``: members it finds dead
    (their entry was trimmed) are removed from ``primary`` and skipped.
    """
    after = decode_cursor(cursor) if cursor else None
    low = "-inf" if since is None else repr(since)
    high = "+inf" if until is None else repr(until)
    if after is not None and (until is None or after[0] <= until):
        high = repr(after[0])
    found: list[tuple[str, float]] = []
    offset = 0
    more = False
    while not more:
        chunk = client.zrevrangebyscore(primary, high, low, start=offset, num=CHUNK, withscores=True)
        offset += len(chunk)
        items = [(str(m), float(s)) for m, s in cast(list[tuple[str, float]], chunk)
                 if after is None or float(s) < after[0] or (float(s) == after[0] and str(m) < after[1])]
        if also_in is not None and items:
            pipe = client.pipeline(transaction=False)
            for member, _ in items:
                pipe.zscore(also_in, member)
            items = [item for item, hit in zip(items, pipe.execute(), strict=True) if hit is not None]
        if alive is not None and items:
            flags = alive([m for m, _ in items])
            dead = [m for (m, _), ok in zip(items, flags, strict=True) if not ok]
            if dead:
                client.zrem(primary, *dead)
                offset -= len(dead)
            items = [item for item, ok in zip(items, flags, strict=True) if ok]
        for item in items:
            if len(found) == limit:
                more = True
                break
            found.append(item)
        if len(chunk) < CHUNK:
            break
    next_cursor = encode_cursor(found[-1][1], found[-1][0]) if more and found else None
    return IndexPage(found, next_cursor)


def video_page(
    client: redis.Redis,
    keys: Keys,
    *,
    camera: str | None = None,
    label: str | None = None,
    since: float | None = None,
    until: float | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> IndexPage:
    """One page of video ids, newest first, as :func:`vidwatch.results.query.find_video_ids` orders and
    filters them (camera or label index, the other intersected; videos whose summary left the stream
    are unindexed on the way), after ``cursor``."""
    if camera:
        primary, other = keys.index_camera(camera), keys.index_label(label) if label else None
    elif label:
        primary, other = keys.index_label(label), None
    else:
        primary, other = keys.index_time, None
    return page_index(client, primary, also_in=other, since=since, until=until, cursor=cursor, limit=limit,
                      alive=lambda ids: live_summaries(client, keys, list(ids)))
