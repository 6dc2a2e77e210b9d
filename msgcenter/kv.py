"""Shared counters and flags for every process: Redis when REDIS_URL is set, else
Django's cache (the database cache of the quick start), which web, workers and beat
share too.

Redis operations are atomic. The cache fallback is good enough for a single-machine
quick start (its `incr` is a read-then-write on the database cache), not for production.
Values are strings; callers parse them."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache

_local = threading.local()
PREFIX = "mc:"


def get_redis() -> Any | None:
    """The process's Redis client, or None when REDIS_URL is not set."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "url", None) != url:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        _local.client, _local.url = client, url
    return client


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def get_many(keys: Iterable[str]) -> dict[str, str | None]:
    """Values of `keys` (missing ones are None), in one round trip."""
    keys = [PREFIX + k for k in keys]
    if not keys:
        return {}
    r = get_redis()
    if r is not None:
        values = r.mget(keys)
    else:
        found = cache.get_many(keys)
        values = [found.get(k) for k in keys]
    return {k[len(PREFIX) :]: _text(v) for k, v in zip(keys, values, strict=True)}


def set_many(values: dict[str, str], ttl: int) -> None:
    """Set each key to its value with a time to live in seconds."""
    if not values:
        return
    ttl = max(1, int(ttl))
    r = get_redis()
    if r is not None:
        pipe = r.pipeline(transaction=False)
        for key, value in values.items():
            pipe.set(PREFIX + key, value, ex=ttl)
        pipe.execute()
    else:
        cache.set_many({PREFIX + k: v for k, v in values.items()}, timeout=ttl)


def incr_many(amounts: dict[str, int], ttls: dict[str, int]) -> dict[str, int]:
    """Atomically add to counters (created at 0), each expiring after its ttl; returns
    the new values."""
    if not amounts:
        return {}
    r = get_redis()
    out: dict[str, int] = {}
    if r is not None:
        pipe = r.pipeline(transaction=True)
        for key, n in amounts.items():
            pipe.incrby(PREFIX + key, n)
            pipe.expire(PREFIX + key, max(1, int(ttls[key])))
        results = pipe.execute()
        for index, key in enumerate(amounts):
            out[key] = int(results[index * 2])
        return out
    for key, n in amounts.items():
        full = PREFIX + key
        cache.add(full, 0, timeout=max(1, int(ttls[key])))
        try:
            out[key] = cache.incr(full, n)
        except ValueError:  # expired between add and incr
            cache.set(full, n, timeout=max(1, int(ttls[key])))
            out[key] = n
    return out


def delete_many(keys: Iterable[str]) -> None:
    keys = [PREFIX + k for k in keys]
    if not keys:
        return
    r = get_redis()
    if r is not None:
        r.delete(*keys)
    else:
        cache.delete_many(keys)
